"""cXML reader: one `Document` per OrderRequest, every other cXML document rejected by name.

A cXML file is one ``<cXML>`` element: a ``Header`` (From, To and Sender credentials) and one
``Request``, ``Message`` or ``Response``. The bytes go through `gateway.formats.safexml`
(no DTD is ever loaded, though cXML files name one in their DOCTYPE), then:

    InterchangeOpened   Envelope(standard "cxml"): sender = Header/Sender/Credential/Identity
                        with its @domain as qualifier, receiver = Header/To/Credential,
                        interchange_control_number = cXML/@payloadID, version = cXML/@version
                        (or the version in the DOCTYPE's DTD address), test_indicator = T or P
                        from Request/@deploymentMode (or Message/@deploymentMode)
    Document            per OrderRequest: doc_type "OrderRequest", body a `CxmlRequest`,
                        position "line N" of the OrderRequest element
    DocumentRejected    per other request or message (ConfirmationRequest, ShipNoticeRequest,
                        PunchOutOrderMessage, StatusUpdateRequest, QuoteRequest, ...) and
                        per Response: reason NOT_AN_ORDER, naming the type
    InterchangeClosed   digest = sha256 of the canonical XML (C14N) of the cXML element,
                        comments excluded; document_count counts documents and rejections

Shared secrets (Credential/SharedSecret, CredentialMac) are cut out of the tree after the
digest is taken, so they never reach a mapper, an order or a log.

Reason codes
    ParseError: those of safexml (XML_FORBIDDEN, XML_LIMIT, XML_SYNTAX), and
        NOT_CXML        the root element is not <cXML> (or is namespaced)
        CXML_ROOT       the root is <cxml> or another spelling: cXML names are case-sensitive
        CXML_STRUCTURE  the <cXML> element holds no Request, Message or Response
    DocumentRejected:
        NOT_AN_ORDER    a cXML request, message or response that is not an OrderRequest
        CXML_STRUCTURE  a Request or Message element with no document inside
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.safexml import (
    MAX_BYTES,
    MAX_DEPTH,
    content_digest,
    parse_xml,
    read_limited,
    sniff_root,
)

__all__ = ["CxmlParser", "CxmlRequest"]

_SECRETS = ("SharedSecret", "CredentialMac")
_DTD_VERSION = re.compile(r"/cXML/(\d+(?:\.\d+)+)/", re.IGNORECASE)
_DEPLOYMENT = {"test": "T", "production": "P"}


@dataclass(frozen=True, slots=True)
class CxmlRequest:
    """The body of a cXML `Document`: the OrderRequest and the document around it.

    `root` is the ``<cXML>`` element (secrets removed), so a mapper can read the Header and
    write absolute XPaths; `request` is the OrderRequest element itself.
    """

    root: etree._Element
    request: etree._Element
    payload_id: str | None
    timestamp: str | None
    version: str | None
    deployment_mode: str | None

    @property
    def header(self) -> etree._Element | None:
        """The cXML Header element, if the document has one."""
        return self.root.find("Header")


class CxmlParser:
    """Reads cXML documents (``<cXML>`` root, DTD never loaded)."""

    name = "cxml"

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def sniff(self, head: bytes) -> bool:
        """True if the first element of `head` is ``cXML`` (any case, no namespace prefix).

        A lowercase ``<cxml>`` is taken too, so that `parse` can say clearly what is wrong
        with it instead of the file going unrecognised. Never true for a UBL document.
        """
        root = sniff_root(head)
        return root is not None and root.prefix is None and root.local.lower() == "cxml"

    def parse(self, stream: IO[bytes] | Any, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of one cXML document; ParseError if it cannot be read as cXML."""
        data = read_limited(stream, self.max_bytes)
        root = parse_xml(data, max_bytes=self.max_bytes, max_depth=self.max_depth)
        _check_root(root)
        bodies = [c for c in root if c.tag in ("Request", "Message", "Response")]
        if not bodies:
            raise ParseError(
                "the <cXML> element holds no Request, Message or Response; there is nothing "
                "to read in it",
                reason="CXML_STRUCTURE",
                position=f"line {root.sourceline}",
            )
        digest = content_digest(root)
        for tag in _SECRETS:
            for secret in list(root.iter(tag)):
                parent = secret.getparent()
                if parent is not None:
                    parent.remove(secret)

        envelope, mode = _envelope(root, bodies)
        warnings = []
        if root.find("Header") is None:
            warnings.append("the cXML document has no Header: sender and receiver are unknown")
        yield InterchangeOpened(envelope=envelope, warnings=warnings)

        index = 0
        for body in bodies:
            if body.tag == "Response":
                yield _response(body, envelope, envelope.interchange_control_number, index)
                index += 1
                continue
            for event in _documents(root, body, envelope, mode, index):
                yield event
                index += 1
        errors = [
            f"element <{child.tag}> at line {child.sourceline} is not part of cXML and was ignored"
            for child in root
            if isinstance(child.tag, str) and child.tag not in _ROOT_CHILDREN
        ]
        yield InterchangeClosed(
            envelope=envelope, digest=digest, errors=errors, document_count=index
        )


