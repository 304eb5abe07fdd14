"""Reading a UBL document for a mapping run: `_UblRun` finds elements by prefixed paths
(``cac:Party/cbc:ID``) and reads what header and lines share (dates, allowances and charges,
taxes). See `gateway.mapping.ubl_order`.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from lxml import etree

from gateway.formats.base import Document
from gateway.formats.safexml import XmlPicker, XPaths
from gateway.formats.ubl import CAC, CBC, EXT
from gateway.mapping.builder import XmlOrder
from gateway.mapping.ubl_order.tables import UblTables

NS = {"cac": CAC, "cbc": CBC, "ext": EXT}


class _UblRun(XmlOrder):
    """The state of one mapping run, and how it reads the document."""

    t: UblTables

    def __init__(
        self, doc: Document, root: etree._Element, tables: UblTables, trace: dict[str, str] | None
    ):
        root_ns = etree.QName(root).namespace or ""
        paths = XPaths({CAC: "cac", CBC: "cbc", EXT: "ext", root_ns: ""}, frozenset({"cac:OrderLine"}))
        super().__init__(doc, tables, XmlPicker(paths, trace))
        self.root = root
        self.doc_type = doc.doc_type

    def find(self, el: etree._Element | None, path: str) -> etree._Element | None:
        return None if el is None else el.find(_clark(path))

    def findall(self, el: etree._Element | None, path: str) -> list[etree._Element]:
        return [] if el is None else el.findall(_clark(path))

    def text(self, el: etree._Element | None, path: str, field: str | None = None) -> str | None:
        return self.x.text(self.find(el, path), field)

    def amount(
        self, el: etree._Element | None, path: str, field: str | None = None
    ) -> Decimal | None:
        return self.x.decimal(self.find(el, path), field)

    def _date(
        self,
        el: etree._Element | None,
        role: str,
        qualifier: str,
        time_el: etree._Element | None = None,
        dates: list[dict[str, Any]] | None = None,
        f: str = "dates",
    ) -> dt.date | None:
        target = self.dates if dates is None else dates
        value = self.x.date(el, f"{f}[{len(target)}].date")
        if value is None:
            return None
        target.append(
            {"role": role, "qualifier": qualifier, "date": value, "time": self.x.text(time_el)}
        )
        return value

    def _allowance(self, el: etree._Element, f: str) -> dict[str, Any]:
        flag = self.text(el, "cbc:ChargeIndicator", f"{f}.indicator") or ""
        indicator = {"true": "charge", "1": "charge", "false": "allowance", "0": "allowance"}.get(
            flag.lower(), flag or "unknown"
        )
        reasons = [self.x.text(r) for r in self.findall(el, "cbc:AllowanceChargeReason")]
        return {
            "indicator": indicator,
            "code": self.text(el, "cbc:AllowanceChargeReasonCode", f"{f}.code"),
            "amount": self.amount(el, "cbc:Amount", f"{f}.amount"),
            "percent": self.amount(el, "cbc:MultiplierFactorNumeric", f"{f}.percent"),
            "rate": self.amount(el, "cbc:PerUnitAmount", f"{f}.rate"),
            "description": "; ".join(r for r in reasons if r) or None,
        }

    def _taxes(
        self, tax_total: etree._Element, amount: Decimal | None, taxes: list[dict[str, Any]], f: str
    ) -> None:
        subtotals = self.findall(tax_total, "cac:TaxSubtotal")
        if not subtotals:
            taxes.append({"type": None, "amount": amount})
            return
        for sub in subtotals:
            g = f"{f}[{len(taxes)}]"
            category = self.find(sub, "cac:TaxCategory")
            taxes.append(
                {
                    "type": self._tax_type(category, f"{g}.type"),
                    "amount": self.amount(sub, "cbc:TaxAmount", f"{g}.amount"),
                    "percent": self.amount(sub, "cbc:Percent", f"{g}.percent")
                    or self.amount(category, "cbc:Percent", f"{g}.percent"),
                }
            )

    def _tax_type(self, category: etree._Element | None, field: str) -> str | None:
        """ "VAT:S" from TaxScheme/ID and the category's ID, or what there is of them."""
        scheme = self.text(category, "cac:TaxScheme/cbc:ID", field)
        code = self.text(category, "cbc:ID", field)
        return ":".join(p for p in (scheme, code) if p) or None


@functools.lru_cache(maxsize=512)
def _clark(path: str) -> str:
    """'cac:Party/cbc:ID' in Clark notation: lxml finds those twice as fast as prefixed paths."""
    steps = []
    for step in path.split("/"):
        prefix, sep, local = step.partition(":")
        steps.append(f"{{{NS[prefix]}}}{local}" if sep else step)
    return "/".join(steps)
