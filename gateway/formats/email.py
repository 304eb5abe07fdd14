"""E-mail reader: an RFC 5322 message is a container; its order attachments go to their parsers.

The message is parsed with the stdlib `email` package and `policy.default` (it never raises
on broken MIME; defects are recorded). The MIME tree is walked within limits, and for each
attachment (and a text/plain body that itself starts with ISA, UNA, UNB or ``<?xml``) the
format is detected from its first bytes (`gateway.formats.detect`) and the attachment is
parsed by that format's parser. Its events are passed on with the attachment's name in the
positions (``attachment po.edi: line 3, segment 3``) and its envelope unchanged, so an X12
partner is recognised by its ISA ids. One attachment's problem never stops the others.

Attachments that do not say what each value is (CSV, XLSX, PDF) and, when the message has
no other order, the text body are handed on as `Document`s of type ``csv``, ``xlsx``,
``pdf`` or ``body`` (envelope standard ``email``; body ``{"label", "data"}`` or ``{"label",
"text"}``): only a partner's template can read them, and the partner is known only after
the sender is verified, so `gateway.translate` extracts them (`gateway.extract`). A PDF
next to an EDI or XML order (a printable copy) is listed, not read.

ZIP attachments are unpacked in memory (`gateway.formats.ziplimits`) and their entries are
taken like attachments; a ZIP inside a ZIP is refused (nesting depth 1).

Limits: the whole message ≤ 25 MB, message/rfc822 nesting ≤ 3, ≤ 100 MIME parts, each
attachment ≤ 10 MB.

Events
    the delegated parsers' events (InterchangeOpened, Document, DocumentRejected,
    InterchangeClosed), positions prefixed with the attachment, indexes renumbered across
    the message; DocumentRejected for what is not usable, with Envelope(standard "email",
    sender_id = the From address) and no control number (no interchange key).

Reason codes
    ParseError:
        EMPTY                the input is empty
        NOT_EMAIL            not an RFC 5322 message (no headers), nor an Outlook .msg file
                             (`gateway.formats.outlook` reads those, also attached to a mail)
        MAIL_TOO_LARGE       the message is larger than 25 MB
        MIME_LIMIT           more than 100 MIME parts, or message/rfc822 nested deeper than 3
        MIME_DEFECT          a header the stdlib parser crashes on instead of recording a defect
                             (a Content-Type parameter ``name*`` without a value)
    DocumentRejected:
        <inner reason>       an attachment's ParseError, with that parser's reason code
        ATTACHMENT_TOO_LARGE an attachment larger than 10 MB (the others go on)
        ZIP_LIMIT            a ZIP attachment past a limit (a bomb), or a ZIP inside a ZIP
        ZIP_INVALID          a ZIP attachment that cannot be read
        NO_ORDER_ATTACHMENT  nothing in the message is an order; the message lists its parts
        MIME_DEFECT          nothing in the message is an order and its MIME structure is
                             broken (missing boundary, bad base64, ...): the defects are listed
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import IO, Any

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.outlook import OLE_MAGIC, msg_to_email
from gateway.formats.ziplimits import ZipProblem, is_zip, read_zip
from gateway.redact import printable

__all__ = ["MAX_ATTACHMENT", "MAX_DEPTH", "MAX_MESSAGE", "MAX_PARTS", "EmailParser", "mail_headers"]

MAX_MESSAGE = 25 * 1024 * 1024
MAX_ATTACHMENT = 10 * 1024 * 1024
MAX_DEPTH = 3
MAX_PARTS = 100
MAX_BODY_TEXT = 1_000_000  # characters of body text handed to a template
_HEAD = 4096
_KNOWN_HEADERS = {
    "return-path", "received", "from", "message-id", "mime-version", "date", "subject",
    "delivered-to", "to", "cc", "reply-to", "sender", "content-type", "dkim-signature",
    "authentication-results", "arc-seal", "arc-message-signature", "arc-authentication-results",
    "received-spf", "thread-topic", "thread-index", "in-reply-to", "references", "user-agent",
    "envelope-to", "importance", "content-transfer-encoding",
}  # fmt: skip
_HEADER_LINE = re.compile(rb"([A-Za-z][A-Za-z0-9-]{0,76})[ \t]*:")
_ORDER_BODY_PREFIXES = (b"ISA", b"UNA", b"UNB", b"<?xml")
_CSV_TYPES = {"text/csv", "application/csv", "text/comma-separated-values"}
_XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_PDF_TYPES = {"application/pdf", "application/x-pdf"}
_ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
# Characters XML (and so lxml) refuses in a string: controls other than tab/LF/CR, lone
# surrogates (from a surrogateescape decode), U+FFFE/U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(slots=True)
class _Attachment:
    label: str  # "po.edi", "orders.zip/po.edi", "part 3 (text/plain)"
    content_type: str
    data: bytes
    zip_depth: int = 0


class _Walk:
    """What the walk found: leaves in order, and a description of every part."""

    def __init__(self) -> None:
        self.parts = 0
        self.leaves: list[tuple[Message, str, bool]] = []  # (part, label, is a body text)
        self.summary: list[str] = []
        self.defects: set[str] = set()


class EmailParser:
    name = "email"

    def __init__(
        self,
        *,
        max_message: int = MAX_MESSAGE,
        max_attachment: int = MAX_ATTACHMENT,
        max_depth: int = MAX_DEPTH,
        max_parts: int = MAX_PARTS,
        x12_lenient: Any = False,
    ):
        self.x12_lenient = x12_lenient  # X12 attachments: gateway.formats.x12.X12Parser(lenient=...)
        self.max_message = max_message
        self.max_attachment = max_attachment
        self.max_depth = max_depth
        self.max_parts = max_parts

    # -- sniff -----------------------------------------------------------------------------

    def sniff(self, head: bytes) -> bool:
        """True if `head` starts with an RFC 5322 header line of a name mail carries."""
        if head.startswith(OLE_MAGIC):
            return True  # an Outlook .msg (gateway.formats.outlook)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        if head.lstrip(b" \t\r\n").startswith((b"ISA", b"UNA", b"UNB", b"<", b"{", b"[")):
            return False
        m = _HEADER_LINE.match(head)
        if m is None:
            return False
        field = m.group(1).decode("ascii").lower()
        return field in _KNOWN_HEADERS or field.startswith("x-")

    # -- parse -----------------------------------------------------------------------------

    def parse(self, stream: IO[bytes] | Any, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of the message's order attachments; ParseError if unreadable."""
        data = stream.read(self.max_message + 1)
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if len(data) > self.max_message:
            raise ParseError(
                f"the e-mail is larger than the limit of {self.max_message:,} bytes; it was not read",
                reason="MAIL_TOO_LARGE",
                position=f"byte {self.max_message}",
            )
        if not data.strip():
            raise ParseError("the e-mail is empty", reason="EMPTY", position="byte 0")
        if data.startswith(OLE_MAGIC):  # an Outlook .msg: the same mail, as MAPI properties
            msg: Message = msg_to_email(data, max_depth=self.max_depth, max_attachments=self.max_parts)
        else:
            msg = self._mime(data)
        envelope = Envelope(standard="email", sender_id=_from_address(msg))
        walk = _Walk()
        self._walk(msg, walk, depth=0, label="message")
        yield from self._attachments(walk, envelope, name)

    def _mime(self, data: bytes) -> Message:
        if _HEADER_LINE.match(data.lstrip(b"\xef\xbb\xbf")) is None:
            raise ParseError(
                "the input does not start with an e-mail header line (Name: value); it is not an RFC 5322 message",
                reason="NOT_EMAIL",
                position="line 1",
            )
        try:
            return BytesParser(policy=policy.default).parsebytes(data)
        except RecursionError as exc:
            raise ParseError("the e-mail's MIME structure is nested too deeply to be read", reason="MIME_LIMIT") from exc
        except Exception as exc:  # the stdlib parser should record defects, but some headers crash it (CPython gh-151857)
            raise ParseError(
                f"the e-mail's MIME headers are malformed in a way the mail parser cannot read ({type(exc).__name__}: {exc})",
                reason="MIME_DEFECT",
            ) from exc

    def _walk(self, part: Message, walk: _Walk, *, depth: int, label: str) -> None:
        walk.parts += 1
        if walk.parts > self.max_parts:
            raise ParseError(
                f"the e-mail has more than {self.max_parts} MIME parts; it was not read further",
                reason="MIME_LIMIT",
                position=f"part {walk.parts}",
            )
        walk.defects.update(type(d).__name__ for d in getattr(part, "defects", ()))
        ctype = _safe_ctype(part)
        payload = _safe(part.get_payload, None)
        if ctype == "message/rfc822" or (ctype.startswith("message/") and isinstance(payload, list)):
            if depth + 1 > self.max_depth:
                raise ParseError(
                    f"forwarded messages (message/rfc822) are nested more than {self.max_depth} deep",
                    reason="MIME_LIMIT",
                    position=label,
                )
            walk.summary.append(f"a forwarded message ({ctype})")
            inner = payload if isinstance(payload, list) else []
            for sub in inner:
                if isinstance(sub, Message):
                    self._walk(sub, walk, depth=depth + 1, label=f"{label} > forwarded message")
            return
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    self._walk(sub, walk, depth=depth, label=label)
            return
        filename = _safe_filename(part)
        if (ctype == "application/vnd.ms-outlook" or (filename or "").lower().endswith(".msg")) and (
            data := _safe_bytes(part)
        ).startswith(OLE_MAGIC):
            # An Outlook message attached to a mail: read as a forwarded message, in the same limits.
            if depth + 1 > self.max_depth:
                raise ParseError(
                    f"forwarded messages are nested more than {self.max_depth} deep", reason="MIME_LIMIT", position=label
                )
            try:
                forwarded = msg_to_email(data, max_depth=self.max_depth - depth - 1, max_attachments=self.max_parts)
            except ParseError as exc:
                walk.summary.append(f"{filename or 'an Outlook message'!r} that cannot be read ({exc.message})")
                return
            walk.summary.append(f"an attached Outlook message {filename or ''}".rstrip())
            self._walk(forwarded, walk, depth=depth + 1, label=f"{label} > {filename or 'Outlook message'}")
            return
        disposition = _safe(lambda: part.get_content_disposition(), None)
        is_body = filename is None and disposition != "attachment" and ctype in ("text/plain", "text/html")
        leaf_label = filename or f"part {walk.parts} ({ctype})"
        walk.leaves.append((part, leaf_label, is_body))

    def _attachments(self, walk: _Walk, envelope: Envelope, name: str) -> Iterator[Event]:
        counter = _Counter()
        delegated = 0
        rejected_any = False
        pdfs: list[_Attachment] = []
        body: Message | None = None
        for part, label, is_body in walk.leaves:
            ctype = _safe_ctype(part)
            data = _safe_bytes(part)
            # Decoding records its own defects (bad base64, ...) on the part: collect them now.
            walk.defects.update(type(d).__name__ for d in getattr(part, "defects", ()))
            size_note = f"{len(data):,} bytes"
            if is_body:
                head = data[:_HEAD].lstrip(b"\xef\xbb\xbf \t\r\n")
                if ctype != "text/plain" or not head.startswith(_ORDER_BODY_PREFIXES):
                    walk.summary.append(f"a {ctype} body ({size_note})")
                    if body is None or (ctype == "text/plain" and _safe_ctype(body) != "text/plain"):
                        body = part
                    continue
                label = "message body"
            walk.summary.append(f"{label!r} ({ctype}, {size_note})")
            att = _Attachment(label, ctype, data)
            for ev in self._attachment(att, envelope, counter, pdfs):
                if isinstance(ev, DocumentRejected):
                    rejected_any = True
                elif isinstance(ev, (Document, InterchangeOpened)):
                    delegated += 1
                yield ev
        # PDFs and the body text are read by a partner's template only when nothing in the
        # message is a structured order (a PDF beside an 850 is its printable copy), and
        # not when an attachment was refused (the body then only says "see attached").
        if delegated == 0 and not rejected_any:
            for att in pdfs:
                delegated += 1
                yield _candidate("pdf", att.label, {"label": att.label, "data": att.data}, envelope, counter)
        if delegated == 0 and not rejected_any and body is not None:
            text = _body_text(body)
            if text.strip():
                delegated += 1
                yield _candidate("body", "message body", {"label": "message body", "text": text}, envelope, counter)
        if delegated == 0 and not rejected_any:
            described = "; ".join(walk.summary[:20]) or "no parts"
            if len(walk.summary) > 20:
                described += f"; and {len(walk.summary) - 20} more"
            defects = f" MIME defects: {', '.join(sorted(walk.defects))}." if walk.defects else ""
            yield DocumentRejected(
                envelope=envelope,
                doc_type=None,
                control_number=None,
                # A broken MIME structure may be why nothing usable came out (reliability M4).
                reason="MIME_DEFECT" if walk.defects else "NO_ORDER_ATTACHMENT",
                message=f"the e-mail holds no order (no X12, EDIFACT, cXML, UBL, CSV, XLSX or PDF attachment and no body text); it contained: {described}.{defects}",
                position="message",
                index=counter.next(),
            )

    def _attachment(self, att: _Attachment, envelope: Envelope, counter: _Counter, pdfs: list[_Attachment]) -> Iterator[Event]:
        where = f"attachment {att.label}"

        def reject(reason: str, message: str) -> DocumentRejected:
            return DocumentRejected(envelope, None, None, reason, message, where, counter.next())

        if len(att.data) > self.max_attachment:
            yield reject(
                "ATTACHMENT_TOO_LARGE",
                f"the attachment {att.label} is {len(att.data):,} bytes; the limit is {self.max_attachment:,}",
            )
            return
        lower = att.label.lower()
        if att.content_type in _XLSX_TYPES or lower.endswith((".xlsx", ".xlsm")):
            yield _candidate("xlsx", att.label, {"label": att.label, "data": att.data}, envelope, counter)
            return
        if att.content_type in _ZIP_TYPES or lower.endswith(".zip") or is_zip(att.data[:4]):
            yield from self._zip(att, envelope, counter, reject, pdfs)
            return
        if att.content_type in _CSV_TYPES or lower.endswith(".csv"):
            yield _candidate("csv", att.label, {"label": att.label, "data": att.data}, envelope, counter)
            return
        if att.content_type in _PDF_TYPES or lower.endswith(".pdf") or att.data.startswith(b"%PDF-"):
            pdfs.append(att)
            return
        fmt = _detect(att.data[:_HEAD])
        if fmt is None:
            return  # not an order format (a logo, a PDF, a signature): listed in the summary
        from gateway.formats import get_parser
        from gateway.formats.x12 import X12Parser

        last_envelope = envelope
        parser: Any = X12Parser(lenient=self.x12_lenient) if fmt == "x12" else get_parser(fmt)
        base = counter.interchanges
        try:
            for ev in parser.parse(io.BytesIO(att.data), name=att.label):
                # Interchange indexes run across the whole message, so two attachments'
                # first interchanges are not taken for one (repeats, acknowledgements).
                if base and getattr(ev, "envelope", None) is not None and ev.envelope.standard != "email":
                    ev.envelope = replace(ev.envelope, interchange_index=ev.envelope.interchange_index + base)
                if isinstance(ev, InterchangeOpened):
                    counter.interchanges += 1
                if isinstance(ev, Document):
                    ev.position = f"{where}: {ev.position}"
                    ev.index = counter.next()
                    last_envelope = ev.envelope
                elif isinstance(ev, DocumentRejected):
                    ev.position = f"{where}: {ev.position}"
                    ev.index = counter.next()
                elif isinstance(ev, (InterchangeOpened, InterchangeClosed)):
                    last_envelope = ev.envelope
                    if isinstance(ev, InterchangeOpened) and ev.source is None:
                        ev.source = att.data
                yield ev
        except ParseError as exc:
            at = f"{where}: {exc.position}" if exc.position else where
            yield DocumentRejected(
                last_envelope, None, None, exc.reason, f"the attachment {att.label} cannot be read as {fmt}: {exc.message}", at, counter.next()
            )

    def _zip(self, att: _Attachment, envelope: Envelope, counter: _Counter, reject: Any, pdfs: list[_Attachment]) -> Iterator[Event]:
        if att.zip_depth >= 1:
            yield reject("ZIP_LIMIT", f"{att.label} is a ZIP inside a ZIP; archives are unpacked one level deep only")
            return
        try:
            entries = read_zip(att.data)
        except ZipProblem as exc:
            yield reject(exc.reason, f"the ZIP attachment {att.label} was not unpacked: {exc.message}")
            return
        for entry in entries:
            yield from self._attachment(
                _Attachment(f"{att.label}/{entry.name}", "application/octet-stream", entry.data, att.zip_depth + 1),
                envelope,
                counter,
                pdfs,
            )


