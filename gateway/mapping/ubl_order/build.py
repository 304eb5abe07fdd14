"""One UBL mapping run, `_Build`: the document's header (purpose, PO number, references,
parties, deliveries, money and terms), then its lines, then the order. See
`gateway.mapping.ubl_order`.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import MappingError
from gateway.mapping.builder import envelope_source
from gateway.mapping.ubl_order.lines import _LineRun
from gateway.mapping.ubl_order.tables import _PARTY_FIELDS
from gateway.model import Order, Purpose

_DOCUMENT_REFERENCES = (
    ("cac:QuotationDocumentReference", "quotation"),
    ("cac:OrderDocumentReference", "order_document"),
    ("cac:OriginatorDocumentReference", "originator_document"),
    ("cac:CatalogueReference", "catalogue"),
    ("cac:AdditionalDocumentReference", "additional_document"),
    ("cac:ProjectReference", "project"),
)
_HEADER_VALUES = (
    ("cbc:SalesOrderID", "sales_order"),
    ("cbc:CustomerReference", "customer_reference"),
    ("cbc:AccountingCost", "accounting_cost"),
    ("cbc:AccountingCostCode", "accounting_cost"),
)
_OTHER_AMOUNTS = (
    "TaxExclusiveAmount",
    "TaxInclusiveAmount",
    "ChargeTotalAmount",
    "PrepaidAmount",
    "PayableRoundingAmount",
)


class _Build(_LineRun):
    """The state of one mapping run: the walk over the document."""

    def run(self) -> Order:
        x, root, o = self.x, self.root, self.order
        o["channel"] = "ubl"
        purpose = self.t.purpose.get(self.doc_type, Purpose.OTHER)
        copy = self.text(root, "cbc:CopyIndicator")
        if self.doc_type == "Order" and (copy or "").lower() == "true":
            purpose = Purpose.DUPLICATE
        o["purpose"] = purpose
        own_id = self.find(root, "cbc:ID")
        order_ref = self.find(root, "cac:OrderReference/cbc:ID")
        if self.doc_type in ("OrderCancellation", "OrderChange"):
            # Changes and cancellations carry the number of the order they change, which is
            # how the gateway links them to it (partner + PO number); their own id is a reference.
            po = x.text(order_ref, "po_number")
            own = x.text(own_id, "references[0].value")
            if own:
                role = "cancellation" if self.doc_type == "OrderCancellation" else "order_change"
                self.references.append({"qualifier": "ID", "value": own, "role": role})
            missing = "the number of the order it changes (cac:OrderReference/cbc:ID)"
        else:
            po = x.text(own_id, "po_number")
            missing = "an order number (cbc:ID)"
        if po is None:
            raise MappingError(
                f"the UBL {self.doc_type} has no {missing}",
                reason="MISSING_PO_NUMBER",
                position=x.paths.of(root)
                + (
                    "/cac:OrderReference/cbc:ID"
                    if self.doc_type in ("OrderCancellation", "OrderChange")
                    else "/cbc:ID"
                ),
            )
        o["po_number"] = po
        if self.doc_type == "Order" and order_ref is not None:
            value = x.text(order_ref, f"references[{len(self.references)}].value")
            if value:
                self.references.append(
                    {"qualifier": "OrderReference", "value": value, "role": "original_order"}
                )
        o["order_date"] = x.date(self.find(root, "cbc:IssueDate"), "order_date")
        o["order_type"] = self.text(root, "cbc:OrderTypeCode", "order_type")
        currency = self.text(root, "cbc:DocumentCurrencyCode", "currency")
        if currency is None:
            payable = self.find(root, "cac:AnticipatedMonetaryTotal/cbc:PayableAmount")
            currency = x.attr(payable, "currencyID", "currency")
        o["currency"] = currency
        notes: list[str] = []
        for tag in ("cbc:Note", "cbc:CancellationNote"):
            for el in self.findall(root, tag):
                value = x.text(el, f"notes[{len(notes)}]")
                if value:
                    notes.append(value)
        o["notes"] = notes
        for tag, key in (
            ("cbc:UBLVersionID", "ubl_version"),
            ("cbc:CustomizationID", "ubl_customization_id"),
            ("cbc:ProfileID", "ubl_profile_id"),
            ("cbc:UUID", "ubl_uuid"),
            ("cbc:SequenceNumberID", "ubl_sequence_number"),
        ):
            value = self.text(root, tag, f"extensions.{key}")
            if value is not None:
                self.extensions[key] = value
        o["source"] = envelope_source(self.doc, omit=("group_control_number", "test_indicator"))
        self._references()
        self._parties()
        self._deliveries()
        self._header_money()
        self._payment_terms()
        self._lines()
        if "requested_delivery_date" not in o:
            self._earliest_line_delivery()
        period = self.find(root, "cac:ValidityPeriod")
        self._date(self.find(period, "cbc:StartDate"), "valid_from", "ValidityPeriod/StartDate")
        self._date(self.find(period, "cbc:EndDate"), "valid_until", "ValidityPeriod/EndDate")
        return self.assemble(x.unmapped(root))

    def _references(self) -> None:
        x, root, refs = self.x, self.root, self.references
        for tag, role in _HEADER_VALUES:
            for el in self.findall(root, tag):
                value = x.text(el, f"references[{len(refs)}].value")
                if value:
                    refs.append({"qualifier": tag.split(":")[1], "value": value, "role": role})
        for contract in self.findall(root, "cac:Contract"):
            contract_id = self.find(contract, "cbc:ID")
            value = x.text(contract_id, f"references[{len(refs)}].value")
            if value and contract_id is not None:
                refs.append(
                    {
                        "qualifier": "Contract",
                        "value": value,
                        "description": self.text(contract, "cbc:ContractType"),
                        "role": "contract",
                    }
                )
                if "contract_number" not in self.order:
                    self.order["contract_number"] = value
                    x.record("contract_number", contract_id)
        for tag, role in _DOCUMENT_REFERENCES:
            for el in self.findall(root, tag):
                value = self.text(el, "cbc:ID", f"references[{len(refs)}].value")
                if value is None:
                    continue
                refs.append(
                    {
                        "qualifier": self.text(el, "cbc:DocumentTypeCode") or tag.split(":")[1],
                        "value": value,
                        "description": self.text(el, "cbc:DocumentType"),
                        "role": role,
                    }
                )

    def _parties(self) -> None:
        for tag, role in self.t.party_roles.items():
            holder = self.find(self.root, f"cac:{tag}")
            if holder is None:
                continue
            f = role if role in _PARTY_FIELDS else f"other_parties.{role}"
            party = self._party(holder, f)
            if role in _PARTY_FIELDS:
                self.order[role] = party
            else:
                self.others[role] = party

    def _deliveries(self) -> None:
        for k, delivery in enumerate(self.findall(self.root, "cac:Delivery")):
            f = "ship_to" if k == 0 else f"other_parties.delivery_{k + 1}"
            party = self._delivery_party(delivery, f)
            if party is not None:
                if k == 0:
                    self.order["ship_to"] = party
                else:
                    self.others[f"delivery_{k + 1}"] = party
            self._delivery_dates(delivery, self.dates, "dates", header=k == 0)
        terms = self.find(self.root, "cac:DeliveryTerms")
        if terms is not None:
            x = self.x
            shipping: dict[str, Any] = {}
            term_id = self.find(terms, "cbc:ID")
            shipping["incoterms"] = x.text(term_id, "shipping.incoterms")
            x.attr(term_id, "schemeID")
            shipping["incoterms_location"] = self.text(
                terms, "cac:DeliveryLocation/cbc:ID", "shipping.incoterms_location"
            )
            special = [x.text(el) for el in self.findall(terms, "cbc:SpecialTerms")]
            shipping["instructions"] = [s for s in special if s]
            self.order["shipping"] = shipping

    def _header_money(self) -> None:
        x, root, o = self.x, self.root, self.order
        o["allowances_charges"] = [
            self._allowance(el, f"allowances_charges[{k}]")
            for k, el in enumerate(self.findall(root, "cac:AllowanceCharge"))
        ]
        totals: dict[str, Any] = {}
        taxes: list[dict[str, Any]] = []
        for tax_total in self.findall(root, "cac:TaxTotal"):
            amount = self.amount(tax_total, "cbc:TaxAmount", "totals.tax_total")
            if "tax_total" not in totals:
                totals["tax_total"] = amount
            self._taxes(tax_total, amount, taxes, "taxes")
        o["taxes"] = taxes
        monetary = self.find(root, "cac:AnticipatedMonetaryTotal")
        if monetary is not None:
            totals["subtotal"] = self.amount(monetary, "cbc:LineExtensionAmount", "totals.subtotal")
            totals["discount_total"] = self.amount(
                monetary, "cbc:AllowanceTotalAmount", "totals.discount_total"
            )
            totals["total"] = self.amount(monetary, "cbc:PayableAmount", "totals.total")
            amounts: list[dict[str, str]] = []
            for tag in _OTHER_AMOUNTS:
                el = self.find(monetary, f"cbc:{tag}")
                value = x.text(el, f"totals.amounts[{len(amounts)}].value")
                if el is not None and value is not None:
                    x.check_decimal(el, value, tag)
                    amounts.append({"qualifier": tag, "value": value})
            totals["amounts"] = amounts
        count = self.find(root, "cbc:LineCountNumeric")
        if count is not None:
            number = x.decimal(count, "totals.line_count")
            if number is not None:
                if number != number.to_integral_value():
                    raise MappingError(
                        f"cbc:LineCountNumeric {number} must be a whole number",
                        reason="XML_BAD_NUMBER",
                        position=x.where(count),
                    )
                totals["line_count"] = int(number)
        if totals:
            o["totals"] = totals

    def _payment_terms(self) -> None:
        """cac:PaymentTerms: one payment_terms entry each."""
        x, root = self.x, self.root
        terms: list[dict[str, Any]] = []
        for k, el in enumerate(self.findall(root, "cac:PaymentTerms")):
            g = f"payment_terms[{k}]"
            notes = [x.text(n, f"{g}.description") for n in self.findall(el, "cbc:Note")]
            terms.append(
                {
                    "type_code": self.text(el, "cbc:ID", f"{g}.type_code")
                    or self.text(el, "cbc:PaymentMeansID", f"{g}.type_code"),
                    "description": " ".join(n for n in notes if n) or None,
                    "discount_percent": self.amount(
                        el, "cbc:SettlementDiscountPercent", f"{g}.discount_percent"
                    ),
                    "net_due_date": x.date(
                        self.find(el, "cbc:PaymentDueDate"), f"{g}.net_due_date"
                    ),
                }
            )
        self.order["payment_terms"] = terms
