"""Trading partners: who sent an interchange, and how their orders differ from the standard.

A partner is configured in `partners:` with the ids it sends under (X12 ISA05:ISA06,
EDIFACT UNB sender, cXML credential domain:identity, UBL endpoint scheme:id). Input from a
sender that matches no partner is quarantined (UNKNOWN_PARTNER) once any partner is
configured, never guessed.

A partner may adjust the standard mapping with files in `mappings/<partner>/`:

    partner.yaml         defaults, overrides and cross-reference tables (below)
    email.yaml           how to read its CSV/XLSX/PDF and body-text orders (gateway.extract.template)
    x12_850.yaml         overrides of the standard X12 850 code tables
    edifact_orders.yaml  overrides of the standard EDIFACT ORDERS code tables
    ...                  (one per format mapping: <format>_<document type>.yaml)

partner.yaml:

    defaults:                # set when the mapped order has no value
      currency: USD
    overrides:               # always set
      order_type: DS
    xref:
      sku_from_buyer_part_number: {ACME-8812: WID-100}   # buyer's item number -> our SKU
      uom: {CS: CA}                                       # partner unit -> ours

Every value set here is recorded in the order's field provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from gateway.errors import ConfigError
from gateway.formats.base import Envelope
from gateway.mapping.files import mappings_root
from gateway.model import Order

__all__ = ["PartnerDirectory", "PartnerMapping", "load_partner_mapping"]

MAPPINGS = mappings_root()

# Header fields a partner file may set (plain values, validated by the Order model after).
SETTABLE = {
    "currency", "order_type", "purpose", "release_number", "contract_number",
    "customer_email", "customer_phone", "requested_delivery_date",
}
XREF_TABLES = {"sku_from_buyer_part_number", "sku_from_gtin", "uom"}


@dataclass(frozen=True)
class PartnerMapping:
    """A partner's adjustments, checked when the configuration loads."""

    name: str
    folder: Path
    defaults: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    xref: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    email_template: Any = None  # gateway.extract.template.EmailTemplate, when email.yaml exists

    def table_override(self, mapping_name: str) -> Path | None:
        """The partner's override file for a standard mapping (e.g. 'x12_850'), if any."""
        p = self.folder / f"{mapping_name}.yaml"
        return p if p.is_file() else None

    @property
    def empty(self) -> bool:
        return not (self.defaults or self.overrides or self.xref)

    def apply(self, order: Order, trace: dict[str, str] | None) -> bool:
        """Apply the adjustments; True if anything changed (the order must be re-validated)."""
        if self.empty:
            return False
        changed = False
        src = f"mappings/{self.name}/partner.yaml"
        for key, value in self.defaults.items():
            if getattr(order, key) in (None, "", []):
                setattr(order, key, value)
                changed = True
                if trace is not None:
                    trace[key] = f"{src}: defaults.{key}"
        for key, value in self.overrides.items():
            setattr(order, key, value)
            changed = True
            if trace is not None:
                trace[key] = f"{src}: overrides.{key}"
        by_bpn = self.xref.get("sku_from_buyer_part_number", {})
        by_gtin = self.xref.get("sku_from_gtin", {})
        uoms = self.xref.get("uom", {})
        for i, line in enumerate(order.lines):
            if not line.sku:
                if line.buyer_part_number and line.buyer_part_number in by_bpn:
                    line.sku = by_bpn[line.buyer_part_number]
                    changed = True
                    if trace is not None:
                        trace[f"lines[{i}].sku"] = f"{src}: xref.sku_from_buyer_part_number[{line.buyer_part_number}]"
                elif line.gtin and line.gtin in by_gtin:
                    line.sku = by_gtin[line.gtin]
                    changed = True
                    if trace is not None:
                        trace[f"lines[{i}].sku"] = f"{src}: xref.sku_from_gtin[{line.gtin}]"
            if line.uom and line.uom in uoms:
                if trace is not None:
                    trace[f"lines[{i}].uom"] = f"{src}: xref.uom[{line.uom}]"
                line.uom = uoms[line.uom]
                changed = True
        return changed


