"""Layer 1 of the X12 reader, decoding: a binary stream as text, a 64 KiB chunk at a time.

A UTF-8 BOM is stripped; text that is not UTF-8 is read as Latin-1, with a warning. See the
package docstring (`gateway.formats.x12`) for the three layers.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from gateway.errors import ParseError

CHUNK_SIZE = 1 << 16

# --------------------------------------------------------------------------------------------
# Layer 1: decode and split


class _Source:
    """Decoded text from a binary stream, a chunk at a time."""

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE):
        self._stream = stream
        self._chunk_size = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._latin1 = False
        self._first = True
        self._text_seen = False
        self._offset = 0  # bytes read so far
        self.unwrap = False  # a VAN's fixed-width lines: every line break is removed
        self.eof = False
        self.warnings: list[str] = []  # drained by the parser onto the next event

    def read(self) -> str:
        """The next piece of text; "" once the stream is exhausted."""
        while not self.eof:
            data = self._stream.read(self._chunk_size)
            if isinstance(data, str):  # a text stream slipped in: accept it as is
                data = data.encode("utf-8")
            if self._first and data:
                self._first = False
                if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                    raise ParseError(
                        "the input is UTF-16 text; X12 must be ASCII or UTF-8, ask the sender "
                        "to send it without converting it to UTF-16",
                        reason="NOT_X12",
                        position="byte 0",
                    )
            final = not data
            text = self._decode(data, final)
            self._offset += len(data)
            if final:
                self.eof = True
            if text and not self._text_seen:
                self._text_seen = True
                # Stripped as text, not bytes: the 3 bytes of a BOM may come in two reads.
                if text[0] == "\ufeff":
                    text = text[1:]
                    self.warnings.append("a UTF-8 byte order mark at the start was removed")
            if self.unwrap:
                text = text.replace("\r", "").replace("\n", "")
            if text:
                return text
        return ""

    def _decode(self, data: bytes, final: bool) -> str:
        if self._latin1:
            return data.decode("latin-1")
        pending = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            # Switch for good: a partner that sends one Latin-1 byte sends more. errors="ignore"
            # would silently change names and addresses, so every byte is kept.
            self._latin1 = True
            start = self._offset - len(pending)
            since = f" from byte {start} on" if start else ""
            self.warnings.append(
                f"the input is not valid UTF-8 (byte {start + exc.start} is not); it was read "
                f"as Latin-1{since}"
            )
            return (pending + data).decode("latin-1")
