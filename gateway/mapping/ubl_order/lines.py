"""The order lines of a UBL order: cac:OrderLine/cac:LineItem to OrderLine (quantity, price
per base quantity, item ids, dates, allowances, taxes, the originator). See
`gateway.mapping.ubl_order`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from lxml import etree

from gateway.errors import MappingError
from gateway.mapping.ubl_order.parties import _PartyRun

_GTIN = re.compile(r"\d{8}|\d{12,14}")


class _LineRun(_PartyRun):
    """A mapping run that maps the order lines."""

    def _lines(self) -> None:
        x = self.x
        lines: list[dict[str, Any]] = []
        for k, order_line in enumerate(self.findall(self.root, "cac:OrderLine")):
            f = f"lines[{k}]"
            item = self.find(order_line, "cac:LineItem")
            quantity_el = self.find(item, "cbc:Quantity")
            number = self.text(item, "cbc:ID", f"{f}.line_number")
            quantity = x.decimal(quantity_el, f"{f}.quantity")
            if item is None or quantity is None:
                raise MappingError(
                    f"order line {number or k + 1} (line {order_line.sourceline}) has no "
                    "cac:LineItem/cbc:Quantity",
                    reason="XML_MISSING_QUANTITY",
                    position=x.where(order_line) + "/cac:LineItem/cbc:Quantity",
                )
            line: dict[str, Any] = {
                "line_number": number,
                "quantity": quantity,
                "uom": x.attr(quantity_el, "unitCode", f"{f}.uom"),
                "item_ids": [],
                "references": [],
                "dates": [],
                "allowances_charges": [],
                "taxes": [],
                "prices": [],
                "notes": [],
            }
            for el in self.findall(order_line, "cbc:Note") + self.findall(item, "cbc:Note"):
                value = x.text(el, f"{f}.notes[{len(line['notes'])}]")
                if value:
                    line["notes"].append(value)
            self._price(item, line, f)
            self._item(self.find(item, "cac:Item"), line, f)
            for el in self.findall(item, "cac:AllowanceCharge"):
                line["allowances_charges"].append(
                    self._allowance(
                        el, f"{f}.allowances_charges[{len(line['allowances_charges'])}]"
                    )
                )
            extension = self.find(item, "cbc:LineExtensionAmount")
            value = x.text(extension, f"{f}.prices[{len(line['prices'])}].value")
            if extension is not None and value is not None:
                x.check_decimal(extension, value, "cbc:LineExtensionAmount")
                line["prices"].append({"qualifier": "line_extension_amount", "value": value})
            tax = self.amount(item, "cbc:TotalTaxAmount", f"{f}.taxes[{len(line['taxes'])}].amount")
            if tax is not None:
                line["taxes"].append({"type": None, "amount": tax})
            for tag, role in (
                ("cbc:LineStatusCode", "line_status"),
                ("cbc:AccountingCost", "accounting_cost"),
                ("cbc:SalesOrderID", "sales_order"),
            ):
                value = self.text(item, tag, f"{f}.references[{len(line['references'])}].value")
                if value:
                    line["references"].append(
                        {"qualifier": tag.split(":")[1], "value": value, "role": role}
                    )
            label = number or str(k + 1)
            for delivery in self.findall(item, "cac:Delivery"):
                self._delivery_dates(delivery, line["dates"], f"{f}.dates", header=False)
                party = self._delivery_party(delivery, f"other_parties.ship_to@line{label}")
                if party is not None:
                    self.others[f"ship_to@line{label}"] = party
            originator = self.find(item, "cac:OriginatorParty")
            if originator is not None:
                key = f"originator@line{label}"
                self.others[key] = self._party(originator, f"other_parties.{key}")
            lines.append(line)
        self.order["lines"] = lines

    def _price(self, item: etree._Element, line: dict[str, Any], f: str) -> None:
        x = self.x
        price = self.find(item, "cac:Price")
        if price is None:
            return
        amount = self.amount(price, "cbc:PriceAmount", f"{f}.unit_price")
        base_el = self.find(price, "cbc:BaseQuantity")
        base = x.decimal(base_el)
        if amount is not None and base is not None and base_el is not None:
            if base == 0:
                raise MappingError(
                    f"cbc:BaseQuantity (line {base_el.sourceline}) is zero; a price cannot be "
                    "per zero units",
                    reason="XML_BAD_NUMBER",
                    position=x.where(base_el),
                )
            if base != 1:
                amount = amount / base
        line["unit_price"] = amount
        for el in self.findall(price, "cac:AllowanceCharge"):
            charge = self._allowance(
                el, f"{f}.allowances_charges[{len(line['allowances_charges'])}]"
            )
            charge["handling"] = "price"  # already taken into the net unit price
            line["allowances_charges"].append(charge)
            gross = self.find(el, "cbc:BaseAmount")
            value = x.text(gross, f"{f}.prices[{len(line['prices'])}].value")
            if gross is not None and value is not None:
                x.check_decimal(gross, value, "cbc:BaseAmount")
                line["prices"].append({"qualifier": "gross_price", "value": value})

    def _item(self, item: etree._Element | None, line: dict[str, Any], f: str) -> None:
        if item is None:
            return
        x, ids = self.x, line["item_ids"]
        name = self.find(item, "cbc:Name")
        texts = [(x.text(name), name)] + [
            (x.text(d), d) for d in self.findall(item, "cbc:Description")
        ]
        parts: list[str] = []
        for value, el in texts:
            if value and value not in parts and el is not None:
                parts.append(value)
                if len(parts) == 1:
                    x.record(f"{f}.description", el)
        if parts:
            line["description"] = " - ".join(parts)

        def add(el: etree._Element, qualifier: str, field: str | None) -> None:
            value = x.text(el, f"{f}.item_ids[{len(ids)}].value")
            if value is None:
                return
            ids.append({"qualifier": qualifier, "value": value})
            if field is not None and field not in line:
                line[field] = value
                x.record(f"{f}.{field}", el)

        for tag, field in (
            ("cac:SellersItemIdentification", "sku"),
            ("cac:BuyersItemIdentification", "buyer_part_number"),
            ("cac:ManufacturersItemIdentification", None),
        ):
            for ident in self.findall(item, tag):
                id_el = self.find(ident, "cbc:ID")
                if id_el is not None:
                    add(id_el, tag.split(":")[1], field)
                extended = self.find(ident, "cbc:ExtendedID")
                if extended is not None:
                    add(extended, f"{tag.split(':')[1]}/ExtendedID", None)
        for id_el in self.findall(item, "cac:StandardItemIdentification/cbc:ID"):
            scheme = x.attr(id_el, "schemeID")
            value = x.text(id_el) or ""
            field = self.t.item_schemes.get(scheme or "")
            if scheme is None and _GTIN.fullmatch(value):
                field = "gtin"
            qualifier = (
                f"StandardItemIdentification:{scheme}" if scheme else "StandardItemIdentification"
            )
            add(id_el, qualifier, field)
        for code in self.findall(item, "cac:CommodityClassification/cbc:ItemClassificationCode"):
            list_id = x.attr(code, "listID")
            add(code, f"classification:{list_id}" if list_id else "classification", None)
        for prop in self.findall(item, "cac:AdditionalItemProperty"):
            prop_name = self.text(prop, "cbc:Name")
            prop_value = self.text(prop, "cbc:Value")
            if prop_name or prop_value:
                x.record(f"{f}.notes[{len(line['notes'])}]", prop)
                line["notes"].append(f"{prop_name or 'property'}: {prop_value or ''}".strip())
        for category in self.findall(item, "cac:ClassifiedTaxCategory"):
            g = f"{f}.taxes[{len(line['taxes'])}]"
            line["taxes"].append(
                {
                    "type": self._tax_type(category, f"{g}.type"),
                    "percent": self.amount(category, "cbc:Percent", f"{g}.percent"),
                }
            )

    def _earliest_line_delivery(self) -> None:
        best: dt.date | None = None
        for line in self.order.get("lines", []):
            for event in line["dates"]:
                if event["role"] == "requested_delivery" and (best is None or event["date"] < best):
                    best = event["date"]
        if best is not None:
            self.order["requested_delivery_date"] = best
