"""The one safe way to read XML in the gateway, and small helpers the XML formats share.

Every XML byte comes from a partner and is attacker-controlled, so `parse_xml` is the only
function in the gateway that hands bytes to libxml2, and it does so in four steps:

1. **Size** before anything else: more than `max_bytes` is refused (``XML_LIMIT``) without
   being parsed. `read_limited` reads a stream the same way, never more than the limit + 1.
2. **Prolog check** on the raw bytes: the XML declaration, comments and processing
   instructions before the root are skipped; a DOCTYPE is allowed only as a bare external
   reference (``<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.014/cXML.dtd">``,
   which cXML senders always include), and that DTD is never loaded. A DOCTYPE with an
   internal subset (``[ ... ]``: entity declarations, billion laughs, parameter entities) is
   refused (``XML_FORBIDDEN``), and so is any entity reference other than the five predefined
   ones and character references when there is a DOCTYPE: without its DTD such a reference
   would be dropped silently.
3. **libxml2** with every door shut: ``resolve_entities=False, no_network=True,
   load_dtd=False, dtd_validation=False, huge_tree=False``, comments removed, and a resolver
   that records any attempt to load anything (none is expected: the attempt alone refuses the
   document). libxml2's own guards (entity amplification, a text node over 10 MB, depth 256)
   become ``XML_LIMIT``; any other libxml2 error is ``XML_SYNTAX`` with its line and column.
4. **After parsing**: any DTD declaration or entity node that got through is refused
   (``XML_FORBIDDEN``; belt and braces for encodings the prolog check cannot read), and the
   element depth is checked against `max_depth` (``XML_LIMIT``).

Nothing here reads a file or opens a connection, whatever the document says.

Reason codes (ParseError.reason)
    XML_FORBIDDEN   a DTD internal subset, entity declarations, parameter entities, an
                    unresolvable entity reference, or an attempt to load an external resource
    XML_LIMIT       larger than max_bytes, deeper than max_depth, or a libxml2 resource limit
                    (text node over 10 MB, entity amplification, name too long)
    XML_SYNTAX      not well-formed XML (empty input, mismatched tags, bad encoding, ...)

The helpers after `parse_xml` serve the XML parsers and mappers: `sniff_root` (which element
opens a document, from its first bytes), `XPaths` (readable XPath of an element, and the
leaves a mapping did not use, for ``Order.unmapped``), `xs_decimal` / `xs_date` (XML Schema
numbers and dates, MappingError ``XML_BAD_NUMBER`` / ``XML_BAD_DATE``), and `text_of`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any, TypeVar

from lxml import etree

from gateway.errors import MappingError, ParseError


def content_digest(root: Any) -> str:
    """sha256 of the element's canonical XML (C14N), which recognises a re-sent document
    whatever its formatting. C14N refuses a relative namespace URI (a mutated or careless
    document can carry one): such a document is hashed as serialized instead, never a crash."""
    import hashlib

    try:
        return hashlib.sha256(etree.tostring(root, method="c14n")).hexdigest()
    except etree.C14NError:
        return hashlib.sha256(etree.tostring(root)).hexdigest()

__all__ = [
    "MAX_BYTES",
    "content_digest",
    "MAX_DEPTH",
    "RootTag",
    "XPaths",
    "XmlPicker",
    "parse_xml",
    "read_limited",
    "sniff_root",
    "text_of",
    "xs_date",
    "xs_decimal",
]

_T = TypeVar("_T")

MAX_BYTES = 16 * 1024 * 1024
"""Largest XML document read by default (16 MiB: an order with a few embedded attachments)."""
MAX_DEPTH = 64
"""Deepest element nesting accepted by default (cXML and UBL orders stay under 15)."""
SNIFF_BYTES = 4096

_WS = b" \t\r\n"
# A DOCTYPE the gateway accepts: a name and at most an external id, then '>' (or '[', refused).
_DOCTYPE = re.compile(
    rb"<!DOCTYPE[ \t\r\n]+([^ \t\r\n\[>]+)"
    rb"(?:[ \t\r\n]+(?:SYSTEM[ \t\r\n]+(\"[^\"]*\"|'[^']*')"
    rb"|PUBLIC[ \t\r\n]+(\"[^\"]*\"|'[^']*')[ \t\r\n]+(\"[^\"]*\"|'[^']*')))?"
    rb"[ \t\r\n]*([\[>])"
)
_ENTITY_REF = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)([^;&<>\s]{1,64});")
_HIDDEN = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.DOTALL)
# libxml2 errors that are limits, not syntax: resource limit (text node, amplification,
# depth), name too long; entity loops are an attack.
_LIMIT_CODES = frozenset({etree.ErrorTypes.ERR_RESOURCE_LIMIT, etree.ErrorTypes.ERR_NAME_TOO_LONG})
_FORBIDDEN_CODES = frozenset({etree.ErrorTypes.ERR_ENTITY_LOOP})
_LIMIT_WORDS = ("Excessive depth", "too long", "amplification", "Huge input", "huge text")


class _NoExternal(etree.Resolver):
    """Records every attempt libxml2 makes to load something, and gives it nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[str] = []

    # lxml-stubs 0.5.1 leaves out `context` and resolve_empty(); lxml passes and has both.
    def resolve(self, system_url: str, public_id: str, context: object) -> Any:  # type: ignore[override, unused-ignore]
        self.attempts.append(str(system_url))
        return getattr(self, "resolve_empty")(context)  # noqa: B009