def load_partner_mapping(name: str, folder: Path | None = None) -> PartnerMapping:
    """Read and check mappings/<name>/partner.yaml (absent: no adjustments)."""
    folder = folder or MAPPINGS / name
    template = None
    if (folder / "email.yaml").is_file():
        from gateway.extract.template import load_email_template

        template = load_email_template(folder / "email.yaml")
    file = folder / "partner.yaml"
    if not file.is_file():
        return PartnerMapping(name, folder, email_template=template)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read the partner mapping: {exc}") from exc
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: must be a mapping with defaults, overrides and xref")
    for key in data:
        if key not in ("defaults", "overrides", "xref"):
            problems.append(f"{file}: unknown section {key!r} (known: defaults, overrides, xref)")
    for section in ("defaults", "overrides"):
        values = data.get(section) or {}
        if not isinstance(values, dict):
            problems.append(f"{file}: {section} must be a mapping of field to value")
            continue
        for key in values:
            if key not in SETTABLE:
                problems.append(f"{file}: {section}.{key}: not a field a partner file can set (can: {', '.join(sorted(SETTABLE))})")
    xref = data.get("xref") or {}
    if not isinstance(xref, dict):
        problems.append(f"{file}: xref must be a mapping of table name to table")
        xref = {}
    for table, entries in xref.items():
        if table not in XREF_TABLES:
            problems.append(f"{file}: xref.{table}: unknown table (known: {', '.join(sorted(XREF_TABLES))})")
        elif not isinstance(entries, dict) or not all(isinstance(v, (str, int)) for v in entries.values()):
            problems.append(f"{file}: xref.{table} must map values to values")
    if problems:
        raise ConfigError(problems)
    return PartnerMapping(
        name,
        folder,
        MappingProxyType(dict(data.get("defaults") or {})),
        MappingProxyType(dict(data.get("overrides") or {})),
        MappingProxyType({k: MappingProxyType({str(a): str(b) for a, b in v.items()}) for k, v in xref.items()}),
        template,
    )


class PartnerDirectory:
    """Finds the configured trading partner for an envelope."""

    def __init__(self, partners: Iterable[Any] = (), *, mappings_root: Path | None = None):
        self._partners = list(partners)
        self._ids: dict[tuple[str, str], str] = {}
        self._mappings: dict[str, PartnerMapping] = {}
        root = mappings_root or MAPPINGS
        for p in self._partners:
            for standard, ids in (
                ("x12", p.x12_ids), ("edifact", p.edifact_ids), ("cxml", p.cxml_ids), ("ubl", p.ubl_ids)
            ):
                for ident in ids:
                    self._ids[(standard, _norm(ident))] = p.name
            self._mappings[p.name] = load_partner_mapping(p.name, root / p.name)

    @property
    def configs(self) -> list[Any]:
        return list(self._partners)

    @property
    def wants_acks(self) -> bool:
        return any(p.acks.functional or p.acks.order_response or p.acks.ta1 == "always" for p in self._partners)

    @property
    def enforced(self) -> bool:
        """With partners configured, unknown senders are quarantined."""
        return bool(self._partners)

    def names(self) -> list[str]:
        return [p.name for p in self._partners]

    def mapping(self, name: str | None) -> PartnerMapping | None:
        return self._mappings.get(name) if name else None

    def for_envelope(self, env: Envelope) -> str | None:
        sender = _norm(env.sender_id or "")
        if not sender:
            return None
        qualified = f"{_norm(env.sender_qualifier or '')}:{sender}"
        return self._ids.get((env.standard, qualified)) or self._ids.get((env.standard, sender))

    def x12_lenient(self, forced: str | None = None) -> Callable[[str, str], bool]:
        """Whether the X12 envelope repairs that guess are allowed, by (ISA05, ISA06): the
        `x12.lenient_envelope` of the partner (`forced`, or the one the sender belongs to)."""
        by_name = {p.name: p for p in self._partners}

        def allowed(qualifier: str, sender: str) -> bool:
            name = forced or self.for_envelope(Envelope(standard="x12", sender_id=sender or None, sender_qualifier=qualifier or None))
            profile = getattr(by_name.get(name or ""), "x12", None)
            return bool(profile is not None and profile.lenient_envelope)

        return allowed

    @staticmethod
    def describe(env: Envelope) -> str:
        q = (env.sender_qualifier or "").strip()
        return f"{env.standard.upper()} sender {q + ':' if q else ''}{(env.sender_id or '').strip() or '(none)'}"


def _norm(value: str) -> str:
    return value.strip().upper()
