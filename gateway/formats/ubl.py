"""UBL 2.x reader (OASIS UBL 2.0-2.4, Peppol BIS Ordering / Advanced Ordering 3).

One file is one UBL document; its root element's namespace names the document type
(``urn:oasis:names:specification:ubl:schema:xsd:Order-2``). UBL 2.0 and 2.1+ share the
namespaces, so one reader serves all versions. The bytes go through
`gateway.formats.safexml`, then:

    InterchangeOpened   Envelope(standard "ubl"): sender = the buyer's cbc:EndpointID (its
                        @schemeID as qualifier) or else its first PartyIdentification/cbc:ID,
                        receiver = the seller's the same way (for other documents, the
                        party that sends or receives that kind of document),
                        interchange_control_number = cbc:ID, or "cbc:ID/cbc:UUID" when a
                        UUID is present, version = cbc:UBLVersionID
    Document            for Order, OrderChange and OrderCancellation: doc_type is the root's
                        local name, body is the root element, position "line N"
    DocumentRejected    any other UBL document (OrderResponse, DespatchAdvice, Invoice,
                        ApplicationResponse, RequestForQuotation, ...): NOT_AN_ORDER
    InterchangeClosed   digest = sha256 of the canonical XML (C14N) of the document

Reason codes
    ParseError: those of safexml (XML_FORBIDDEN, XML_LIMIT, XML_SYNTAX), and
        NOT_UBL         the root element is not in a UBL document namespace
        UBL_NAMESPACE   the root's name and its namespace disagree (Order in OrderChange-2)
    DocumentRejected:
        NOT_AN_ORDER    a UBL document that is not an Order, OrderChange or OrderCancellation
"""

from __future__ import annotations

from collections.abc import Iterator
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
    text_of,
)

__all__ = ["CAC", "CBC", "EXT", "ORDER_TYPES", "UBL_NS_PREFIX", "UblParser", "ubl_namespace"]

UBL_NS_PREFIX = "urn:oasis:names:specification:ubl:schema:xsd:"
CBC = UBL_NS_PREFIX + "CommonBasicComponents-2"
CAC = UBL_NS_PREFIX + "CommonAggregateComponents-2"
EXT = UBL_NS_PREFIX + "CommonExtensionComponents-2"
ORDER_TYPES = ("Order", "OrderChange", "OrderCancellation")
# Namespaces of the common components: never the root of a document.
_COMPONENTS = frozenset(
    UBL_NS_PREFIX + n
    for n in (
        "CommonBasicComponents-2",
        "CommonAggregateComponents-2",
        "CommonExtensionComponents-2",
        "CommonSignatureComponents-2",
        "SignatureAggregateComponents-2",
        "SignatureBasicComponents-2",
        "QualifiedDatatypes-2",
        "CoreComponentParameters-2",
    )
)
# Who sends and who receives, by document type; the first party found is used.
_SENDERS = {
    "Order": ("BuyerCustomerParty",),
    "OrderChange": ("BuyerCustomerParty",),
    "OrderCancellation": ("BuyerCustomerParty",),
}
_RECEIVERS = {
    "Order": ("SellerSupplierParty",),
    "OrderChange": ("SellerSupplierParty",),
    "OrderCancellation": ("SellerSupplierParty",),
}
_OTHER_SENDERS = (
    "SenderParty",
    "SellerSupplierParty",
    "DespatchSupplierParty",
    "AccountingSupplierParty",
    "BuyerCustomerParty",
)
_OTHER_RECEIVERS = (
    "ReceiverParty",
    "BuyerCustomerParty",
    "DeliveryCustomerParty",
    "AccountingCustomerParty",
    "SellerSupplierParty",
)


def ubl_namespace(doc_type: str) -> str:
    """The namespace of a UBL document type, e.g. ``...:xsd:Order-2`` for "Order"."""
    return f"{UBL_NS_PREFIX}{doc_type}-2"


