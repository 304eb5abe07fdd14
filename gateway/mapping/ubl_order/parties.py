"""Parties, their addresses and contacts, and deliveries (where and when), as the header and
the lines of a UBL order both carry them. See `gateway.mapping.ubl_order`.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.mapping.ubl_order.reading import _UblRun


class _PartyRun(_UblRun):
    """A mapping run that reads parties and deliveries."""

    def _party(self, holder: etree._Element, f: str) -> dict[str, Any]:
        """A party element (or an XxxParty holding cac:Party) as a Party."""
        x = self.x
        el = self.find(holder, "cac:Party")
        if el is None:
            el = holder
        party: dict[str, Any] = {"address_lines": [], "references": []}
        refs = party["references"]
        party["name"] = self.text(el, "cac:PartyName/cbc:Name", f"{f}.name")
        legal = self.find(el, "cac:PartyLegalEntity/cbc:RegistrationName")
        if party["name"] is None:
            party["name"] = x.text(legal, f"{f}.name")
        ids = self.findall(el, "cac:PartyIdentification/cbc:ID")
        endpoint = self.find(el, "cbc:EndpointID")
        first = ids[0] if ids else endpoint
        if first is not None:
            party["code"] = x.text(first, f"{f}.code")
            party["code_qualifier"] = x.attr(first, "schemeID", f"{f}.code_qualifier")
        for other, role in [(i, "party_id") for i in ids[1:]] + (
            [(endpoint, "endpoint")] if endpoint is not None and endpoint is not first else []
        ):
            value = x.text(other, f"{f}.references[{len(refs)}].value")
            if value:
                scheme = x.attr(other, "schemeID")
                refs.append(
                    {
                        "qualifier": scheme or etree.QName(other).localname,
                        "value": value,
                        "role": role,
                    }
                )
        for path, role in (
            ("cac:PartyLegalEntity/cbc:CompanyID", "company_id"),
            ("cac:PartyTaxScheme/cbc:CompanyID", "tax_id"),
        ):
            for company in self.findall(el, path):
                value = x.text(company, f"{f}.references[{len(refs)}].value")
                if value:
                    scheme = x.attr(company, "schemeID")
                    if role == "tax_id":
                        scheme = scheme or self.text(company.getparent(), "cac:TaxScheme/cbc:ID")
                    refs.append({"qualifier": scheme or role, "value": value, "role": role})
        for tag in ("cbc:CustomerAssignedAccountID", "cbc:SupplierAssignedAccountID"):
            value = self.text(holder, tag, f"{f}.references[{len(refs)}].value")
            if value:
                refs.append({"qualifier": tag.split(":")[1], "value": value, "role": "account"})
        address = self.find(el, "cac:PostalAddress")
        if address is not None:
            self._address(address, party, f)
        contact = self._contact(self.find(el, "cac:Contact"), f)
        if contact is None:
            for tag in ("cac:DeliveryContact", "cac:AccountingContact", "cac:BuyerContact"):
                contact = self._contact(self.find(holder, tag), f)
                if contact is not None:
                    break
        person = self.find(el, "cac:Person")
        if person is not None:
            names = [
                self.text(person, t) for t in ("cbc:FirstName", "cbc:MiddleName", "cbc:FamilyName")
            ]
            full = " ".join(n for n in names if n)
            if full:
                contact = contact or {}
                contact.setdefault("name", full)
        if contact is not None:
            party["contact"] = contact
        return party

    def _address(self, addr: etree._Element, party: dict[str, Any], f: str) -> None:
        x, lines = self.x, party["address_lines"]

        def add(value: str | None, el: etree._Element | None) -> None:
            if value and el is not None:
                x.record(f"{f}.address_lines[{len(lines)}]", el)
                lines.append(value)

        street = self.find(addr, "cbc:StreetName")
        number = self.text(addr, "cbc:BuildingNumber")
        value = x.text(street)
        if value and number:
            value = f"{value} {number}"
        add(value, street)
        for tag in ("cbc:AdditionalStreetName", "cbc:BuildingName", "cbc:Department"):
            el = self.find(addr, tag)
            add(x.text(el), el)
        for el in self.findall(addr, "cac:AddressLine/cbc:Line"):
            add(x.text(el), el)
        box = self.find(addr, "cbc:Postbox")
        postbox = x.text(box)
        add(f"PO Box {postbox}" if postbox else None, box)
        party["city"] = self.text(addr, "cbc:CityName", f"{f}.city")
        party["postal_code"] = self.text(addr, "cbc:PostalZone", f"{f}.postal_code")
        party["region"] = self.text(addr, "cbc:CountrySubentity", f"{f}.region") or self.text(
            addr, "cbc:CountrySubentityCode", f"{f}.region"
        )
        party["country"] = self.text(addr, "cac:Country/cbc:IdentificationCode", f"{f}.country")

    def _contact(self, el: etree._Element | None, f: str) -> dict[str, Any] | None:
        if el is None:
            return None
        contact = {
            "name": self.text(el, "cbc:Name", f"{f}.contact.name"),
            "phone": self.text(el, "cbc:Telephone", f"{f}.contact.phone"),
            "fax": self.text(el, "cbc:Telefax", f"{f}.contact.fax"),
            "email": self.text(el, "cbc:ElectronicMail", f"{f}.contact.email"),
        }
        return contact if any(contact.values()) else None

    def _delivery_party(self, delivery: etree._Element, f: str) -> dict[str, Any] | None:
        x = self.x
        location = self.find(delivery, "cac:DeliveryLocation")
        delivery_party = self.find(delivery, "cac:DeliveryParty")
        party: dict[str, Any] | None = None
        if delivery_party is not None:
            party = self._party(delivery_party, f)
        if location is not None:
            loc_id = self.find(location, "cbc:ID")
            loc: dict[str, Any] = {"address_lines": [], "references": []}
            if loc_id is not None and x.text(loc_id):
                loc["code"] = x.text(loc_id, f"{f}.code")
                loc["code_qualifier"] = x.attr(loc_id, "schemeID", f"{f}.code_qualifier")
            loc["name"] = self.text(location, "cbc:Name", f"{f}.name")
            address = self.find(location, "cac:Address")
            if address is not None:
                self._address(address, loc, f)
            party = _merge_party(loc, party)
        address = self.find(delivery, "cac:DeliveryAddress")  # UBL 2.0
        if address is not None:
            loc = {"address_lines": [], "references": []}
            self._address(address, loc, f)
            party = _merge_party(loc, party)
        return party

    def _delivery_dates(
        self, delivery: etree._Element, dates: list[dict[str, Any]], f: str, *, header: bool
    ) -> None:
        period = self.find(delivery, "cac:RequestedDeliveryPeriod")
        if period is not None:
            start = self._date(
                self.find(period, "cbc:StartDate"),
                "requested_delivery",
                "RequestedDeliveryPeriod/StartDate",
                self.find(period, "cbc:StartTime"),
                dates,
                f,
            )
            end = self._date(
                self.find(period, "cbc:EndDate"),
                "do_not_deliver_after",
                "RequestedDeliveryPeriod/EndDate",
                self.find(period, "cbc:EndTime"),
                dates,
                f,
            )
            wanted = start or end
            if header and wanted is not None and "requested_delivery_date" not in self.order:
                self.order["requested_delivery_date"] = wanted
                src = self.find(period, "cbc:StartDate" if start else "cbc:EndDate")
                if src is not None:
                    self.x.record("requested_delivery_date", src)
        self._date(
            self.find(delivery, "cbc:LatestDeliveryDate"),
            "do_not_deliver_after",
            "LatestDeliveryDate",
            self.find(delivery, "cbc:LatestDeliveryTime"),
            dates,
            f,
        )
        self._date(
            self.find(delivery, "cac:Despatch/cbc:RequestedDespatchDate"),
            "requested_ship",
            "Despatch/RequestedDespatchDate",
            self.find(delivery, "cac:Despatch/cbc:RequestedDespatchTime"),
            dates,
            f,
        )


def _merge_party(primary: dict[str, Any], fallback: dict[str, Any] | None) -> dict[str, Any]:
    """`primary` with the fields it lacks taken from `fallback` (a DeliveryParty)."""
    if fallback is None:
        return primary
    merged = dict(fallback)
    for key, value in primary.items():
        if value not in (None, [], {}):
            merged[key] = value
    merged["references"] = fallback.get("references", []) + [
        r for r in primary.get("references", []) if r not in fallback.get("references", [])
    ]
    return merged
