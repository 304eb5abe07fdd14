"""EDIFACT bad-input rows of the reliability catalogue (E10 release characters, E11 UNA edge
cases, E12 character sets), driven through `gateway translate` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "edifact"
UNB = "UNB+UNOA:3+SENDER:14+RECEIVER:14+240115:1200+IC1'"


def interchange(*segments: str, una: str = "UNA:+.? '", unz: str = "UNZ+1+IC1'") -> str:
    body = ["UNH+1+ORDERS:D:96A:UN:EAN008'", "BGM+220+PO1+9'", *segments]
    body.append(f"UNT+{len(body) + 1}+1'")
    return una + UNB + "".join(body) + unz


def translate(tmp_path: Path, text: str | bytes, *args: str) -> tuple[int, list[dict], str]:
    path = tmp_path / "in.edi"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("latin-1"))
    done = run_cli("translate", str(path), *args)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_release_pairs_are_literals(tmp_path):
    """reliability E10: `?+`, `?:`, `?'`, `??` are literal characters; a release before an
    ordinary character stands for that character."""
    rc, orders, err = translate(tmp_path, interchange("FTX+AAI+++deliver?+ring?:gate?'4??ok ?A'"))
    assert rc == 0, err
    assert "deliver+ring:gate'4?ok A" in json.dumps(orders[0])


@pytest.mark.parametrize("tail", ["?", "'?", "'?\n", "'???\r\n"])
def test_a_lone_release_at_the_end_is_quarantined(tmp_path, tail):
    """reliability E10, issue 14 #21: a trailing lone `?` gives DANGLING_RELEASE, no order."""
    text = interchange(unz="UNZ+1+IC1") + tail
    rc, orders, err = translate(tmp_path, text)
    assert rc == 1 and orders == []
    assert "(DANGLING_RELEASE)" in err and "release character" in err


def test_a_released_release_at_the_end_is_not_dangling(tmp_path):
    """reliability E10: `??` at the very end is a literal `?`, not a dangling release (the bytes
    after the interchange are reported, the order goes through)."""
    rc, orders, err = translate(tmp_path, interchange() + "??")
    assert rc == 0 and len(orders) == 1, err


def test_una_edge_cases(tmp_path):
    """reliability E11: no UNA reads with the defaults (decimal comma honoured); UNA5 `*`
    (syntax 4) and space (syntax 3) both read; a decimal comma in the UNA is honoured; a UNA with
    a repeated character or a blank separator is refused as EDIFACT_UNA."""
    qty = ("LIN+1++4000862141404:SRS'", "QTY+21:2,5'", "PRI+AAA:1,5'")
    for una in ("", "UNA:+.? '", "UNA:+.?*'", "UNA:+,? '"):
        rc, orders, err = translate(tmp_path, interchange(*qty, una=una))
        assert rc == 0, (una, err)
        assert orders[0]["lines"][0]["quantity"] == "2.5" and orders[0]["lines"][0]["unit_price"] == "1.5", una
    for una, what in (("UNA++.? '", "separators must differ"), ("UNA :.? '", "component separator"), ("UNA:+.?  ", "terminator")):
        rc, orders, err = translate(tmp_path, interchange(una=una), "--format", "edifact")
        assert rc == 1 and orders == [], una
        assert "(EDIFACT_UNA)" in err and what in err, err


def test_control_counts_and_references(tmp_path):
    """reliability E11: UNT 0074 must count UNH..UNT and UNT 0062 equal UNH 0062."""
    good = interchange()
    rc, _, err = translate(tmp_path, good.replace("UNT+3+1'", "UNT+9+1'"))
    assert rc == 1 and "EDIFACT_UNT_COUNT" in err
    rc, _, err = translate(tmp_path, good.replace("UNT+3+1'", "UNT+3+2'"))
    assert rc == 1 and "EDIFACT_UNT_REF" in err


def test_a_byte_outside_the_declared_charset_is_refused(tmp_path):
    """reliability E12: UNOA declared, a Latin-1 byte inside: refused (EDIFACT_CHARSET) naming
    the byte, never decoded with errors="ignore"; the same bytes under UNOC read strictly."""
    data = (FIXTURES / "unoa_with_latin1_byte.edi").read_bytes()
    rc, orders, err = translate(tmp_path, data)
    assert rc == 1 and orders == []
    assert "(EDIFACT_CHARSET)" in err and "0xfc" in err
    rc, orders, err = translate(tmp_path, data.replace(b"UNOA:3", b"UNOC:3"))
    assert rc == 0, err
    assert "Müller GmbH" in json.dumps(orders[0], ensure_ascii=False)
