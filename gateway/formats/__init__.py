"""Parsers: bytes in, documents out. `detect` picks one from the first bytes of an input."""

from __future__ import annotations

import importlib
from typing import Any

from gateway.errors import ParseError
from gateway.formats.base import Parser

__all__ = ["FORMATS", "detect", "detect_body", "get_parser"]

# name -> "module:Class"; imported only when used, so a format's dependencies load lazily.
FORMATS: dict[str, str] = {
    "x12": "gateway.formats.x12:X12Parser",
    "edifact": "gateway.formats.edifact:EdifactParser",
    "cxml": "gateway.formats.cxml:CxmlParser",
    "ubl": "gateway.formats.ubl:UblParser",
    # Cart JSON is never detected from content: it comes through its webhook or --format.
    "shopify": "gateway.formats.carts:ShopifyParser",
    "woocommerce": "gateway.formats.carts:WooCommerceParser",
    "web_form": "gateway.formats.webform:WebFormParser",
    # Last: an e-mail is a container whose attachments the formats above read.
    "email": "gateway.formats.email:EmailParser",
}

_cache: dict[str, Any] = {}


def get_parser(name: str) -> Parser:
    if name not in FORMATS:
        import difflib

        hint = difflib.get_close_matches(name, FORMATS, n=1)
        raise ParseError(
            f"unknown format {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(FORMATS)}"),
            reason="UNKNOWN_FORMAT",
        )
    if name not in _cache:
        module, _, cls = FORMATS[name].partition(":")
        _cache[name] = getattr(importlib.import_module(module), cls)()
    parser: Parser = _cache[name]
    return parser


def detect(head: bytes) -> str:
    """The format of an input from its first bytes; ParseError when nothing recognises it."""
    if not head.strip():
        raise ParseError("the input is empty", reason="EMPTY", position="byte 0")
    for name in FORMATS:
        if get_parser(name).sniff(head):
            return name
    raise ParseError(
        "not a format the gateway reads (expected an X12 interchange (ISA), an EDIFACT interchange "
        "(UNA/UNB), a cXML document or a UBL order)",
        reason="NOT_RECOGNIZED",
        position="byte 0",
    )


def detect_body(body: bytes) -> str | None:
    """The format of a stored message from its first 4 KB; None when nothing recognises it."""
    try:
        return detect(body[:4096])
    except ParseError:
        return None
