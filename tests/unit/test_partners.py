"""Trading partners: identified by envelope, adjusted by their mapping files, unknown = quarantined."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.config import PartnerConfig
from gateway.errors import ConfigError
from gateway.formats.base import Envelope
from gateway.partners import PartnerDirectory, load_partner_mapping
from gateway.translate import Rejected, Translated, translate
from tests.support.x12gen import interchange, po


def directory(tmp_path: Path, partner_yaml: str | None = None, **ids) -> PartnerDirectory:
    if partner_yaml is not None:
        (tmp_path / "acme").mkdir(exist_ok=True)
        (tmp_path / "acme" / "partner.yaml").write_text(partner_yaml)
    return PartnerDirectory([PartnerConfig(name="acme", **ids)], mappings_root=tmp_path)


def test_partner_found_by_qualified_or_plain_sender_id(tmp_path):
    d = directory(tmp_path, x12_ids=["ZZ:ACMERETAIL"], edifact_ids=["5412345000013"])
    assert d.for_envelope(Envelope("x12", sender_id="ACMERETAIL     ", sender_qualifier="ZZ")) == "acme"
    assert d.for_envelope(Envelope("x12", sender_id="ACMERETAIL", sender_qualifier="01")) is None
    assert d.for_envelope(Envelope("edifact", sender_id="5412345000013", sender_qualifier="14")) == "acme"
    assert d.for_envelope(Envelope("x12", sender_id="5412345000013")) is None  # ids are per standard


def test_unknown_sender_is_quarantined_never_guessed(tmp_path):
    d = directory(tmp_path, x12_ids=["ZZ:SOMEONEELSE"])
    body = interchange([po("PO-1")]).encode()
    [ev] = [e for e in translate(io.BytesIO(body), partners=d, require_partner=True) if isinstance(e, (Translated, Rejected))]
    assert isinstance(ev, Rejected) and ev.reason == "UNKNOWN_PARTNER"
    assert "X12 sender ZZ:ACMERETAIL is not a configured trading partner" in ev.message


def test_partner_mapping_defaults_xref_and_provenance(tmp_path):
    d = directory(
        tmp_path,
        "defaults: {currency: USD}\noverrides: {order_type: DS}\nxref:\n  sku_from_buyer_part_number: {B-1: OUR-1}\n  uom: {CS: CA}\n",
        x12_ids=["ZZ:ACMERETAIL"],
    )
    tx = po("PO-1")
    tx[3] = "PO1*1*2*CS*9.99*PE*BP*B-1"
    body = interchange([tx]).encode()
    [ev] = [e for e in translate(io.BytesIO(body), partners=d, require_partner=True, trace=True) if isinstance(e, Translated)]
    o = ev.order
    assert o.partner == "acme" and o.currency == "USD" and o.order_type == "DS"
    assert o.lines[0].sku == "OUR-1" and o.lines[0].uom == "CA" and o.lines[0].buyer_part_number == "B-1"
    assert ev.provenance["lines[0].sku"] == "mappings/acme/partner.yaml: xref.sku_from_buyer_part_number[B-1]"
    assert ev.provenance["currency"] == "mappings/acme/partner.yaml: defaults.currency"


def test_partner_table_override_changes_the_standard_mapping(tmp_path):
    d = directory(tmp_path, "{}\n", x12_ids=["ZZ:ACMERETAIL"])
    # This partner sends its own item number with qualifier ZZ, which the standard keeps only in item_ids.
    (tmp_path / "acme" / "x12_850.yaml").write_text("product_ids:\n  ZZ: sku\n")
    tx = po("PO-1")
    tx[3] = "PO1*1*2*EA*9.99*PE*ZZ*THEIR-SKU"
    [ev] = [e for e in translate(io.BytesIO(interchange([tx]).encode()), partners=d) if isinstance(e, Translated)]
    assert ev.order.lines[0].sku == "THEIR-SKU"


def test_bad_partner_mapping_is_a_config_error(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "partner.yaml").write_text("defaults: {po_number: X}\nxref: {colour: {}}\nextra: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_partner_mapping("acme", tmp_path / "acme")
    text = "\n".join(exc.value.problems)
    assert "defaults.po_number: not a field a partner file can set" in text
    assert "xref.colour: unknown table" in text
    assert "unknown section 'extra'" in text


def test_repository_partner_mappings_load():
    m = load_partner_mapping("acme")
    assert m.xref["sku_from_buyer_part_number"]["ACME-9001"] == "WID-300"
