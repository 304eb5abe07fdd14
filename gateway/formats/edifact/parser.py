"""`EdifactParser` (the streaming parser protocol of `gateway.formats.base`) and
`parse_edifact`, the convenience form. See the package docstring (`gateway.formats.edifact`).
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gateway.formats.base import (
    Event,
)
from gateway.formats.edifact.interchange import _FileState, _Interchange
from gateway.formats.edifact.scan import _scan


class EdifactParser:
    """Reads EDIFACT interchanges; one `Document` per UNH..UNT message (ORDERS, INVOIC, ...).

    Messages of every type are yielded, with their `doc_type`; the caller decides.
    """

    name = "edifact"

    def sniff(self, head: bytes) -> bool:
        """True if `head` starts with a UNA or UNB segment (after a UTF-8 BOM and blanks)."""
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        head = head.lstrip(b" \t\r\n\x00")
        if not (head.startswith(b"UNA") or head.startswith(b"UNB")):
            return False
        nxt = head[3:4]
        return not nxt or not (nxt.isalnum() or nxt in b" \t\r\n")

    def parse(self, stream: BinaryIO, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of a binary stream.

        Raises ParseError (NOT_EDIFACT, EDIFACT_UNA, EDIFACT_UNB, EDIFACT_CHARSET or
        EDIFACT_SYNTAX) before yielding anything if an interchange envelope cannot be read or
        decoded; problems inside interchanges are reported on the events instead.
        """
        data = stream.read()
        if isinstance(data, str):  # a text stream slipped in: take it as UTF-8
            data = data.encode("utf-8")
        raws = _scan(bytes(data))
        state = _FileState(name)
        for index, raw in enumerate(raws):
            yield from _Interchange(raw, index, state).events()


def parse_edifact(
    source: bytes | str | Path | BinaryIO, *, name: str | None = None
) -> Iterator[Event]:
    """Events of EDIFACT input given as bytes, text, a path or a binary stream (convenience)."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield from EdifactParser().parse(stream, name=name or source.name)
        return
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    yield from EdifactParser().parse(source, name=name or "<input>")
