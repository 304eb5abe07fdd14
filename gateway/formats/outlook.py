"""Outlook .msg files read as e-mails: an OLE compound document turned into an `EmailMessage`.

People save an order mail from Outlook and drop the .msg in the inbox, or forward it as an
attachment. A .msg holds the same things as an RFC 5322 message, as MAPI properties in OLE
streams (MS-OXMSG): ``__substg1.0_TTTTYYYY`` streams per property (TTTT the property id, YYYY
its type: 001F UTF-16 text, 001E 8-bit text, 0102 binary), the fixed-size ones in
``__properties_version1.0``, one storage per attachment and per recipient. We read those we
need with olefile (BSD licence, maintained; the engine of oletools) and build a MIME message
that `gateway.formats.email` then reads like any other mail, so limits, sender checks and
attachment parsing stay in one place. Not extract-msg: it is GPL-3.0 and this project is
Apache-2.0; not mail-parser: its .msg path shells out to Perl's msgconvert.

What is kept: the transport headers Outlook saved (``Received``, ``Authentication-Results``,
``Message-ID`` ... as the mail arrived), else From, To, Subject, Date and Message-ID from the
properties; the plain and HTML bodies; attachments by value with their names and types; an
attached Outlook message (attachment method 5) as a forwarded message/rfc822, nested at most
`max_depth` deep. Anything unreadable is a ParseError with reason NOT_EMAIL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import struct
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import format_datetime
from typing import Any

from gateway.errors import ParseError
from gateway.redact import printable

__all__ = ["OLE_MAGIC", "msg_to_email"]

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# MAPI property ids (MS-OXPROPS).
_SUBJECT = "0037"
_SENDER_NAME, _SENDER_ADDRESS = "0C1A", "0C1F"
_SENT_REPRESENTING_ADDRESS = "0065"
_SMTP_SENDER = "5D01"
_DISPLAY_TO = "0E04"
_BODY, _HTML = "1000", "1013"
_MESSAGE_ID = "1035"
_TRANSPORT_HEADERS = "007D"
_ATTACH_LONG_NAME, _ATTACH_NAME, _ATTACH_MIME = "3707", "3704", "370E"
_ATTACH_DATA = "3701"
_RECIP_SMTP, _RECIP_EMAIL, _RECIP_NAME = "39FE", "3003", "3001"
_SUBMIT_TIME, _DELIVERY_TIME = 0x0039, 0x0E06  # PT_SYSTIME (0x0040) in the fixed properties
_INTERNET_CPID = 0x3FDE  # PT_LONG: code page of the HTML body
_ATTACH_METHOD = 0x3705  # PT_LONG: 1 by value, 5 an embedded message, 6 an OLE object
_EMBEDDED = 5
_PROPERTIES = "__properties_version1.0"
_DROPPED_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}
_CODEPAGES = {65001: "utf-8", 1252: "cp1252", 28591: "latin-1", 20127: "ascii", 1250: "cp1250", 1251: "cp1251"}


def msg_to_email(data: bytes, *, max_depth: int = 3, max_attachments: int = 100) -> EmailMessage:
    """The Outlook message in `data` as a MIME message; ParseError (NOT_EMAIL) if it is not one."""
    import olefile

    reader: Any = olefile.OleFileIO  # olefile's functions carry no annotations

    if not data.startswith(OLE_MAGIC):
        raise ParseError("not an Outlook .msg file (no OLE header)", reason="NOT_EMAIL", position="byte 0")
    try:
        ole: Any = reader(io.BytesIO(data))
    except Exception as exc:  # olefile raises OSError and assorted errors on a damaged file
        raise ParseError(f"the Outlook .msg file is damaged and cannot be opened ({exc})", reason="NOT_EMAIL", position="byte 0") from exc
    try:
        if not ole.exists(_PROPERTIES) or not _text(ole, "", _SUBJECT, _BODY, _SENDER_ADDRESS, _TRANSPORT_HEADERS, _HTML) and not ole.exists(f"__substg1.0_{_HTML}0102"):
            raise ParseError(
                "the file is an OLE compound document but not an Outlook message (a Word or Excel 97 file?)",
                reason="NOT_EMAIL",
                position="byte 0",
            )
        return _message(ole, "", depth=0, max_depth=max_depth, budget=[max_attachments])
    except ParseError:
        raise
    except Exception as exc:  # a stream that lies about its size, a broken property table
        raise ParseError(f"the Outlook .msg file cannot be read ({type(exc).__name__}: {exc})", reason="NOT_EMAIL") from exc
    finally:
        ole.close()


def _message(ole: Any, root: str, *, depth: int, max_depth: int, budget: list[int]) -> EmailMessage:
    msg = EmailMessage(policy=policy.default)
    headers = _text(ole, root, _TRANSPORT_HEADERS)
    if headers:
        for name, value in HeaderParser(policy=policy.compat32).parsestr(headers).items():
            if name.lower() not in _DROPPED_HEADERS:
                _set(msg, name, value)
    if "From" not in msg:
        address = _text(ole, root, _SMTP_SENDER, _SENDER_ADDRESS, _SENT_REPRESENTING_ADDRESS)
        if address and "@" in address:
            name = _text(ole, root, _SENDER_NAME) or ""
            _set(msg, "From", str(Address(_clean(name), addr_spec=_clean(address))) if name and name != address else address)
    if "To" not in msg:
        recipients = _recipients(ole, root) or _text(ole, root, _DISPLAY_TO) or ""
        if recipients:
            _set(msg, "To", recipients)
    for header, prop in (("Subject", _SUBJECT), ("Message-ID", _MESSAGE_ID)):
        if header not in msg and (found := _text(ole, root, prop)):
            _set(msg, header, found)
    if "Date" not in msg and (when := _fixed_time(ole, root, _SUBMIT_TIME) or _fixed_time(ole, root, _DELIVERY_TIME)):
        _set(msg, "Date", format_datetime(when))

    text = _text(ole, root, _BODY)
    html = _binary(ole, root, f"{_HTML}0102")
    if text is not None:
        msg.set_content(text)
        if html:
            msg.add_alternative(_decode_html(html, _fixed_long(ole, root, _INTERNET_CPID)), subtype="html")
    elif html:
        msg.set_content(_decode_html(html, _fixed_long(ole, root, _INTERNET_CPID)), subtype="html")
    else:
        msg.set_content("")

    for storage in _children(ole, root, "__attach_version1.0_#"):
        budget[0] -= 1
        if budget[0] < 0:
            raise ParseError("the Outlook message has more attachments than the limit", reason="MIME_LIMIT")
        _attach(msg, ole, storage, depth=depth, max_depth=max_depth, budget=budget)
    return msg


def _attach(msg: EmailMessage, ole: Any, storage: str, *, depth: int, max_depth: int, budget: list[int]) -> None:
    name = _clean(_text(ole, storage, _ATTACH_LONG_NAME, _ATTACH_NAME) or "attachment")
    if _fixed_long(ole, storage, _ATTACH_METHOD) == _EMBEDDED or ole.exists(f"{storage}/__substg1.0_{_ATTACH_DATA}000D"):
        if depth + 1 > max_depth:
            raise ParseError(f"attached Outlook messages are nested more than {max_depth} deep", reason="MIME_LIMIT", position=name)
        inner = _message(ole, f"{storage}/__substg1.0_{_ATTACH_DATA}000D", depth=depth + 1, max_depth=max_depth, budget=budget)
        msg.add_attachment(inner)  # message/rfc822: read as a forwarded message
        return
    data = _binary(ole, storage, f"{_ATTACH_DATA}0102")
    if data is None:
        return  # an OLE object or a link: nothing an order can be read from
    maintype, _, subtype = (_text(ole, storage, _ATTACH_MIME) or "application/octet-stream").strip().lower().partition("/")
    if not maintype or not subtype or maintype in ("multipart", "message"):
        maintype, subtype = "application", "octet-stream"
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def _children(ole: Any, root: str, prefix: str) -> list[str]:
    depth = len(root.split("/")) if root else 0
    found = {"/".join(entry[: depth + 1]) for entry in ole.listdir(streams=True, storages=True)
             if len(entry) > depth and "/".join(entry[:depth]) == root and entry[depth].startswith(prefix)}  # fmt: skip
    return sorted(found)


def _path(root: str, name: str) -> str:
    return f"{root}/{name}" if root else name


def _binary(ole: Any, root: str, tag: str) -> bytes | None:
    path = _path(root, f"__substg1.0_{tag}")
    if not ole.exists(path):
        return None
    return bytes(ole.openstream(path).read())


def _text(ole: Any, root: str, *props: str) -> str | None:
    """The first of `props` present as a text property (Unicode, else 8-bit)."""
    for prop in props:
        raw = _binary(ole, root, f"{prop}001F")
        if raw is not None:
            return raw.decode("utf-16-le", "replace").rstrip("\x00")
        raw = _binary(ole, root, f"{prop}001E")
        if raw is not None:
            return raw.decode("cp1252", "replace").rstrip("\x00")
    return None


def _recipients(ole: Any, root: str) -> str:
    addresses = []
    for storage in _children(ole, root, "__recip_version1.0_#"):
        address = _text(ole, storage, _RECIP_SMTP, _RECIP_EMAIL)
        if address and "@" in address:
            addresses.append(_clean(address))
    return ", ".join(addresses)


def _fixed(ole: Any, root: str, prop: int, kind: int) -> bytes | None:
    """The 8-byte value of a fixed-size property (MS-OXMSG 2.4): entries of 16 bytes after a
    header of 32 bytes (the message), 24 (an embedded message) or 8 (attachments, recipients)."""
    path = _path(root, _PROPERTIES)
    if not ole.exists(path):
        return None
    table = bytes(ole.openstream(path).read())
    header = 32 if not root else 24 if root.endswith("000D") else 8
    wanted = (prop << 16) | kind
    for offset in range(header, len(table) - 15, 16):
        (tag,) = struct.unpack_from("<I", table, offset)
        if tag == wanted:
            return table[offset + 8 : offset + 16]
    return None


def _fixed_time(ole: Any, root: str, prop: int) -> dt.datetime | None:
    raw = _fixed(ole, root, prop, 0x0040)
    if raw is None:
        return None
    (ticks,) = struct.unpack("<Q", raw)  # FILETIME: 100 ns since 1601-01-01 UTC
    try:
        return dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def _fixed_long(ole: Any, root: str, prop: int) -> int | None:
    raw = _fixed(ole, root, prop, 0x0003)
    return None if raw is None else int(struct.unpack_from("<i", raw)[0])


def _decode_html(data: bytes, codepage: int | None) -> str:
    encoding = _CODEPAGES.get(codepage or 65001, "utf-8")
    try:
        return data.decode(encoding).rstrip("\x00")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace").rstrip("\x00")


def _clean(value: str) -> str:
    """One line without control characters: header values come from the file."""
    return " ".join(printable(value, replacement=" ").split())


def _set(msg: EmailMessage, name: str, value: str) -> None:
    # A header the policy cannot hold (a malformed address) is left out; the mail is still read.
    with contextlib.suppress(ValueError, TypeError, IndexError):
        msg[_clean(name)] = _clean(str(value))