class UblParser:
    """Reads UBL 2.x documents; Order, OrderChange and OrderCancellation become documents."""

    name = "ubl"

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def sniff(self, head: bytes) -> bool:
        """True if the first element of `head` is in a UBL document namespace.

        Never true for cXML (which has no namespace).
        """
        root = sniff_root(head)
        return (
            root is not None
            and root.namespace is not None
            and root.namespace.startswith(UBL_NS_PREFIX)
            and root.namespace not in _COMPONENTS
        )

    def parse(self, stream: IO[bytes] | Any, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of one UBL document; ParseError if it cannot be read as UBL."""
        data = read_limited(stream, self.max_bytes)
        root = parse_xml(data, max_bytes=self.max_bytes, max_depth=self.max_depth)
        doc_type = _check_root(root)
        digest = content_digest(root)

        doc_id = text_of(root.find(f"{{{CBC}}}ID"))
        uuid = text_of(root.find(f"{{{CBC}}}UUID"))
        sender = _party_id(root, _SENDERS.get(doc_type, _OTHER_SENDERS))
        receiver = _party_id(root, _RECEIVERS.get(doc_type, _OTHER_RECEIVERS))
        envelope = Envelope(
            standard="ubl",
            sender_id=sender[0],
            sender_qualifier=sender[1],
            receiver_id=receiver[0],
            receiver_qualifier=receiver[1],
            interchange_control_number=f"{doc_id}/{uuid}" if doc_id and uuid else doc_id or uuid,
            version=text_of(root.find(f"{{{CBC}}}UBLVersionID")),
        )
        yield InterchangeOpened(envelope=envelope)
        position = f"line {root.sourceline}"
        if doc_type in ORDER_TYPES:
            warnings = []
            if (text_of(root.find(f"{{{CBC}}}CopyIndicator")) or "").lower() == "true":
                warnings.append(
                    "cbc:CopyIndicator is true: the sender marks this document as a copy of "
                    "one sent before"
                )
            yield Document(
                envelope=envelope,
                doc_type=doc_type,
                control_number=doc_id,
                body=root,
                position=position,
                index=0,
                warnings=warnings,
            )
        else:
            yield DocumentRejected(
                envelope=envelope,
                doc_type=doc_type,
                control_number=doc_id,
                reason="NOT_AN_ORDER",
                message=(
                    f"UBL {doc_type} is not an order; the gateway takes UBL Order, OrderChange "
                    "and OrderCancellation documents"
                ),
                position=position,
                index=0,
            )
        yield InterchangeClosed(envelope=envelope, digest=digest, document_count=1)


def _check_root(root: etree._Element) -> str:
    """The document type (the root's local name); ParseError if the root is not UBL."""
    qname = etree.QName(root)
    ns = qname.namespace
    where = f"line {root.sourceline}"
    if ns is None or not ns.startswith(UBL_NS_PREFIX) or ns in _COMPONENTS:
        raise ParseError(
            f"the root element <{qname.localname}> is not in a UBL document namespace "
            f"({ns or 'no namespace'}); a UBL document's root is in a namespace such as "
            f"{ubl_namespace('Order')}",
            reason="NOT_UBL",
            position=where,
        )
    if ns != ubl_namespace(qname.localname):
        raise ParseError(
            f"the root element <{qname.localname}> is in namespace {ns}, which belongs to "
            "another UBL document type; the document is not valid UBL",
            reason="UBL_NAMESPACE",
            position=where,
        )
    return qname.localname


def _party_id(root: etree._Element, roles: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(identifier, scheme) of the first of `roles` present: EndpointID, else PartyIdentification."""
    for role in roles:
        holder = root.find(f"{{{CAC}}}{role}")
        if holder is None:
            continue
        party = holder.find(f"{{{CAC}}}Party")
        if party is None:  # SenderParty/ReceiverParty are parties themselves
            party = holder
        for path in (f"{{{CBC}}}EndpointID", f"{{{CAC}}}PartyIdentification/{{{CBC}}}ID"):
            el = party.find(path)
            value = text_of(el)
            if el is not None and value:
                return value, (el.get("schemeID") or "").strip() or None
    return None, None