def read_limited(stream: IO[bytes] | Any, max_bytes: int = MAX_BYTES) -> bytes:
    """Read a whole binary stream, but never more than `max_bytes` + 1 bytes.

    Raises ParseError XML_LIMIT when the stream holds more than `max_bytes`.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:  # a raw stream or a pipe may return less than asked
        chunk = stream.read(max_bytes + 1 - size)
        if not chunk:
            break
        if isinstance(chunk, str):  # a text stream slipped in: XML declares its own encoding
            chunk = chunk.encode("utf-8")
        chunks.append(bytes(chunk))
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise ParseError(
            f"the XML document is larger than the limit of {max_bytes:,} bytes; it was not "
            "read (ask the sender to split it or to send attachments separately)",
            reason="XML_LIMIT",
            position=f"byte {max_bytes}",
        )
    return data


def parse_xml(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> etree._Element:
    """Parse untrusted XML bytes and return the root element (comments removed).

    Raises ParseError with reason XML_FORBIDDEN, XML_LIMIT or XML_SYNTAX (see the module
    docstring); never reads a file or the network.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes the raw bytes of the document, not text")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ParseError(
            f"the XML document has {len(data):,} bytes, more than the limit of {max_bytes:,}",
            reason="XML_LIMIT",
            position=f"byte {max_bytes}",
        )
    if not data.strip(_WS + b"\x00"):
        raise ParseError("the input is empty", reason="XML_SYNTAX", position="byte 0")
    _check_prolog(data)

    resolver = _NoExternal()
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )
    parser.resolvers.add(resolver)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None
    if resolver.attempts:  # pragma: no cover - libxml2 is not expected to try with these options
        raise ParseError(
            "the XML document tried to load an external resource "
            f"({resolver.attempts[0][:100]!r}); the gateway never loads DTDs or entities",
            reason="XML_FORBIDDEN",
            position="line 1",
        )
    _check_tree(root, max_depth)
    return root


