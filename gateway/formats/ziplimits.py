"""Read a ZIP archive from memory within limits: never to disk, never trusting its headers.

`read_zip(data)` returns the archive's file entries as (name, bytes). Entry names are
metadata only (nothing is ever written by name, so there is no zip-slip).

Limits (defaults; reliability.md M2)
    entries             at most 200 (directories included)
    total uncompressed  at most 100 MB, counted on the bytes actually read
    per-entry ratio     uncompressed / compressed at most 100; an entry that inflates to
                        less than RATIO_FLOOR (1 MiB) is never refused for its ratio, so a
                        small, padded EDI file is not taken for a bomb
    overlapping entries two central-directory entries whose local data ranges overlap, or
                        reach into the central directory (CVE-2024-0450; Python 3.11.7's
                        zipfile does not check this)

`ZipFile`'s declared sizes are not trusted: each entry is read in bounded chunks and the
read stops as soon as a limit is passed.

Errors: `ZipProblem` with `reason` ZIP_LIMIT (a limit was passed: a bomb, or too big) or
ZIP_INVALID (not a readable ZIP: truncated, encrypted, an unsupported compression method,
a bad CRC).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

__all__ = [
    "MAX_ENTRIES",
    "MAX_RATIO",
    "MAX_TOTAL",
    "RATIO_FLOOR",
    "ZipEntry",
    "ZipProblem",
    "is_zip",
    "read_zip",
]

MAX_ENTRIES = 200
MAX_TOTAL = 100 * 1024 * 1024
MAX_RATIO = 100
RATIO_FLOOR = 1024 * 1024
_CHUNK = 64 * 1024
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # 30 bytes
_LOCAL_SIG = b"PK\x03\x04"


class ZipProblem(Exception):
    """The archive cannot be read within limits. `reason`: ZIP_LIMIT or ZIP_INVALID."""

    def __init__(self, message: str, *, reason: str):
        self.message = message
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ZipEntry:
    name: str  # as stored in the archive: metadata only, never a path to write to
    data: bytes


def is_zip(head: bytes) -> bool:
    """True if the bytes start like a ZIP archive (a local file header or an empty archive)."""
    return head.startswith(_LOCAL_SIG) or head.startswith(b"PK\x05\x06")


def read_zip(
    data: bytes,
    *,
    max_entries: int = MAX_ENTRIES,
    max_total: int = MAX_TOTAL,
    max_ratio: int = MAX_RATIO,
) -> list[ZipEntry]:
    """The file entries of an in-memory archive, within limits; ZipProblem otherwise."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, ValueError, EOFError, struct.error) as exc:
        raise ZipProblem(f"the ZIP archive cannot be read ({exc})", reason="ZIP_INVALID") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise ZipProblem(
                f"the ZIP archive holds {len(infos)} entries; the limit is {max_entries}",
                reason="ZIP_LIMIT",
            )
        _check_overlap(data, infos, zf.start_dir)
        entries: list[ZipEntry] = []
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise ZipProblem(
                    f"the ZIP entry {info.filename!r} is encrypted; send it without a password",
                    reason="ZIP_INVALID",
                )
            allowed = max(info.compress_size * max_ratio, RATIO_FLOOR)
            body = _read_entry(zf, info, min(allowed, max_total - total), allowed, max_total)
            total += len(body)
            entries.append(ZipEntry(info.filename, body))
        return entries


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, allowed: int, max_total: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(min(_CHUNK, budget + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > budget:
                    if budget < allowed:
                        raise ZipProblem(
                            f"the ZIP archive inflates to more than {max_total:,} bytes in all "
                            f"(at entry {info.filename!r}); the limit is {max_total:,}",
                            reason="ZIP_LIMIT",
                        )
                    raise ZipProblem(
                        f"the ZIP entry {info.filename!r} inflates more than {allowed // max(info.compress_size, 1)} "
                        f"times its compressed size of {info.compress_size:,} bytes: a zip bomb",
                        reason="ZIP_LIMIT",
                    )
    except ZipProblem:
        raise
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ZipProblem(f"the ZIP entry {info.filename!r} cannot be read ({exc})", reason="ZIP_INVALID") from exc
    return b"".join(chunks)


def _check_overlap(data: bytes, infos: list[zipfile.ZipInfo], start_dir: int) -> None:
    """Refuse entries whose local header + data ranges overlap each other or the directory."""
    ranges: list[tuple[int, int, str]] = []
    for info in infos:
        start = info.header_offset
        header = data[start : start + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIG:
            raise ZipProblem(
                f"the ZIP entry {info.filename!r} points at no local file header", reason="ZIP_INVALID"
            )
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = fields[-2], fields[-1]
        end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        ranges.append((start, end, info.filename))
    ranges.sort()
    previous_end = 0
    previous_name = ""
    for start, end, name in ranges:
        if start < previous_end:
            raise ZipProblem(
                f"the ZIP entries {previous_name!r} and {name!r} overlap (a crafted archive, "
                "CVE-2024-0450 / overlapping-entry zip bomb)",
                reason="ZIP_LIMIT",
            )
        if end > start_dir:
            raise ZipProblem(
                f"the ZIP entry {name!r} runs into the archive's central directory (a crafted archive)",
                reason="ZIP_LIMIT",
            )
        previous_end, previous_name = end, name
