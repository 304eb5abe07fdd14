"""address: country and region codes, postal-code formats, house numbers, PO boxes, phones.

Checked on the parties named in ``parties`` (default: ship_to). Reason codes (default outcome):

- ADDRESS_MISSING (hold): the party has no street address line
- COUNTRY_UNKNOWN (reject): not an ISO 3166 country (alpha-2, alpha-3 or its English name)
- REGION_UNKNOWN (hold): the region is not a subdivision of that country (pycountry)
- POSTAL_CODE_FORMAT (hold): the postal code does not fit the country's format
- HOUSE_NUMBER_MISSING (hold): no street line carries a number
- PO_BOX_NOT_DELIVERABLE (hold): a PO box address for a carrier listed in ``po_box_carriers``
- PHONE_INVALID (hold): the party's or customer's phone is not a valid number for the country

A party without a country is read as ``default_country`` (none: country checks are skipped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import ClassVar, Literal

import phonenumbers
import pycountry
from pydantic import Field, field_validator

from gateway.model import Order, Party
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext

__all__ = ["POSTAL_CODES", "AddressConfig", "AddressRule"]

# Postal-code formats of the countries orders most often go to; `postal_codes:` adds or replaces.
POSTAL_CODES: Mapping[str, str] = {
    "US": r"\d{5}(-\d{4})?",
    "CA": r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d",
    "GB": r"(GIR ?0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPS-UW]|[A-HK-Y][0-9][ABEHMNPRV-Y]) ?[0-9][ABD-HJLNP-UW-Z]{2})",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "IT": r"\d{5}",
    "ES": r"\d{5}",
    "NL": r"\d{4} ?[A-Z]{2}",
    "BE": r"\d{4}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
    "DK": r"\d{4}",
    "SE": r"\d{3} ?\d{2}",
    "NO": r"\d{4}",
    "FI": r"\d{5}",
    "PL": r"\d{2}-\d{3}",
    "PT": r"\d{4}-\d{3}",
    "IE": r"[AC-FHKNPRTV-Y]\d{2} ?[0-9AC-FHKNPRTV-Y]{4}",
    "AU": r"\d{4}",
    "NZ": r"\d{4}",
    "JP": r"\d{3}-?\d{4}",
    "MX": r"\d{5}",
    "BR": r"\d{5}-?\d{3}",
    "IN": r"\d{6}",
    "CN": r"\d{6}",
}

_PO_BOX = re.compile(
    r"\b(P\.?\s*O\.?\s*BOX|POST\s+OFFICE\s+BOX|POSTFACH|BO[IÎ]TE\s+POSTALE|APARTADO(\s+DE\s+CORREOS)?|POSTBUS)\b",
    re.I,
)
_PARTIES = ("ship_to", "bill_to", "buyer")


class AddressConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "ADDRESS_MISSING": Outcome.HOLD,
        "COUNTRY_UNKNOWN": Outcome.REJECT,
        "REGION_UNKNOWN": Outcome.HOLD,
        "POSTAL_CODE_FORMAT": Outcome.HOLD,
        "HOUSE_NUMBER_MISSING": Outcome.HOLD,
        "PO_BOX_NOT_DELIVERABLE": Outcome.HOLD,
        "PHONE_INVALID": Outcome.HOLD,
    }

    type: Literal["address"] = "address"
    parties: list[Literal["ship_to", "bill_to", "buyer"]] = Field(
        default_factory=lambda: list[Literal["ship_to", "bill_to", "buyer"]](["ship_to"]), description="Which addresses to check."
    )
    default_country: str | None = Field(
        None,
        description="Country of an address that names none (ISO alpha-2); none: country checks skipped.",
    )
    postal_codes: dict[str, str] = Field(
        default_factory=dict,
        description="Postal-code regular expressions by country (alpha-2), adding to or replacing the built-in ones.",
    )
    house_number: bool = Field(
        True, description="Hold an address whose street lines carry no number."
    )
    po_box_carriers: list[str] = Field(
        default_factory=list,
        description="Carriers (SCAC or name as in the order's shipping carrier, routing or service level) that cannot deliver to a PO box; '*' for every carrier.",
    )
    phone: bool = Field(
        True,
        description="Check phone numbers (phonenumbers) of the checked parties and of the customer.",
    )

    @field_validator("postal_codes")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for country, pattern in value.items():
            if pycountry.countries.get(alpha_2=country.upper()) is None:
                raise ValueError(f"{country!r} is not an ISO 3166 alpha-2 country code")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"postal code pattern for {country}: {exc}") from None
        return {k.upper(): v for k, v in value.items()}

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and pycountry.countries.get(alpha_2=value.upper()) is None:
            raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code")
        return value.upper() if value else None


@lru_cache(maxsize=1024)
def country_code(value: str) -> str | None:
    """The alpha-2 code of a country given as alpha-2, alpha-3 or name; None if unknown."""
    text = value.strip()
    found = None
    if len(text) == 2:
        found = pycountry.countries.get(alpha_2=text.upper())
    elif len(text) == 3:
        found = pycountry.countries.get(alpha_3=text.upper())
    if found is None and len(text) > 3:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    return str(found.alpha_2) if found is not None else None


@lru_cache(maxsize=256)
def _subdivisions(country: str) -> frozenset[str]:
    subs = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    return frozenset(str(s.code).split("-", 1)[1].upper() for s in subs)


@lru_cache(maxsize=256)
def _postal(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern})", re.I)


class AddressRule(Rule):
    config_model = AddressConfig

    def __init__(self, config: RuleConfigBase):
        super().__init__(config)
        _subdivisions("US")  # pycountry reads its tables now, at start-up, not on the first order

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, AddressConfig)
        for role in cfg.parties:
            party = getattr(order, role)
            if party is None:
                continue
            yield from self._party(order, role.replace("_", "-"), party, cfg)
        if cfg.phone and order.customer_phone:
            ship = order.ship_to or order.bill_to
            country = (
                country_code(ship.country) if ship and ship.country else None
            ) or cfg.default_country
            if not _phone_ok(order.customer_phone, country):
                yield self.finding(
                    "PHONE_INVALID",
                    f"customer phone {order.customer_phone!r} is not a valid number{' for ' + country if country else ''}",
                )

    def _party(
        self, order: Order, role: str, party: Party, cfg: AddressConfig
    ) -> Iterable[Finding]:
        streets = [s for s in party.address_lines if s and s.strip()]
        if not streets:
            yield self.finding("ADDRESS_MISSING", f"the {role} address has no street")
        country: str | None = None
        if party.country:
            country = country_code(party.country)
            if country is None:
                yield self.finding(
                    "COUNTRY_UNKNOWN",
                    f"the {role} country {party.country!r} is not an ISO 3166 country",
                )
                return
        else:
            country = cfg.default_country
        if country and party.region:
            subs = _subdivisions(country)
            region = party.region.strip().upper()
            if subs and region.removeprefix(f"{country}-") not in subs:
                yield self.finding(
                    "REGION_UNKNOWN",
                    f"the {role} region {party.region!r} is not a region of {country}",
                )
        if country and party.postal_code:
            pattern = cfg.postal_codes.get(country) or POSTAL_CODES.get(country)
            if pattern and not _postal(pattern).fullmatch(party.postal_code.strip()):
                yield self.finding(
                    "POSTAL_CODE_FORMAT",
                    f"the {role} postal code {party.postal_code!r} does not fit the format of {country}",
                )
        po_box = any(_PO_BOX.search(s) for s in streets)
        if (
            streets
            and cfg.house_number
            and not po_box
            and not any(any(c.isdigit() for c in s) for s in streets)
        ):
            yield self.finding(
                "HOUSE_NUMBER_MISSING", f"the {role} street {streets[-1]!r} has no house number"
            )
        if po_box and cfg.po_box_carriers:
            carrier = _carrier(order)
            wanted = {c.upper() for c in cfg.po_box_carriers}
            if "*" in wanted or (carrier and carrier.upper() in wanted):
                yield self.finding(
                    "PO_BOX_NOT_DELIVERABLE",
                    f"the {role} address is a PO box and carrier {carrier or '(any)'} does not deliver to PO boxes",
                )
        if (
            cfg.phone
            and party.contact is not None
            and party.contact.phone
            and not _phone_ok(party.contact.phone, country)
        ):
            yield self.finding(
                "PHONE_INVALID",
                f"the {role} phone {party.contact.phone!r} is not a valid number{' for ' + country if country else ''}",
            )


def _carrier(order: Order) -> str | None:
    s = order.shipping
    if s is None:
        return None
    return s.carrier_code or s.routing or s.service_level


def _phone_ok(number: str, country: str | None) -> bool:
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(parsed))