def mail_headers(body: bytes) -> Message:
    """The headers of a stored mail (RFC 5322, or an Outlook .msg): who sent it, its Message-ID,
    Authentication-Results. The one place that knows a mail may arrive in either form."""
    from email.parser import BytesHeaderParser

    if body.startswith(OLE_MAGIC):
        try:
            return msg_to_email(body)
        except ParseError:
            return EmailMessage(policy=policy.default)  # no headers: the sender check refuses it
    return BytesHeaderParser(policy=policy.default).parsebytes(body)


def _candidate(kind: str, label: str, body: dict[str, Any], envelope: Envelope, counter: _Counter) -> Document:
    """A document only a partner's template can read (see the module docstring)."""
    where = "message body" if kind == "body" else f"attachment {label}"
    return Document(envelope=envelope, doc_type=kind, control_number=None, body=body, position=where, index=counter.next())


def _body_text(part: Message) -> str:
    """The body as text: text/plain decoded by its charset; text/html reduced to its text."""
    content = _safe(lambda: part.get_content(), None)  # type: ignore[attr-defined]
    if not isinstance(content, str):
        content = _safe_bytes(part).decode("utf-8", "replace")
    content = content.replace("\r\n", "\n")
    if _safe_ctype(part) == "text/html":
        content = _html_text(content)
    return content[:MAX_BODY_TEXT]


