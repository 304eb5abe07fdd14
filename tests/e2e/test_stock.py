"""Stock end to end through the real CLI (issue 10): master data loaded by `gateway data
import`, hundreds of X12 orders from three partners with three stock policies decided and
reserved by `gateway run --once`, then a cancellation, a person's approval and refusal.

The mix: the rules' seeded cases (normal, price off list, high value, bad address, over
credit, unknown SKU, ..., the same order by EDI and cXML) with plenty of stock, and per round
a backorder (partner beta), a partial fill that cancels the rest (gamma), a block (acme: held),
an order only two warehouses together can fill, a reorder-point alert, and two orders from
two partners for one last unit; and a paid and an unpaid Shopify order. Every decision, hold, 855 line code and reservation is
checked, and no SKU is ever reserved beyond what is on hand."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from gateway.store import tables as t
from tests.e2e.helpers import gateway_cmd, run_cli
from tests.support import rulesgen as gen

pytestmark = pytest.mark.slow

SHOPIFY = Path(__file__).resolve().parents[1] / "fixtures" / "carts" / "shopify_orders_create.json"
ROUNDS = 20
STOCK_RULE = """\
  - type: stock
    policy: block
    by_partner: {beta: backorder, gamma: partial}
    partial_rest: cancel
    backorder_days: 5
"""
ROUTING = """\
routing:
  regions:
    US-AK: [WEST]
    US: [EAST, WEST]
  carriers:
    - {countries: [US], max_weight_kg: 20, carrier: UPSN, service: GND}
    - {carrier: FXFE, service: LTL}
"""
PARTNERS = """\
  - name: beta
    x12_ids: ["ZZ:BETACO"]
    acks: {functional: false, order_response: true, outbound: OUT}
  - name: gamma
    x12_ids: ["ZZ:GAMMACO"]
    acks: {functional: false, order_response: true, outbound: OUT}
  - name: shop
"""


def config(tmp: Path, acks: Path, store_url: str | None = None) -> Path:
    cfg = gen.config(tmp, outbound=acks, store_url=store_url)
    text = cfg.read_text()
    text = text.replace(f"masterdata:\n  folder: {tmp / 'masterdata'}\n", "")  # the store's master data
    text = text.replace("processing:\n", PARTNERS.replace("OUT", str(acks)) + "processing:\n", 1)
    cfg.write_text(ROUTING + text + STOCK_RULE)
    return cfg


def x12(po: str, sender: str, lines: list[gen.Line], icn: int, *, purpose: str = "00") -> bytes:
    body = gen.x12_850(po, lines, icn=icn).replace(b"ACMERETAIL     *", f"{sender:<15}*".encode()).replace(b"ACMERETAIL", sender.encode())
    return body.replace(b"BEG*00*", f"BEG*{purpose}*".encode())


def masterdata(folder: Path) -> dict[str, Path]:
    """The rules' catalogue with plenty of stock, plus the SKUs the stock cases draw on."""
    skus = ["W-1", "W-2", "W-OLD", "W-PACK", "W-BIG", "TSHIRT-BLK-M", "ESPRESSO-01"]
    head, *rows = gen.ITEMS.strip().splitlines()
    items = "\n".join([head + ",weight_kg", *(r + ",1" for r in rows)]) + "\n"  # 1 kg each
    prices = gen.PRICES
    stock = ["sku,warehouse,on_hand,reorder_point", *(f"{s},EAST,1000000," for s in skus)]
    for i in range(ROUNDS):
        for kind, rows in (
            ("BO", [("EAST", 5, "")]),
            ("PF", [("EAST", 4, "")]),
            ("BL", [("EAST", 2, "")]),
            ("SP", [("EAST", 6, ""), ("WEST", 6, "")]),
            ("RO", [("EAST", 10, "5")]),
            ("LAST", [("WEST", 1, "")]),
        ):
            sku = f"{kind}-{i}"
            items += f"{sku},{kind} item,,EA,,,false,2.5\n"
            prices += f"{sku},10.00,USD,,\n"
            stock += [f"{sku},{wh},{q},{rp}" for wh, q, rp in rows]
    folder.mkdir(parents=True, exist_ok=True)
    files = {"items": items, "xrefs": gen.XREFS, "prices": prices, "stock": "\n".join(stock) + "\n", "accounts": gen.ACCOUNTS}
    out = {}
    for kind, text in files.items():
        out[kind] = folder / f"{kind}.csv"
        out[kind].write_text(text)
    return out


