"""The rules end to end, driven through the real CLI: `gateway rules test` over a seeded mix,
and `gateway run --once` over hundreds of files whose held / rejected / accepted orders,
stored findings and 855 line codes must be exactly what the rules say."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.store import tables as t
from tests.e2e.helpers import run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow

SHOPIFY = Path(__file__).resolve().parents[1] / "fixtures" / "carts" / "shopify_orders_create.json"


def deciding(record: dict[str, object]) -> list[str]:
    findings = record["findings"]
    assert isinstance(findings, list)
    return [f["code"] for f in findings if f["outcome"] == record["outcome"] and record["outcome"] != "accept"]


def test_rules_test_prints_each_decision_of_a_seeded_mix(tmp_path: Path):
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    cases = gen.x12_mix(2)
    cases += gen.cross_channel_pair(0)
    docs = tmp_path / "docs"
    docs.mkdir()
    for c in cases:
        (docs / c.file).write_bytes(c.body)
    assert len(cases) >= 30

    r = run_cli("rules", "test", "--json", "-c", str(cfg), *(str(docs / c.file) for c in cases))
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(g["po_number"], g["outcome"], deciding(g)) for g in got] == [(c.po, c.outcome, c.codes) for c in cases]
    unknown = next(g for g in got if g["po_number"] == "PO-unknown-0001")
    assert [(f["code"], f["line"]) for f in unknown["findings"]] == [("UNKNOWN_SKU", "2")]
    assert unknown["account"] == "ACME"
    # nothing stored, nothing sent
    assert not (tmp_path / "gateway.db").exists() and not (tmp_path / "acks").exists()

    table = run_cli("rules", "test", "-c", str(cfg), *(str(docs / c.file) for c in cases[:16]))
    assert table.returncode == 0, table.stderr
    assert "PO-unknown-0001" in table.stdout and "NOSUCHSKU-XYZ is not in the catalogue" in table.stdout
    assert "accept 3, hold 9, reject 4" in table.stdout


def test_rules_test_cart_orders(tmp_path: Path):
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks")
    base = json.loads(SHOPIFY.read_text())
    docs = [
        (gen.shopify_order(base, "#2001", email="jane.doe@example.com"), "accept", []),
        (gen.shopify_order(base, "#2002", email="jane.doe@example.com", status="pending", espresso=2), "hold", ["PAYMENT_PENDING"]),
        (gen.shopify_order(base, "#2003", email=None, espresso=3), "hold", ["MISSING_FIELD"]),
        (gen.shopify_order(base, "#2004", email="new@example.com", espresso=10, bill_country="CA"), "hold", ["RISK_SCORE"]),
    ]
    for (name, body), _, _ in docs:
        (tmp_path / name).write_bytes(body)
    r = run_cli("rules", "test", "--json", "--format", "shopify", "-c", str(cfg), *(str(tmp_path / n) for (n, _), _, _ in docs))
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(g["outcome"], deciding(g)) for g in got] == [(o, c) for _, o, c in docs]
    assert "first order" in got[3]["findings"][0]["message"]


def test_rules_test_refuses_a_bad_configuration(tmp_path: Path):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("rules:\n  - type: catalogue\n  - type: expression\n    when: 'valu > 1'\n    code: X_Y\n    message: m\n")
    r = run_cli("rules", "test", "-c", str(cfg), str(tmp_path / "none.edi"))
    assert r.returncode != 0
    assert f"{cfg}:4: rules[1].when" in r.stderr and "unknown name 'valu'" in r.stderr


def test_run_once_decides_hundreds_of_files_and_answers_with_855s(tmp_path: Path):
    acks = tmp_path / "acks"
    cfg = gen.config(tmp_path, outbound=acks)
    cases = gen.x12_mix(20)
    pairs = [gen.cross_channel_pair(i) for i in range(3)]
    for c in [*cases, *(c for p in pairs for c in p)]:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    assert len(cases) >= 300

    r = run_cli("run", "--once", "-c", str(cfg), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        orders = {row.po_number: row for row in conn.execute(select(t.orders.c.id, t.orders.c.po_number, t.orders.c.state, t.orders.c.reason))}
        findings = Counter(row.code for row in conn.execute(select(t.rule_findings.c.code)))
        decided = Counter(row.outcome for row in conn.execute(select(t.rule_decisions.c.outcome)))
    engine.dispose()
    state_of = {"accept": {"validated", "dispatched"}, "hold": {"held"}, "reject": {"quarantined"}}
    for c in cases:
        row = orders[c.po]
        assert row.state in state_of[c.outcome], (c.name, row)
        assert row.reason == (c.codes[0] if c.codes else None), (c.name, row)
    expected = Counter(c.outcome for c in cases)
    assert expected == Counter({"accept": 60, "hold": 180, "reject": 80})
    for edi, cx in pairs:  # the same order by EDI and cXML: whichever came second waits
        states = sorted([orders[edi.po].state, orders[cx.po].state])
        assert states[1] == "held" and states[0] in ("dispatched", "validated")
        assert "DUPLICATE_CONTENT" in {orders[edi.po].reason, orders[cx.po].reason}
    assert decided == Counter({"accept": 63, "hold": 183, "reject": 80})
    assert findings["DUPLICATE_CONTENT"] == 3 and findings["UNKNOWN_SKU"] == 20 and findings["PRICE_MISSING"] == 20
    # accepted orders went out, the others did not
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 63

    # every 855 says what was decided, line by line; a held order gets none while it waits
    answered = gen.read_855s(acks)
    for c in cases:
        if c.bak is None:
            assert c.po not in answered, c.name
        else:
            assert answered[c.po] == (c.bak, c.acks if c.bak != "RJ" else []), c.name
    noprice = next(f for f in acks.rglob("*") if f.is_file() and "PO-noprice-0012" in f.read_text())
    assert "ACK*IP*13*EA" in noprice.read_text() and "PO1*1*13*EA*10**VP*W-1" in noprice.read_text()

    # a person sees every reason with its line, and decides
    shown = run_cli("show", "PO-unknown-0001", "-c", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert "UNKNOWN_SKU" in shown.stdout and "NOSUCHSKU-XYZ is not in the catalogue" in shown.stdout
    held = orders["PO-priceoff-0005"]
    ok = run_cli("approve", held.id[:8], "--by", "dana", "-c", str(cfg))
    assert ok.returncode == 0, ok.stderr
    refused = run_cli("reject", orders["PO-credit-0010"].id[:8], "--reason", "no credit", "--by", "lee", "-c", str(cfg))
    assert refused.returncode == 0, refused.stderr
    shown = run_cli("show", held.id[:8], "-c", str(cfg))
    assert "then accept by dana" in shown.stdout and "PRICE_OFF_LIST" in shown.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        after = dict(conn.execute(select(t.orders.c.po_number, t.orders.c.state).where(t.orders.c.po_number.in_(["PO-priceoff-0005", "PO-credit-0010"]))).all())
        by = dict(conn.execute(select(t.rule_decisions.c.order_id, t.rule_decisions.c.decided_by).where(t.rule_decisions.c.decided_by.is_not(None))).all())
    engine.dispose()
    assert after == {"PO-priceoff-0005": "validated", "PO-credit-0010": "quarantined"}
    assert sorted(by.values()) == ["dana", "lee"]
    # a rejected order is not held: it cannot be approved
    no = run_cli("approve", orders["PO-unknown-0001"].id[:8], "-c", str(cfg))
    assert no.returncode != 0 and "not held" in no.stderr


def test_the_rules_read_master_data_imported_into_the_store(tmp_path: Path):
    """The default: no masterdata folder; `gateway data import` loads the store and the same
    seeded mix gets exactly the decisions it gets from the CSV folder."""
    cfg = gen.config(tmp_path, outbound=tmp_path / "acks", masterdata_in_store=True)
    folder = tmp_path / "masterdata"
    for kind in ("items", "xrefs", "prices", "accounts"):
        r = run_cli("data", "import", kind, str(folder / f"{kind}.csv"), "-c", str(cfg))
        assert r.returncode == 0, r.stderr
    cases = gen.x12_mix(10)
    for c in cases:
        (tmp_path / "inbox" / c.file).write_bytes(c.body)
    r = run_cli("rules", "test", "--json", *(str(tmp_path / "inbox" / c.file) for c in cases[:40]), "-c", str(cfg), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    tried = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["outcome"] for d in tried] == [c.outcome for c in cases[:40]]
    r = run_cli("run", "--once", "-c", str(cfg), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        orders = {row.po_number: row for row in conn.execute(select(t.orders.c.po_number, t.orders.c.state, t.orders.c.reason))}
    engine.dispose()
    state_of = {"accept": {"validated", "dispatched"}, "hold": {"held"}, "reject": {"quarantined"}}
    assert len(cases) >= 150
    for c in cases:
        assert orders[c.po].state in state_of[c.outcome], (c.name, orders[c.po])
        assert orders[c.po].reason == (c.codes[0] if c.codes else None), (c.name, orders[c.po])