def _html_text(html: str) -> str:
    """The text of an HTML body, one line per block element (no network, no scripts)."""
    import lxml.html

    # lxml refuses control characters in any string it is handed, parsed text included (issue 14
    # #14): a mail client's stray \x01 or \x0b is noise in a body, so it becomes a space.
    html = _NOT_XML_CHAR.sub(" ", html)
    root: Any
    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return ""
    for bad in root.xpath("//script|//style|//head"):
        bad.drop_tree()
    for el in root.iter("br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"):
        el.tail = "\n" + (el.tail or "")
    for cell in root.iter("td", "th"):
        cell.tail = "  " + (cell.tail or "")
    text: str = root.text_content()
    return "\n".join(line.strip() for line in text.splitlines())


class _Counter:
    def __init__(self) -> None:
        self.value = -1
        self.interchanges = 0  # interchanges opened in earlier attachments: the next one's index

    def next(self) -> int:
        self.value += 1
        return self.value


def _detect(head: bytes) -> str | None:
    """The order format of an attachment, or None (not recognised, or not an order format)."""
    from gateway.formats import detect

    try:
        fmt = detect(head)
    except ParseError:
        return None
    return None if fmt == "email" else fmt


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:  # a header the stdlib cannot parse: the part is described, never a crash
        return default


def _safe_ctype(part: Message) -> str:
    value: str = _safe(part.get_content_type, "application/octet-stream")
    return value


def _safe_filename(part: Message) -> str | None:
    value = _safe(part.get_filename, None)
    if not isinstance(value, str) or not value.strip():
        return None
    return printable(value.strip(), 200)


def _safe_bytes(part: Message) -> bytes:
    payload = _safe(lambda: part.get_payload(decode=True), None)
    if isinstance(payload, bytes):
        return payload
    raw = _safe(part.get_payload, "")
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _from_address(msg: Message) -> str | None:
    """The single From address, lower-case, for display only (sender checks: email_sender)."""

    def read() -> str | None:
        header: Any = msg["From"] if isinstance(msg, EmailMessage) else None
        addresses = list(getattr(header, "addresses", ()))
        if len(addresses) != 1:
            return None
        spec: str = addresses[0].addr_spec or ""
        return spec.lower() or None

    result: str | None = _safe(read, None)
    return result