def _check_prolog(data: bytes) -> None:
    text = _ascii_view(data)
    if text is None:
        return  # an encoding the check cannot read; _check_tree still catches DTD content
    pos = 0
    if text.startswith(codecs.BOM_UTF8):
        pos = 3
    n = len(text)
    doctype = False
    while pos < n:
        while pos < n and text[pos] in _WS:
            pos += 1
        if text.startswith(b"<?", pos):
            end = text.find(b"?>", pos + 2)
            pos = n if end < 0 else end + 2
        elif text.startswith(b"<!--", pos):
            end = text.find(b"-->", pos + 4)
            pos = n if end < 0 else end + 3
        elif text.startswith(b"<!DOCTYPE", pos):
            line = text.count(b"\n", 0, pos) + 1
            m = _DOCTYPE.match(text, pos)
            if m is None:
                raise ParseError(
                    "the XML document has a DOCTYPE the gateway does not accept; only a plain "
                    'reference such as <!DOCTYPE cXML SYSTEM "...cXML.dtd"> is allowed',
                    reason="XML_FORBIDDEN",
                    position=f"line {line}",
                )
            if m.group(5) == b"[":
                subset_end = text.find(b"]", m.end())
                declares = b"<!ENTITY" in text[m.end() : subset_end if subset_end >= 0 else n]
                what = "declares entities" if declares else "has an internal DTD subset"
                raise ParseError(
                    f"the XML document's DOCTYPE {what} ([...]); the gateway refuses inline DTDs "
                    "because they can read local files or expand without bound (XXE, billion "
                    "laughs). Ask the sender to remove the DOCTYPE's [...] part",
                    reason="XML_FORBIDDEN",
                    position=f"line {line}",
                )
            doctype = True
            pos = m.end()
        else:
            break
    if doctype:
        m = _ENTITY_REF.search(text, pos)
        if m is not None:
            # Inside a comment or CDATA section it is only text: look again without them.
            m = _ENTITY_REF.search(_HIDDEN.sub(b"", text[pos:]))
        if m is not None:
            name = m.group(1).decode("ascii", "replace")
            line = text.count(b"\n", 0, pos) + 1
            raise ParseError(
                f"the XML document uses the entity &{name}; which only its DTD defines; the "
                "gateway never loads DTDs, so the value would be lost. Ask the sender to write "
                "the character itself or a character reference (&#...;)",
                reason="XML_FORBIDDEN",
                position=f"line {line}",
            )


def _ascii_view(data: bytes) -> bytes | None:
    """The document as ASCII-compatible bytes for the prolog check, or None if unreadable."""
    head = data[:4]
    if head in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, b"\x00\x00\x00<", b"<\x00\x00\x00"):
        return None  # UTF-32: libxml2 reads it, _check_tree checks it
    if head[:4] == b"Lo\xa7\x94":  # "<?xm" in EBCDIC
        return None
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or head in (
        b"<\x00?\x00",
        b"\x00<\x00?",
    ):
        encoding = (
            "utf-16"
            if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
            else ("utf-16-le" if head[0] == 0x3C else "utf-16-be")
        )
        try:
            return data.decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            return None  # libxml2 will say what is wrong with it
    return data


def _syntax_error(exc: etree.XMLSyntaxError) -> ParseError:
    line, column = exc.position if exc.position else (exc.lineno or 0, 0)
    message = (exc.msg or str(exc)).split(", line ")[0]
    where = f"line {line}, column {column}"
    code = getattr(exc, "code", None)  # not in lxml-stubs 0.5.1
    if code in _LIMIT_CODES or any(w in message for w in _LIMIT_WORDS):
        return ParseError(
            f"the XML document exceeds a parser limit: {message}",
            reason="XML_LIMIT",
            position=where,
        )
    if code in _FORBIDDEN_CODES:
        return ParseError(
            f"the XML document uses entities in a forbidden way: {message}",
            reason="XML_FORBIDDEN",
            position=where,
        )
    return ParseError(
        f"the input is not well-formed XML: {message}", reason="XML_SYNTAX", position=where
    )


def _check_tree(root: etree._Element, max_depth: int) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    # iterentities/iterelements exist on lxml's DTD but not in lxml-stubs 0.5.1.
    if dtd is not None and any(
        next(iter(getattr(dtd, name)()), None) is not None
        for name in ("iterentities", "iterelements")
    ):
        raise ParseError(
            "the XML document declares a DTD inline; the gateway refuses inline DTDs",
            reason="XML_FORBIDDEN",
            position="line 1",
        )
    depth = 0
    for event, node in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > max_depth:
            raise ParseError(
                f"the XML document nests elements deeper than {max_depth} levels",
                reason="XML_LIMIT",
                position=f"line {node.sourceline}",
            )
    for node in root.iter(etree.Entity):
        raise ParseError(
            f"the XML document uses the entity {node.text} which the gateway does not resolve",
            reason="XML_FORBIDDEN",
            position=f"line {node.sourceline}",
        )


# --------------------------------------------------------------------------------------------
# Sniffing


@dataclass(frozen=True, slots=True)
class RootTag:
    """The first element of a document as its start tag spells it."""

    prefix: str | None
    local: str
    namespace: str | None  # the URI its prefix (or the default namespace) is bound to there