def test_stock_policies_reservations_and_855s_through_the_cli(tmp_path: Path):
    acks = tmp_path / "acks"
    cfg = config(tmp_path, acks)
    for kind, path in masterdata(tmp_path / "import").items():
        r = run_cli("data", "import", kind, str(path), "-c", str(cfg))
        assert r.returncode == 0, (kind, r.stdout, r.stderr)

    inbox = tmp_path / "inbox"
    cases = gen.x12_mix(4)
    pairs = [gen.cross_channel_pair(i) for i in range(3)]
    for c in [*cases, *(c for p in pairs for c in p)]:
        (inbox / c.file).write_bytes(c.body)
    # po -> (expected state, reason, BAK02 or None, ACK01 per line)
    expect: dict[str, tuple[set[str], str | None, str | None, list[str]]] = {}
    icn = 50000
    for i in range(ROUNDS):
        stock_cases = [
            (f"BO-{i}", "BETACO", [("8", "EA", "10.00", f"BO-{i}", None)], ({"validated"}, None, "AC", ["IB"])),
            (f"PF-{i}", "GAMMACO", [("10", "EA", "10.00", f"PF-{i}", None), ("1", "EA", "10.00", "W-1", None)], ({"validated"}, None, "AC", ["IQ", "IA"])),
            (f"BL-{i}", "ACMERETAIL", [("3", "EA", "10.00", f"BL-{i}", None)], ({"held"}, "STOCK_SHORT", None, [])),
            (f"SP-{i}", "ACMERETAIL", [("10", "EA", "10.00", f"SP-{i}", None)], ({"validated"}, None, "AT", ["IA"])),
            (f"RO-{i}", "ACMERETAIL", [("6", "EA", "10.00", f"RO-{i}", None)], ({"validated"}, None, "AT", ["IA"])),
            (f"LASTA-{i}", "ACMERETAIL", [("1", "EA", "10.00", f"LAST-{i}", None)], ({"validated"}, None, "AT", ["IA"])),
            (f"LASTB-{i}", "BETACO", [("1", "EA", "10.00", f"LAST-{i}", None)], ({"validated"}, None, "AC", ["IB"])),
        ]
        for po, sender, lines, want in stock_cases:
            icn += 1
            (inbox / f"s{icn:06d}-{po}.edi").write_bytes(x12(f"PO-{po}", sender, lines, icn))
            expect[f"PO-{po}"] = want
    base = json.loads(SHOPIFY.read_text())
    carts = [
        (gen.shopify_order(base, "#2001", email="jane.doe@example.com"), ({"validated"}, None)),
        (gen.shopify_order(base, "#2002", email="jane.doe@example.com", status="pending", espresso=2), ({"held"}, "PAYMENT_PENDING")),
    ]
    (tmp_path / "carts").mkdir()
    for (name, body), _ in carts:
        (tmp_path / "carts" / name).write_bytes(body)
    r = run_cli("ingest", "--format", "shopify", "--partner", "shop", "-c", str(cfg), *(str(tmp_path / "carts" / n) for (n, _), _ in carts))
    assert r.returncode == 0, r.stderr
    total = len(cases) + 6 + len(expect) + len(carts)
    assert total >= 200

    r = run_cli("run", "--once", "-c", str(cfg), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        orders = {row.po_number: row for row in conn.execute(select(t.orders.c.id, t.orders.c.po_number, t.orders.c.state, t.orders.c.reason))}
        held = Counter()
        by_order: dict[str, list[tuple[str, str, Decimal]]] = {}
        for row in conn.execute(select(t.stock_reservations).where(t.stock_reservations.c.state == "reserved")):
            held[row.sku] += row.quantity
            by_order.setdefault(row.order_id, []).append((row.sku, row.warehouse, row.quantity))
        levels = {(s.sku, s.warehouse): (s.on_hand, s.reserved) for s in conn.execute(select(t.stock))}
        findings = Counter(row.code for row in conn.execute(select(t.rule_findings.c.code)))
    engine.dispose()
    assert len(orders) == total

    # the rules' own mix decides as without stock
    state_of = {"accept": {"validated", "dispatched"}, "hold": {"held"}, "reject": {"quarantined"}}
    for c in cases:
        assert orders[c.po].state in state_of[c.outcome], (c.name, orders[c.po])
        assert orders[c.po].reason == (c.codes[0] if c.codes else None), (c.name, orders[c.po])
    for edi, cx in pairs:
        assert {orders[edi.po].reason, orders[cx.po].reason} == {None, "DUPLICATE_CONTENT"}

    for (name, _), (states, reason) in carts:
        row = orders["#" + name.removesuffix(".json")]
        sent = {"dispatched"} if "validated" in states else set()
        assert row.state in states | sent and row.reason == reason, row

    answered = gen.read_855s(acks)
    for po, (states, reason, bak, lines) in expect.items():
        row = orders[po]
        assert row.state in states | ({"dispatched"} if "validated" in states else set()), (po, row)
        assert row.reason == reason, (po, row)
        if bak is None:
            assert po not in answered, po
        else:
            assert answered[po] == (bak, lines), po

    # never more reserved than on hand, and the books agree with the reservations
    for (sku, wh), (on_hand, reserved) in levels.items():
        assert 0 <= reserved <= on_hand, (sku, wh)
    per_sku = Counter()
    for (sku, _), (_, reserved) in levels.items():
        per_sku[sku] += reserved
    assert {k: v for k, v in per_sku.items() if v} == {k: v for k, v in held.items() if v}
    for i in range(ROUNDS):
        assert by_order[orders[f"PO-BO-{i}"].id] == [(f"BO-{i}", "EAST", Decimal(5))]
        assert by_order[orders[f"PO-PF-{i}"].id][0] == (f"PF-{i}", "EAST", Decimal(4))
        assert orders[f"PO-BL-{i}"].id not in by_order
        assert sorted(by_order[orders[f"PO-SP-{i}"].id]) == [(f"SP-{i}", "EAST", Decimal(6)), (f"SP-{i}", "WEST", Decimal(4))]
        assert held[f"LAST-{i}"] == 1 and orders[f"PO-LASTB-{i}"].id not in by_order
    assert findings["REORDER_POINT"] == ROUNDS and findings["STOCK_SHORT"] == ROUNDS
    assert findings["PARTIAL_FILL"] == ROUNDS
    dated = next(f for f in acks.rglob("*") if f.is_file() and "PO-BO-3" in f.read_text()).read_text()
    assert "ACK*IB*3*EA*068*" in dated  # 3 backordered, with the date they are expected

    # the route: stored, in the history, and handed to the connector with the order
    def route(po: str) -> dict[str, object]:
        (sent,) = list((tmp_path / "outbox").glob(f"{po}-*.json"))
        found = json.loads(sent.read_text())["route"]
        assert isinstance(found, dict)
        return found

    def parts(r: dict[str, object]) -> list[tuple[str, str, str, str]]:
        return [(p["warehouse"], p["weight_kg"], p["carrier"], p["service"]) for p in r["parts"]]  # type: ignore[attr-defined]

    for i in range(ROUNDS):
        split = route(f"PO-SP-{i}")
        assert split["split"] is True and split["warehouse"] == "EAST" and split["weight_kg"] == "25"
        assert parts(split) == [("EAST", "15", "UPSN", "GND"), ("WEST", "10", "UPSN", "GND")]
        assert parts(route(f"PO-RO-{i}")) == [("EAST", "15", "UPSN", "GND")]
        assert parts(route(f"PO-LASTA-{i}")) == [("WEST", "2.5", "UPSN", "GND")]  # only WEST has it
        assert parts(route(f"PO-BO-{i}")) == [("EAST", "12.5", "UPSN", "GND")]  # what was reserved
        assert parts(route(f"PO-PF-{i}")) == [("EAST", "11", "UPSN", "GND")]
    for c in cases:
        if c.name == "normal":
            i = int(c.po.rsplit("-", 1)[1])
            weight = i + 3  # (i + 1) W-1 and 2 W-2 at 1 kg
            assert parts(route(c.po)) == [("EAST", str(weight), *(("UPSN", "GND") if weight <= 20 else ("FXFE", "LTL")))], c.po
    shown = run_cli("show", "PO-SP-2", "-c", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert "routed (split): part 1 from EAST by UPSN GND, 15 kg, lines 1; part 2 from WEST by UPSN GND, 10 kg, lines 1" in shown.stdout

    # a cancellation gives the stock back; a person's approval reserves what there is
    for i in range(5):
        icn += 1
        (inbox / f"c{icn:06d}.edi").write_bytes(x12(f"PO-BO-{i}", "BETACO", [("8", "EA", "10.00", f"BO-{i}", None)], icn, purpose="01"))
    for i in range(5, 8):  # a replacement asks for 8 instead of 6: the new version holds 8
        icn += 1
        (inbox / f"r{icn:06d}.edi").write_bytes(x12(f"PO-RO-{i}", "ACMERETAIL", [("8", "EA", "10.00", f"RO-{i}", None)], icn, purpose="05"))
    r = run_cli("run", "--once", "-c", str(cfg), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ok = run_cli("approve", orders["PO-BL-0"].id[:8], "--by", "dana", "-c", str(cfg))
    assert ok.returncode == 0, ok.stderr
    no = run_cli("reject", orders["PO-BL-1"].id[:8], "--reason", "no stock", "--by", "lee", "-c", str(cfg))
    assert no.returncode == 0, no.stderr
    shown = run_cli("show", "PO-BO-5", "-c", str(cfg))
    assert shown.returncode == 0 and "BACKORDERED" in shown.stdout, shown.stdout + shown.stderr
    shown = run_cli("show", orders["PO-BL-0"].id[:8], "-c", str(cfg))
    assert "routed: part 1 from EAST by UPSN GND, 5 kg, lines 1" in shown.stdout, shown.stdout

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        reserved = dict(conn.execute(select(t.stock.c.sku, func.sum(t.stock.c.reserved)).group_by(t.stock.c.sku)).all())
        holders = dict(
            conn.execute(
                select(t.stock_reservations.c.sku, t.orders.c.version)
                .join(t.orders, t.orders.c.id == t.stock_reservations.c.order_id)
                .where(t.stock_reservations.c.state == "reserved", t.stock_reservations.c.sku.like("RO-%"))
            ).all()
        )
    engine.dispose()
    assert all(reserved[f"BO-{i}"] == 0 for i in range(5)) and all(reserved[f"BO-{i}"] == 5 for i in range(5, ROUNDS))
    assert reserved["BL-0"] == 2 and reserved["BL-1"] == 0  # approved: what there was
    assert [reserved[f"RO-{i}"] for i in range(4, 9)] == [6, 8, 8, 8, 6]
    assert [holders[f"RO-{i}"] for i in range(4, 9)] == [1, 2, 2, 2, 1]  # held by the new version


@pytest.mark.postgres
def test_three_ingest_processes_never_take_the_same_last_unit(tmp_path: Path, pg_url: str):
    """120 orders from 3 `gateway ingest` processes at once on PostgreSQL, each wanting 1 of
    LAST (30 on hand) and some W-1 (plenty); policy block. Exactly 30 orders get a unit of LAST
    and are accepted, the other 90 are held with STOCK_SHORT, nothing is reserved twice."""
    cfg = config(tmp_path, tmp_path / "acks", store_url=pg_url)
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "items.csv").write_text(gen.ITEMS + "LAST,Last units,,EA,,,false\n")
    (folder / "prices.csv").write_text(gen.PRICES + "LAST,10.00,USD,,\n")
    (folder / "stock.csv").write_text("sku,warehouse,on_hand\nLAST,EAST,18\nLAST,WEST,12\nW-1,EAST,1000000\n")
    (folder / "accounts.csv").write_text(gen.ACCOUNTS)
    for kind in ("items", "prices", "stock", "accounts"):
        r = run_cli("data", "import", kind, str(folder / f"{kind}.csv"), "-c", str(cfg))
        assert r.returncode == 0, (kind, r.stderr)

    batches = []
    for w in range(3):
        d = tmp_path / f"w{w}"
        d.mkdir()
        files = []
        for n in range(40):
            k = w * 40 + n
            f = d / f"{k:04d}.edi"
            f.write_bytes(gen.x12_850(f"PO-last-{k:04d}", [("1", "EA", "10.00", "LAST", None), (str(k + 1), "EA", "10.00", "W-1", None)], icn=k + 1))
            files.append(str(f))
        batches.append(files)
    procs = [
        subprocess.Popen(gateway_cmd("ingest", "-c", str(cfg), *files), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for files in batches
    ]
    started = time.monotonic()
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    assert time.monotonic() - started < 600

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        states = Counter((r.state, r.reason) for r in conn.execute(select(t.orders.c.state, t.orders.c.reason)))
        last = list(conn.execute(select(t.stock_reservations).where(t.stock_reservations.c.sku == "LAST", t.stock_reservations.c.state == "reserved")))
        levels = {r.warehouse: (r.on_hand, r.reserved) for r in conn.execute(select(t.stock).where(t.stock.c.sku == "LAST"))}
        accepted = {r.id for r in conn.execute(select(t.orders.c.id).where(t.orders.c.state == "validated"))}
    engine.dispose()
    assert states == Counter({("validated", None): 30, ("held", "STOCK_SHORT"): 90})
    assert sum(r.quantity for r in last) == 30 and len({r.order_id for r in last}) == 30
    assert {r.order_id for r in last} == accepted
    assert levels == {"EAST": (18, 18), "WEST": (12, 12)}