_ROOT_CHILDREN = frozenset({"Header", "Request", "Message", "Response", "Signature"})


def _envelope(root: etree._Element, bodies: list[etree._Element]) -> tuple[Envelope, str | None]:
    """(the envelope: sender and receiver from the Header's credentials, the payloadID as
    control number, the deployment mode as test indicator; that mode as written)."""
    header = root.find("Header")
    mode = next((_attr(b, "deploymentMode") for b in bodies if b.get("deploymentMode")), None)
    sender = _credential(header, "Sender")
    receiver = _credential(header, "To")
    envelope = Envelope(
        standard="cxml",
        sender_id=sender[0],
        sender_qualifier=sender[1],
        receiver_id=receiver[0],
        receiver_qualifier=receiver[1],
        interchange_control_number=_attr(root, "payloadID"),
        version=_attr(root, "version") or _dtd_version(root),
        test_indicator=_DEPLOYMENT.get((mode or "production").lower()),
    )
    return envelope, mode


def _documents(
    root: etree._Element,
    body: etree._Element,
    envelope: Envelope,
    mode: str | None,
    index: int,
) -> Iterator[Document | DocumentRejected]:
    """One event per document of a Request or Message element, numbered from `index`: an
    OrderRequest is a Document, anything else (or nothing) is refused."""
    payload_id = envelope.interchange_control_number
    documents = [c for c in body if isinstance(c.tag, str) and c.tag != "Status"]
    if not documents:
        yield DocumentRejected(
            envelope=envelope,
            doc_type=None,
            control_number=payload_id,
            reason="CXML_STRUCTURE",
            message=f"the cXML {body.tag} element is empty: it holds no document",
            position=f"line {body.sourceline}",
            index=index,
        )
        return
    for el in documents:
        doc_type = str(el.tag)
        position = f"line {el.sourceline}"
        if doc_type == "OrderRequest":
            yield Document(
                envelope=envelope,
                doc_type=doc_type,
                control_number=payload_id,
                body=CxmlRequest(
                    root=root,
                    request=el,
                    payload_id=payload_id,
                    timestamp=_attr(root, "timestamp"),
                    version=envelope.version,
                    deployment_mode=_attr(body, "deploymentMode") or mode,
                ),
                position=position,
                index=index,
            )
        else:
            yield DocumentRejected(
                envelope=envelope,
                doc_type=doc_type,
                control_number=payload_id,
                reason="NOT_AN_ORDER",
                message=(
                    f"cXML {doc_type} is not an order; the gateway takes cXML "
                    "OrderRequest documents"
                ),
                position=position,
                index=index,
            )
        index += 1


def _check_root(root: etree._Element) -> None:
    tag = root.tag if isinstance(root.tag, str) else ""
    qname = etree.QName(root)
    where = f"line {root.sourceline}"
    if tag == "cXML":
        return
    if qname.namespace is None and qname.localname.lower() == "cxml":
        raise ParseError(
            f"the root element is <{qname.localname}>, but cXML spells it <cXML> and XML names "
            "are case-sensitive, so this is not a cXML document; ask the sender to fix the "
            "program that writes it",
            reason="CXML_ROOT",
            position=where,
        )
    raise ParseError(
        f"the root element is <{qname.localname}>"
        + (f" in namespace {qname.namespace}" if qname.namespace else "")
        + "; a cXML document starts with <cXML> (no namespace)",
        reason="NOT_CXML",
        position=where,
    )


def _attr(el: etree._Element | None, name: str) -> str | None:
    if el is None:
        return None
    value = el.get(name)
    return value.strip() or None if value is not None else None


def _credential(header: etree._Element | None, part: str) -> tuple[str | None, str | None]:
    """(Identity, @domain) of the first Credential of Header/`part`."""
    if header is None:
        return None, None
    credential = header.find(f"{part}/Credential")
    if credential is None:
        return None, None
    identity = credential.find("Identity")
    text = "".join(str(t) for t in identity.itertext()).strip() if identity is not None else ""
    return text or None, _attr(credential, "domain")


def _dtd_version(root: etree._Element) -> str | None:
    url = getattr(root.getroottree().docinfo, "system_url", None)  # not in lxml-stubs 0.5.1
    if not url:
        return None
    m = _DTD_VERSION.search(str(url))
    return m.group(1) if m else None


def _response(
    body: etree._Element, envelope: Envelope, payload_id: str | None, index: int
) -> DocumentRejected:
    status = body.find("Status")
    detail = ""
    if status is not None:
        code, text = status.get("code"), status.get("text")
        detail = f" (status {code or '?'}{': ' + text[:200] if text else ''})"
    return DocumentRejected(
        envelope=envelope,
        doc_type="Response",
        control_number=payload_id,
        reason="NOT_AN_ORDER",
        message=f"cXML Response{detail} is not an order; the gateway takes cXML OrderRequest documents",
        position=f"line {body.sourceline}",
        index=index,
    )