_NAME = rb"[A-Za-z_\x80-\xff][A-Za-z0-9_.\-\x80-\xff]*"
_START = re.compile(rb"<(?:(" + _NAME + rb"):)?(" + _NAME + rb")(?=[\s/>]|$)")
_XMLNS = re.compile(rb"xmlns(?::(" + _NAME + rb"))?\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def sniff_root(head: bytes) -> RootTag | None:
    """The root element of an XML document from its first bytes (~4 KB), or None.

    Skips a BOM, blanks, the XML declaration, comments, processing instructions and a
    DOCTYPE (internal subset included). Cheap and lenient: it reads no more than it needs
    and never raises. UTF-16 input with a BOM is read too.
    """
    head = head[:SNIFF_BYTES]
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        head = head[: len(head) & ~1].decode("utf-16", "replace").encode("utf-8", "replace")
    elif head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    pos, n = 0, len(head)
    while pos < n:
        while pos < n and head[pos] in _WS:
            pos += 1
        if head.startswith(b"<?", pos):
            end = head.find(b"?>", pos + 2)
        elif head.startswith(b"<!--", pos):
            end = head.find(b"-->", pos + 4)
            end = end + 1 if end >= 0 else end
        elif head.startswith(b"<!DOCTYPE", pos):
            bracket, close = head.find(b"[", pos), head.find(b">", pos)
            if 0 <= bracket < close:
                end = head.find(b"]", bracket)
                end = head.find(b">", end) - 1 if end >= 0 else -1
            else:
                end = close - 1 if close >= 0 else -1
        else:
            break
        if end < 0:
            return None
        pos = end + 2
    m = _START.match(head, pos)
    if m is None:
        return None
    prefix = m.group(1).decode("utf-8", "replace") if m.group(1) else None
    local = m.group(2).decode("utf-8", "replace")
    tag_end = head.find(b">", m.end())
    attributes = head[m.end() : tag_end if tag_end >= 0 else n]
    namespace = None
    for decl in _XMLNS.finditer(attributes):
        bound = decl.group(1).decode("utf-8", "replace") if decl.group(1) else None
        if bound == prefix:
            value = decl.group(2) if decl.group(2) is not None else decl.group(3)
            namespace = value.decode("utf-8", "replace").strip()
    return RootTag(prefix, local, namespace)


# --------------------------------------------------------------------------------------------
# Paths and unmapped leaves


class XPaths:
    """Readable XPaths of the elements of one document, with fixed namespace prefixes.

    `prefixes` maps a namespace URI to the prefix to write (the root's own namespace to "",
    so UBL reads ``/Order/cac:OrderLine[2]/cbc:ID``). A step gets ``[n]`` (1-based) when its
    parent has several children of that name, or always when its name is in `indexed`.
    """

    def __init__(
        self, prefixes: Mapping[str, str] | None = None, indexed: frozenset[str] = frozenset()
    ):
        self._prefixes = dict(prefixes or {})
        self._indexed = indexed
        self._cache: dict[etree._Element, str] = {}
        self._siblings: dict[tuple[etree._Element, Any], dict[etree._Element, int]] = {}

    def name(self, el: etree._Element) -> str:
        qname = etree.QName(el)
        ns = qname.namespace
        if ns is None:
            return qname.localname
        prefix = self._prefixes.get(ns, el.prefix or "")
        return f"{prefix}:{qname.localname}" if prefix else qname.localname

    def of(self, el: etree._Element) -> str:
        """The XPath of `el` from the document root, e.g. ``/cXML/Request/OrderRequest``."""
        cached = self._cache.get(el)
        if cached is not None:
            return cached
        parent = el.getparent()
        name = self.name(el)
        if parent is None:
            path = f"/{name}"
        else:
            step = name
            key = (parent, el.tag)
            siblings = self._siblings.get(key)
            if siblings is None:  # numbered once per parent and name: linear on long lists
                siblings = {c: k for k, c in enumerate(parent.iterchildren(el.tag), 1)}
                self._siblings[key] = siblings
            if len(siblings) > 1 or name in self._indexed:
                step = f"{name}[{siblings[el]}]"
            path = f"{self.of(parent)}/{step}"
        self._cache[el] = path
        return path

    def leaves(
        self,
        top: etree._Element,
        used: set[etree._Element],
        *,
        skip: frozenset[str] = frozenset(),
        limit: int = 200,
    ) -> Iterator[str]:
        """``xpath=value`` for every leaf under `top` (itself included) not in `used`.

        A leaf is an element without child elements. One with text gives its text; one
        without text but with attributes gives ``xpath/@name=value`` per attribute. Names
        in `skip` (local names) are left out with everything under them; values longer than
        `limit` are shortened, and embedded binary objects are summarized.
        """
        for el in top.iter():
            if el in used or not isinstance(el.tag, str):
                continue
            if len(el) and any(isinstance(c.tag, str) for c in el):
                continue  # not a leaf
            if skip and self._skipped(el, top, skip):
                continue
            value = (el.text or "").strip()
            if value:
                if el.tag.endswith("BinaryObject"):
                    mime = el.get("mimeCode") or "?"
                    name = el.get("filename") or ""
                    value = f"[embedded {mime} {name}, {len(value)} characters omitted]"
                elif len(value) > limit:
                    value = f"{value[:limit]}... ({len(value)} characters)"
                yield f"{self.of(el)}={value}"
            else:
                for attr, attr_value in el.attrib.items():
                    yield f"{self.of(el)}/@{etree.QName(attr).localname}={_str(attr_value)}"

    @staticmethod
    def _skipped(el: etree._Element, top: etree._Element, skip: frozenset[str]) -> bool:
        node: etree._Element | None = el
        while node is not None:
            if etree.QName(node).localname in skip:
                return True
            if node is top:
                return False
            node = node.getparent()
        return False


# --------------------------------------------------------------------------------------------
# Values

# Numbers from 1e-12 to below 1e16 (Decimal.adjusted() is the exponent of the first digit).
_MIN_EXPONENT, _MAX_EXPONENT = -12, 15
_XS_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_XS_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(T[0-9:.]+)?(Z|[+-]\d{2}:\d{2})?")


def _str(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def text_of(el: etree._Element | None) -> str | None:
    """The stripped text of an element, or None if absent or blank."""
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def xs_decimal(value: str, position: str, what: str = "value") -> Decimal:
    """An xs:decimal as Decimal (via the string, never a float).

    Raises MappingError XML_BAD_NUMBER for anything else (exponents, NaN, thousands
    separators, a comma as decimal mark) or a number beyond 1e15 / below 1e-12.
    """
    text = value.strip()
    if not _XS_DECIMAL.fullmatch(text):
        raise MappingError(
            f"{what} {value!r} is not a number; expected digits with an optional sign and "
            "decimal point (e.g. 12.50)",
            reason="XML_BAD_NUMBER",
            position=position,
        )
    try:
        d = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise MappingError(
            f"{what} {value!r} is not a number", reason="XML_BAD_NUMBER", position=position
        ) from None
    if d and not _MIN_EXPONENT <= d.adjusted() <= _MAX_EXPONENT:
        raise MappingError(
            f"{what} {value!r} is out of range for a quantity or amount",
            reason="XML_BAD_NUMBER",
            position=position,
        )
    return d


def xs_date(value: str, position: str, what: str = "date") -> dt.date:
    """The calendar date of an xs:date or xs:dateTime, as written (its own time zone).

    ``2025-01-27T07:35:36+00:00`` and ``2025-01-27`` both give 2025-01-27. Raises
    MappingError XML_BAD_DATE for anything else.
    """
    text = value.strip()
    m = _XS_DATE.fullmatch(text)
    if m is not None:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
    raise MappingError(
        f"{what} {value!r} is not a date; expected YYYY-MM-DD or an ISO 8601 date and time",
        reason="XML_BAD_DATE",
        position=position,
    )


# --------------------------------------------------------------------------------------------
# Reading values for a mapping


class XmlPicker:
    """Reads values out of a parsed document for a mapper, and remembers what it read.

    Every element whose text (or attribute) is read is marked used, so that `unmapped` can
    list the leaves no mapping took (``Order.unmapped``: nothing is dropped silently). When
    `trace` is a dict, each read that names a `field` records ``trace[field] = XPath``; when
    it is None, no path is computed (errors still say where they are).
    """

    def __init__(self, paths: XPaths, trace: dict[str, str] | None = None):
        self.paths = paths
        self.trace = trace
        self.used: set[etree._Element] = set()
        self.used_attrs: set[tuple[etree._Element, str]] = set()

    def record(self, field: str | None, el: etree._Element, attr: str | None = None) -> None:
        """Note in the trace that `field` came from `el` (or its attribute `attr`)."""
        if self.trace is not None and field:
            path = self.paths.of(el)
            self.trace[field] = f"{path}/@{attr}" if attr else path

    def where(self, el: etree._Element, attr: str | None = None) -> str:
        """XPath of `el` or of its attribute, for an error position."""
        path = self.paths.of(el)
        return f"{path}/@{attr}" if attr else path

    def text(self, el: etree._Element | None, field: str | None = None) -> str | None:
        """The stripped text of `el` (None if absent or blank); marks it used."""
        if el is None:
            return None
        self.used.add(el)
        value = text_of(el)
        if value is not None:
            self.record(field, el)
        return value

    def all_text(self, el: etree._Element | None, field: str | None = None) -> str | None:
        """All text inside `el`, children included, blanks collapsed; marks the subtree used."""
        if el is None:
            return None
        for node in el.iter():
            self.used.add(node)
        value = " ".join("".join(_str(t) for t in el.itertext()).split())
        if value:
            self.record(field, el)
        return value or None

    def attr(self, el: etree._Element | None, name: str, field: str | None = None) -> str | None:
        """An attribute's stripped value (None if absent or blank); marks it used."""
        if el is None:
            return None
        raw = el.get(name)
        self.used_attrs.add((el, name))
        if len(el) == 0 and not (el.text or "").strip():
            self.used.add(el)  # an attribute-only leaf: what it says has been read
        value = raw.strip() if raw is not None else ""
        if not value:
            return None
        self.record(field, el, name)
        return value

    def decimal(
        self, el: etree._Element | None, field: str | None = None, what: str | None = None
    ) -> Decimal | None:
        """The text of `el` as a Decimal; MappingError XML_BAD_NUMBER if it is not one."""
        value = self.text(el, field)
        if value is None or el is None:
            return None
        return self._parse(xs_decimal, value, el, None, what)

    def attr_decimal(
        self,
        el: etree._Element | None,
        name: str,
        field: str | None = None,
        what: str | None = None,
    ) -> Decimal | None:
        value = self.attr(el, name, field)
        if value is None or el is None:
            return None
        return self._parse(xs_decimal, value, el, name, what)

    def date(
        self, el: etree._Element | None, field: str | None = None, what: str | None = None
    ) -> dt.date | None:
        value = self.text(el, field)
        if value is None or el is None:
            return None
        return self._parse(xs_date, value, el, None, what)

    def attr_date(
        self,
        el: etree._Element | None,
        name: str,
        field: str | None = None,
        what: str | None = None,
    ) -> dt.date | None:
        value = self.attr(el, name, field)
        if value is None or el is None:
            return None
        return self._parse(xs_date, value, el, name, what)

    def check_decimal(self, el: etree._Element, value: str, what: str | None = None) -> Decimal:
        """`value` (read from `el`) as a Decimal; MappingError XML_BAD_NUMBER at `el` if not."""
        return self._parse(xs_decimal, value, el, None, what)

    def _parse(
        self,
        parse: Callable[[str, str, str], _T],
        value: str,
        el: etree._Element,
        attr: str | None,
        what: str | None,
    ) -> _T:
        """`parse` the value; the XPath for the error is worked out only when there is one."""
        try:
            return parse(value, "", "")
        except MappingError:
            return parse(value, self.where(el, attr), self._what(el, what, attr))

    def _what(self, el: etree._Element, what: str | None, attr: str | None) -> str:
        if what:
            return what
        name = self.paths.name(el)
        line = f" (line {el.sourceline})" if el.sourceline else ""
        return f"{name}/@{attr}{line}" if attr else f"{name}{line}"

    def leftover_attributes(self, el: etree._Element) -> Iterator[str]:
        """``xpath/@name=value`` for each attribute of `el` that was not read."""
        for name in el.attrib:
            key = _str(name)
            if (el, key) not in self.used_attrs:
                yield f"{self.paths.of(el)}/@{etree.QName(key).localname}={_str(el.attrib[name])}"

    def unmapped(self, top: etree._Element, skip: frozenset[str] = frozenset()) -> list[str]:
        """The leaves under `top` that no read marked used (see `XPaths.leaves`)."""
        return list(self.paths.leaves(top, self.used, skip=skip))
