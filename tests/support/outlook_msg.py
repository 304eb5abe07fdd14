"""Outlook .msg files written by the tests: a compound file (MS-CFB v3) holding MAPI properties
(MS-OXMSG), so the .msg path is tested with orders of our own, not only the corpus newsletter.

`build_msg(...)` returns the bytes of a message with a sender, subject, plain/HTML body,
transport headers, a submit time, and attachments by value or embedded messages.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
SECTOR, MINI, CUTOFF = 512, 64, 4096


@dataclass
class Node:
    name: str
    data: bytes | None = None  # a stream; None: a storage
    children: list[Node] = field(default_factory=list)


def _text(prop: str, value: str) -> Node:
    return Node(f"__substg1.0_{prop}001F", value.encode("utf-16-le"))


def _props(entries: list[tuple[int, int, bytes]], header: int) -> Node:
    """A __properties_version1.0 stream: `header` bytes, then (id, type, 8-byte value) entries."""
    body = bytearray(header)
    for prop, kind, value in entries:
        body += struct.pack("<II", (prop << 16) | kind, 6) + value.ljust(8, b"\x00")
    return Node("__properties_version1.0", bytes(body))


def _filetime(when: dt.datetime) -> bytes:
    ticks = int((when - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)).total_seconds() * 10_000_000)
    return struct.pack("<Q", ticks)


def message_nodes(
    *,
    subject: str,
    sender: str,
    sender_name: str = "",
    body: str | None = None,
    html: bytes | None = None,
    headers: str | None = None,
    sent: dt.datetime | None = None,
    attachments: list[tuple[str, str, bytes] | dict[str, object]] = (),  # type: ignore[assignment]
    embedded: bool = False,
) -> list[Node]:
    nodes = [_text("0037", subject), _text("0C1F", sender), _text("5D01", sender)]
    if sender_name:
        nodes.append(_text("0C1A", sender_name))
    if body is not None:
        nodes.append(_text("1000", body))
    if html is not None:
        nodes.append(Node("__substg1.0_10130102", html))
    if headers is not None:
        nodes.append(_text("007D", headers))
    fixed = [(0x3FDE, 0x0003, struct.pack("<i", 65001))]
    if sent is not None:
        fixed.append((0x0039, 0x0040, _filetime(sent)))
    nodes.append(_props(fixed, 24 if embedded else 32))
    for i, att in enumerate(attachments):
        storage = Node(f"__attach_version1.0_#{i:08X}")
        if isinstance(att, dict):  # an attached Outlook message
            inner = message_nodes(**att, embedded=True)  # type: ignore[arg-type]
            storage.children = [_props([(0x3705, 0x0003, struct.pack("<i", 5))], 8),
                                Node("__substg1.0_3701000D", None, inner), _text("3707", f"{att['subject']}.msg")]  # fmt: skip
        else:
            name, mime, data = att
            storage.children = [_props([(0x3705, 0x0003, struct.pack("<i", 1))], 8),
                                _text("3707", name), _text("370E", mime), Node("__substg1.0_37010102", data)]  # fmt: skip
        nodes.append(storage)
    recip = Node("__recip_version1.0_#00000000", None, [_text("39FE", "orders@gateway.example"), _props([], 8)])
    nodes.append(recip)
    return nodes


def build_msg(**kwargs: object) -> bytes:
    return cfb(Node("Root Entry", None, message_nodes(**kwargs)))  # type: ignore[arg-type]


def cfb(root: Node) -> bytes:
    """A compound file (v3, 512-byte sectors) holding the tree under `root`."""
    entries: list[Node] = []

    def collect(node: Node) -> None:
        entries.append(node)
        for child in node.children:
            collect(child)

    collect(root)
    index = {id(n): i for i, n in enumerate(entries)}
    sectors: list[bytes] = []
    fat: list[int] = []

    def chain(data: bytes) -> int:
        if not data:
            return ENDOFCHAIN
        start = len(sectors)
        count = (len(data) + SECTOR - 1) // SECTOR
        for k in range(count):
            sectors.append(data[k * SECTOR : (k + 1) * SECTOR].ljust(SECTOR, b"\x00"))
            fat.append(start + k + 1 if k < count - 1 else ENDOFCHAIN)
        return start

    starts: dict[int, int] = {}
    mini = bytearray()
    minifat: list[int] = []
    for node in entries:
        if node.data is None or not node.data:
            continue
        if len(node.data) >= CUTOFF:
            starts[id(node)] = chain(node.data)
        else:
            first = len(mini) // MINI
            count = (len(node.data) + MINI - 1) // MINI
            mini += node.data.ljust(count * MINI, b"\x00")
            minifat += [first + k + 1 if k < count - 1 else ENDOFCHAIN for k in range(count)]
            starts[id(node)] = first
    mini_start = chain(bytes(mini)) if mini else ENDOFCHAIN
    minifat_bytes = b"".join(struct.pack("<I", v) for v in minifat)
    minifat_start = chain(minifat_bytes.ljust(-(-len(minifat_bytes) // SECTOR) * SECTOR, b"\xff")) if minifat else ENDOFCHAIN

    def sibling_key(n: Node) -> tuple[int, str]:
        return (len(n.name), n.name.upper())

    left_right: dict[int, tuple[int, int, int]] = {}  # entry -> (left, right, child)
    for node in entries:
        kids = sorted(node.children, key=sibling_key)
        for k, kid in enumerate(kids):
            nxt = index[id(kids[k + 1])] if k + 1 < len(kids) else NOSTREAM
            left_right[index[id(kid)]] = (NOSTREAM, nxt, NOSTREAM)
        child = index[id(kids[0])] if kids else NOSTREAM
        left, right, _ = left_right.get(index[id(node)], (NOSTREAM, NOSTREAM, NOSTREAM))
        left_right[index[id(node)]] = (left, right, child)
    directory = bytearray()
    for i, node in enumerate(entries):
        name = node.name.encode("utf-16-le") + b"\x00\x00"
        kind = 5 if i == 0 else (2 if node.data is not None else 1)
        left, right, child = left_right[i]
        if i == 0:
            start, size = mini_start, len(mini)
        elif node.data is not None:
            start, size = starts.get(id(node), ENDOFCHAIN), len(node.data)
        else:
            start, size = 0, 0
        directory += (name.ljust(64, b"\x00") + struct.pack("<HBB", len(name), kind, 1)
                      + struct.pack("<III", left, right, child) + bytes(16) + bytes(4) + bytes(16)
                      + struct.pack("<IQ", start, size))  # fmt: skip
    directory += bytes(-len(directory) % SECTOR)
    dir_start = chain(bytes(directory))
    # FAT sectors last: enough of them to map every sector, themselves included.
    n_fat = 1
    while (len(sectors) + n_fat) > n_fat * (SECTOR // 4):
        n_fat += 1
    fat_first = len(sectors)
    fat += [FATSECT] * n_fat
    fat += [FREESECT] * (n_fat * (SECTOR // 4) - len(fat))
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat)
    sectors += [fat_bytes[k * SECTOR : (k + 1) * SECTOR] for k in range(n_fat)]
    assert n_fat <= 109, "the test writer keeps the FAT in the header's DIFAT"
    difat = [fat_first + k for k in range(n_fat)] + [FREESECT] * (109 - n_fat)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, CUTOFF, minifat_start, len(minifat_bytes) // SECTOR + (1 if len(minifat_bytes) % SECTOR else 0) if minifat else 0, ENDOFCHAIN, 0)
              + b"".join(struct.pack("<I", v) for v in difat))  # fmt: skip
    assert len(header) == SECTOR
    return header + b"".join(sectors)
