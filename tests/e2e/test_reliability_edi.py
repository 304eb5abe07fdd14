"""Reliability catalogue rows E1..E13 (bad EDI input; ../shared/recipes/reliability.md), from
the outside: every bad file is dropped into one inbox with good ones, `gateway run --once`
runs, and each test checks its row on what was stored, acknowledged and delivered.

Row E10 (a dangling EDIFACT release character) belongs with the EDIFACT tokenizer and is
tested there. E1, E5, E6 and E9 are also covered in detail by tests/e2e/test_edi_envelopes.py.
Reason codes are the gateway's (X12_/EDIFACT_ prefixed, NOT_RECOGNIZED for garbage); the
README's table maps them to the catalogue's names."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import run_cli, write_config
from tests.support.fake_erp import FakeERP
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def x12(pos: list[list[str]], n: int) -> bytes:
    """An interchange with ISA13 and GS06 derived from n, so its acknowledgements can be told apart."""
    return interchange(pos, icn=f"{n:09d}", gcn=str(n)).encode()


def _inputs() -> dict[str, bytes]:
    bad_count = po("PO-E3B", st="0002")
    bad_count[-1] = "SE*99*0002"
    mismatch = po("PO-E4B", st="0002")
    mismatch[-1] = mismatch[-1].replace("*0002", "*0009")
    whole = x12([po("PO-E5A")], 51)
    return {
        "e1_short_isa.edi": x12([po("PO-E1")], 11).replace(b"*00*          *00*          *ZZ*ACMERETAIL     *", b"*00**00**ZZ*ACMERETAIL*", 1),
        "e2_equal_separators.edi": x12([po("PO-E2")], 21).replace(b"*0*P*>~", b"*0*P**~", 1),
        "e2_alnum_separator.edi": x12([po("PO-E2B")], 22).replace(b"*", b"A"),
        "e3_se_count.edi": x12([po("PO-E3A"), bad_count], 31),
        "e4_control_mismatch.edi": x12([po("PO-E4A"), mismatch], 41),
        "e4_duplicate_st02.edi": x12([po("PO-E4C", st="0001"), po("PO-E4D", st="0001")], 42),
        "e5_one_broken.edi": whole + x12([po("PO-E5B")], 52)[: -len("GE*1*52~\nIEA*1*000000052~\n")],
        "e6_first.edi": x12([po("PO-E6")], 61),
        "e7_garbage.edi": bytes(range(256)) * 4,
        "e7_pdf.edi": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "e7_empty.edi": b"",
        "e8_huge.edi": x12([po(f"PO-E8-{i}") for i in range(600)], 81),
        "e9_bom.edi": b"\xef\xbb\xbf" + x12([po("PO-E9A")], 91),
        "e9_utf16.edi": x12([po("PO-E9B")], 92).decode().encode("utf-16"),
        "e9_crlf.edi": x12([po("PO-E9C")], 93).replace(b"~\n", b"~\r\n"),
        "e11_bad_una.edi": b"UNA::.? 'UNB+UNOC:3+S:14+R:14+261127:0930+IC1'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-U1+9'UNT+3+1'UNZ+1+IC1'",
        "e12_unoa_latin1.edi": (FIX / "edifact" / "unoa_with_latin1_byte.edi").read_bytes(),
        "e13_qty_zero.edi": x12([po("PO-E13", [("0", "9.99", "SKU-1")])], 131),
    }


class Outcome:
    def __init__(self, tmp: Path, erp: FakeERP):
        self.tmp, self.erp = tmp, erp
        db = sqlite3.connect(tmp / "gateway.db")
        db.row_factory = sqlite3.Row
        self.messages = {r["display_name"]: dict(r) for r in db.execute("select * from messages")}
        self.orders = [dict(r) for r in db.execute("select o.*, m.display_name as file from orders o join messages m on m.id = o.message_id")]
        db.close()
        self.acks = {p.name: p.read_text() for p in (tmp / "acks").glob("*")}
        self.delivered = sorted(o["body"]["po_number"] for o in erp.orders)

    def message(self, name: str) -> dict[str, Any]:
        return self.messages[name]

    def orders_of(self, name: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["file"] == name]

    def ack_segments(self, kind: str, group: int) -> list[str]:
        """The segments of the 997 that answers functional group `group`."""
        for text in self.acks.values():
            segs = [s.strip() for s in text.split("~") if s.strip()]
            if any(s.startswith(f"ST*{kind}*") for s in segs) and f"AK1*PO*{group}" in segs:
                return segs
        raise AssertionError(f"no {kind} for group {group}: {list(self.acks.values())}")

    def ta1(self, icn: int) -> list[str]:
        return [s.strip() for t in self.acks.values() for s in t.split("~") if s.strip().startswith(f"TA1*{icn:09d}*")]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> Iterator[Outcome]:
    tmp = tmp_path_factory.mktemp("reliability")
    with FakeERP() as erp:
        cfg = write_config(
            tmp,
            erp.url,
            extra=f"partners:\n  - name: acme\n    x12_ids: [ACMERETAIL]\n    acks: {{ta1: always, outbound: {tmp / 'acks'}}}\n",
        )
        # A small size limit stands in for the default 50 MB one (E8).
        cfg.write_text(cfg.read_text().replace("    stable_seconds:", "    max_bytes: 20000\n    stable_seconds:", 1))
        for name, body in _inputs().items():
            (tmp / "inbox" / name).write_bytes(body)
        done = run_cli("run", "--once", "--for", "60", "--config", str(cfg))
        assert done.returncode in (0, 3), done.stderr
        # E6: the same interchange again, in other bytes (CR LF line ends), and then reused.
        (tmp / "inbox" / "e6_again.edi").write_bytes(x12([po("PO-E6")], 61).replace(b"~\n", b"~\r\n"))
        (tmp / "inbox" / "e6_reused.edi").write_bytes(x12([po("PO-E6X")], 61))
        done = run_cli("run", "--once", "--for", "60", "--config", str(cfg))
        assert done.returncode in (0, 3), done.stderr
        yield Outcome(tmp, erp)


def test_e1_isa_not_106_characters(outcome):
    """reliability E1: an ISA with trimmed padding is quarantined X12_ISA_LENGTH (strict is the
    default; lenient only by partner profile, see test_edi_envelopes)."""
    msg = outcome.message("e1_short_isa.edi")
    assert (msg["state"], msg["reason"]) == ("quarantined", "X12_ISA_LENGTH")
    assert "106" in msg["error"]
    assert "PO-E1" not in outcome.delivered


def test_e2_bad_separators_are_never_guessed(outcome):
    """reliability E2: equal separators are quarantined X12_SEPARATORS; an alphanumeric
    element separator is not recognised as X12 at all; nothing is delivered."""
    assert outcome.message("e2_equal_separators.edi")["reason"] == "X12_SEPARATORS"
    alnum = outcome.message("e2_alnum_separator.edi")
    assert alnum["state"] == "quarantined" and alnum["reason"] in ("NOT_RECOGNIZED", "X12_SEPARATORS")
    assert not {"PO-E2", "PO-E2B"} & set(outcome.delivered)


def test_e3_segment_count_wrong_in_one_set(outcome):
    """reliability E3: SE01 wrong in one set: that set is quarantined X12_SE_COUNT, the good
    set is delivered; the 997 says AK5 R with AK502 4 for it and AK9 P for the group."""
    assert "PO-E3A" in outcome.delivered and "PO-E3B" not in outcome.delivered
    assert [o["reason"] for o in outcome.orders_of("e3_se_count.edi") if o["state"] == "quarantined"] == ["X12_SE_COUNT"]
    segs = outcome.ack_segments("997", 31)
    assert "AK5*R*4" in segs and any(s.startswith("AK9*P*2*2*1") for s in segs), segs


def test_e4_control_numbers_that_disagree(outcome):
    """reliability E4: ST02 != SE02 gives AK502 3, a duplicate ST02 in the group AK502 23;
    the affected sets are quarantined, the others delivered."""
    assert "PO-E4A" in outcome.delivered and "PO-E4B" not in outcome.delivered
    assert "X12_CONTROL_MISMATCH" in {o["reason"] for o in outcome.orders_of("e4_control_mismatch.edi")}
    assert "AK5*R*3" in outcome.ack_segments("997", 41)
    assert "X12_DUPLICATE_CONTROL" in {o["reason"] for o in outcome.orders_of("e4_duplicate_st02.edi")}
    assert "AK5*R*23" in outcome.ack_segments("997", 42)


def test_e5_one_broken_interchange_of_two(outcome):
    """reliability E5: the interchange without GE/IEA is quarantined TRUNCATED (TA1 R 023),
    the other one in the same file is delivered."""
    assert "PO-E5A" in outcome.delivered and "PO-E5B" not in outcome.delivered
    assert [o["reason"] for o in outcome.orders_of("e5_one_broken.edi") if o["po_number"] == "PO-E5B"] == ["TRUNCATED"]
    assert any("*R*023" in s for s in outcome.ta1(52)), outcome.ta1(52)


def test_e6_duplicate_interchange(outcome):
    """reliability E6: the same interchange again is a no-op answered with TA1 025; reused
    with other content it is quarantined CONTROL_NUMBER_REUSED for a person."""
    assert outcome.delivered.count("PO-E6") == 1 and "PO-E6X" not in outcome.delivered
    assert outcome.orders_of("e6_again.edi") == []
    assert any("*025" in s for s in outcome.ta1(61)), outcome.ta1(61)
    reused = outcome.message("e6_reused.edi")
    assert (reused["state"], reused["reason"]) == ("quarantined", "CONTROL_NUMBER_REUSED")


def test_e7_garbage_in_the_edi_folder(outcome):
    """reliability E7: binary garbage and a PDF are quarantined as not recognised, with their
    bytes stored; a 0-byte file that stayed empty is refused EMPTY; nothing else is disturbed."""
    for name in ("e7_garbage.edi", "e7_pdf.edi"):
        msg = outcome.message(name)
        assert (msg["state"], msg["reason"]) == ("quarantined", "NOT_RECOGNIZED")
        assert msg["size"] > 0
    assert outcome.message("e7_empty.edi")["reason"] == "EMPTY"


def test_e8_file_over_the_size_limit(outcome):
    """reliability E8: a file over the source's max_bytes is quarantined TOO_LARGE without
    being parsed (no orders from it)."""
    msg = outcome.message("e8_huge.edi")
    assert (msg["state"], msg["reason"]) == ("quarantined", "TOO_LARGE")
    assert outcome.orders_of("e8_huge.edi") == [] and not any(p.startswith("PO-E8") for p in outcome.delivered)


def test_e9_bom_utf16_and_crlf(outcome):
    """reliability E9: a UTF-8 BOM is stripped with a warning and CR LF after each terminator
    ignored (both delivered); a UTF-16 file is quarantined."""
    assert {"PO-E9A", "PO-E9C"} <= set(outcome.delivered)
    assert any("byte order mark" in w for w in outcome.message("e9_bom.edi")["warnings"].split('"'))
    assert outcome.message("e9_utf16.edi")["state"] == "quarantined" and "PO-E9B" not in outcome.delivered


def test_e11_invalid_una(outcome):
    """reliability E11: a UNA repeating a separator is quarantined (EDIFACT_UNA), never guessed."""
    msg = outcome.message("e11_bad_una.edi")
    assert (msg["state"], msg["reason"]) == ("quarantined", "EDIFACT_UNA")


def test_e11_decimal_comma_from_una_is_honoured(tmp_path):
    """reliability E11: `UNA:+,? '` makes the comma the decimal mark in numeric fields."""
    done = run_cli("translate", str(FIX / "edifact" / "orders_full_d96a.edi"))
    assert done.returncode == 0, done.stderr
    assert "," in (FIX / "edifact" / "orders_full_d96a.edi").read_text(encoding="latin-1")[:9]
    import json

    order = json.loads(done.stdout.splitlines()[0])
    prices = [line["unit_price"] for line in order["lines"] if line["unit_price"] is not None]
    assert prices and all("," not in p for p in prices)


def test_e12_byte_outside_the_declared_charset(outcome):
    """reliability E12: UNOA declared but a Latin-1 byte sent: quarantined EDIFACT_CHARSET,
    never decoded with errors ignored."""
    msg = outcome.message("e12_unoa_latin1.edi")
    assert (msg["state"], msg["reason"]) == ("quarantined", "EDIFACT_CHARSET")


def test_e13_semantically_bad_po(outcome):
    """reliability E13: a PO with quantity 0 is syntactically fine, so the 997 accepts it
    (AK5 A), while the order is quarantined VALIDATION:quantity_not_positive and not sent."""
    assert [o["reason"] for o in outcome.orders_of("e13_qty_zero.edi")] == ["VALIDATION:quantity_not_positive"]
    assert "PO-E13" not in outcome.delivered
    assert "AK5*A" in outcome.ack_segments("997", 131)
