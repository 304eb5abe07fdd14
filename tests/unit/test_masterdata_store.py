"""Master data in the store (issue 10): the rules' batched reads, imports, stock reservations.

Every test runs on SQLite and on PostgreSQL (the `store` fixture).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.errors import ConfigError
from gateway.masterdata.importer import ImportRefused, import_file, load_mapping
from gateway.masterdata.model import Address, MasterData, ReserveOutcome
from gateway.store import Store
from gateway.store.masterdata import (
    ReserveLine,
    StockKeeper,
    StoreMasterData,
    data_status,
    list_rows,
    unknown_skus,
)
from tests.conftest import FIXTURES

MD = FIXTURES / "masterdata"
TODAY = dt.date(2026, 6, 1)


def _load_fixtures(store: Store) -> None:
    for kind, name in (("items", "items.csv"), ("xrefs", "xrefs.csv"), ("prices", "prices.csv"), ("stock", "stock.tsv"), ("accounts", "accounts.csv")):
        report = import_file(store, kind, MD / name)
        assert report.committed and not report.problems, (kind, report.problems)


def _stock(store: Store, sku: str) -> dict[str, tuple[Decimal, Decimal]]:
    with store.engine.connect() as conn:
        return {s.warehouse: (s.on_hand, s.reserved) for s in StoreMasterData(conn).stock([sku]).get(sku, [])}


def test_the_rules_read_what_was_imported(store: Store) -> None:
    _load_fixtures(store)
    with store.engine.connect() as conn:
        md: MasterData = StoreMasterData(conn)
        items = md.items(["WID-100", "OLD-001", "NOPE"])
        assert set(items) == {"WID-100", "OLD-001"}
        widget = items["WID-100"]
        assert widget.uoms == {"CA": Decimal(12), "PL": Decimal(480)} and widget.gtin == "4006381333931"
        assert widget.base_quantity(Decimal(2), "CA") == Decimal(24) and widget.base_quantity(Decimal(1), "BX") is None
        assert widget.weight_kg == Decimal("0.25") and widget.source == "items.csv" and widget.updated_at is not None
        assert items["OLD-001"].discontinued and not widget.discontinued
        assert set(md.items_by_gtin(["4006381333931", "0000000000000"])) == {"4006381333931"}
        assert md.cross_references("acme", ["ACME-W100", "ACME-XX"]) == {"ACME-W100": "WID-100"}
        assert md.cross_references("other", ["ACME-W100"]) == {}

        prices = md.prices(["WID-100", "WID-200"], "C-1001", TODAY)["WID-100"]
        assert [(p.customer, p.uom, p.unit_price) for p in prices] == [("C-1001", "EA", Decimal("2.2")), (None, "CA", Decimal(27)), (None, "EA", Decimal("2.5"))]
        assert [p.unit_price for p in md.prices(["WID-100"], None, TODAY)["WID-100"]] == [Decimal(27), Decimal("2.5")]
        # The 2.50 list price ends on 2026-12-31 (inclusive).
        assert [p.unit_price for p in md.prices(["WID-100"], None, dt.date(2027, 1, 1))["WID-100"]] == [Decimal(27)]

        levels = md.stock(["WID-100"])["WID-100"]
        assert [(s.warehouse, s.on_hand, s.available, s.reorder_point) for s in levels] == [("BER", 120, 120, 50), ("HAM", 30, 30, 10)]

        acme = md.account(partner="acme")
        assert acme is not None and acme.code == "C-1001" and acme.remaining_credit == Decimal("37999.5")
        assert acme.ship_to == (
            Address(name="Acme DC Nord", street="Hafenstr. 1", city="Hamburg", postal_code="20457", country="DE"),
            Address(name="Acme DC Sued", street="Industriestr. 9", city="Muenchen", postal_code="80331", country="DE"),
        )
        jane = md.account(email="JANE.DOE@example.com")
        assert jane is not None and jane.code == "C-2002" and jane.credit_limit is None and jane.ship_to == ()
        assert md.account(code="NOPE", email="jane.doe@example.com") == jane  # falls through code to e-mail
        assert md.account(code="NOPE") is None


def test_reads_are_batched_and_cached(store: Store, tmp_path: Path) -> None:
    """One query per kind per 1,000 keys, none for keys already read in this batch."""
    rows = "\n".join(f"S{n:05d},item {n}" for n in range(2500))
    (tmp_path / "many.csv").write_text("sku,description\n" + rows + "\n")
    assert import_file(store, "items", tmp_path / "many.csv").stored == 2500
    with store.engine.connect() as conn:
        md = StoreMasterData(conn)
        skus = [f"S{n:05d}" for n in range(0, 2500)] + ["MISSING"]
        assert len(md.items(skus)) == 2500
        assert md.queries == 3
        assert len(md.items(skus[:10] + ["MISSING"])) == 10 and md.queries == 3
        md.stock(skus[:500])
        md.prices(skus[:500], "C-1", TODAY)
        assert md.queries == 5


def test_rows_naming_skus_the_catalogue_lacks_are_counted(store: Store, tmp_path: Path) -> None:
    _load_fixtures(store)
    assert unknown_skus(store, "stock", "stock.tsv") == (0, [])
    (tmp_path / "p.csv").write_text("sku,price,currency\nWID-100,1,EUR\nGHOST-2,1,EUR\nGHOST-1,1,EUR\nGHOST-1,2,USD\n")
    import_file(store, "prices", tmp_path / "p.csv")
    assert unknown_skus(store, "prices", "p.csv", sample=1) == (2, ["GHOST-1"])
    assert unknown_skus(store, "items", "items.csv") == (0, [])


def test_a_second_import_updates_and_replace_removes(store: Store, tmp_path: Path) -> None:
    _load_fixtures(store)
    (tmp_path / "new.csv").write_text("sku,description\nWID-100,Widget 100 mm (new)\nNEW-1,New\n")
    report = import_file(store, "items", tmp_path / "new.csv")
    assert report.stored == 2
    with store.engine.connect() as conn:
        items = StoreMasterData(conn).items(["WID-100", "WID-200", "NEW-1"])
    # Columns the file does not have keep their stored values.
    assert items["WID-100"].description == "Widget 100 mm (new)" and items["WID-100"].uoms == {"CA": 12, "PL": 480}
    assert items["WID-100"].source == "new.csv" and items["WID-200"].source == "items.csv"

    report = import_file(store, "items", tmp_path / "new.csv", replace=True)
    assert report.removed == 3
    assert list_rows(store, "items")[2] == 2
    status = {(s.kind, s.source): s.rows for s in data_status(store)}
    assert status[("items", "new.csv")] == 2 and ("items", "items.csv") not in status


def test_a_stock_import_never_touches_what_is_reserved(store: Store, tmp_path: Path) -> None:
    _load_fixtures(store)
    keeper = StockKeeper(store)
    assert keeper.reserve("o-1", [ReserveLine("1", "WID-200", Decimal(4), "BER")]).complete
    (tmp_path / "s.csv").write_text("sku,warehouse,on hand\nWID-200,BER,50\nWID-100,BER,7\n")
    import_file(store, "stock", tmp_path / "s.csv")
    assert _stock(store, "WID-200") == {"BER": (50, 4)}
    (tmp_path / "s2.csv").write_text("sku,warehouse,on hand\nWID-100,BER,9\n")
    import_file(store, "stock", tmp_path / "s2.csv", replace=True)
    # WID-200 is gone from the file but 4 are held for o-1: kept, with nothing on hand.
    assert _stock(store, "WID-200") == {"BER": (0, 4)}
    assert _stock(store, "WID-100") == {"BER": (9, 0)}
    assert _stock(store, "BOLT-M8") == {}


def test_reserve_whole_short_partial_and_across_warehouses(store: Store) -> None:
    _load_fixtures(store)  # WID-100: BER 120, HAM 30; WID-200: BER 6
    keeper = StockKeeper(store)
    first = keeper.reserve("o-1", [ReserveLine("1", "WID-100", Decimal(100)), ReserveLine("2", "WID-200", Decimal(6), "BER")])
    assert first.complete and [(r.warehouse, r.quantity) for r in first.reservations] == [("BER", 100), ("BER", 6)]
    short = keeper.reserve("o-2", [ReserveLine("1", "WID-100", Decimal(45)), ReserveLine("2", "WID-200", Decimal(1))])
    assert [x.outcome for x in short.lines] == [ReserveOutcome.SHORT, ReserveOutcome.SHORT] and not short.reservations
    # No warehouse has 45 left (BER 20, HAM 30): a partial fill takes them from both.
    split = keeper.reserve("o-3", [ReserveLine("1", "WID-100", Decimal(45))], partial=True)
    assert split.complete and sorted((r.warehouse, r.quantity) for r in split.reservations) == [("BER", 15), ("HAM", 30)]
    assert _stock(store, "WID-100") == {"BER": (120, 115), "HAM": (30, 30)}
    some = keeper.reserve("o-4", [ReserveLine("1", "WID-100", Decimal(10))], partial=True)
    assert some.lines[0].outcome is ReserveOutcome.PARTIAL and some.lines[0].reserved == 5
    nothing = keeper.reserve("o-5", [ReserveLine("1", "WID-100", Decimal(1))], partial=True)
    assert nothing.lines[0].outcome is ReserveOutcome.SHORT and _stock(store, "WID-100") == {"BER": (120, 120), "HAM": (30, 30)}
    with pytest.raises(ValueError, match="positive"):
        keeper.reserve("o-5", [ReserveLine("1", "WID-100", Decimal(0))])


def test_reserve_is_idempotent_and_release_gives_back_once(store: Store) -> None:
    _load_fixtures(store)
    keeper = StockKeeper(store)
    lines = [ReserveLine("1", "WID-200", Decimal(5), "BER")]
    assert keeper.reserve("o-1", lines).complete
    again = keeper.reserve("o-1", lines)
    assert again.repeated and again.complete and _stock(store, "WID-200") == {"BER": (6, 5)}
    assert [r.quantity for r in keeper.held("o-1")] == [5]
    assert [r.quantity for r in keeper.release("o-1")] == [5]
    assert keeper.release("o-1") == [] and _stock(store, "WID-200") == {"BER": (6, 0)}
    assert keeper.held("o-1") == []
    # Released, it may reserve again (an order approved after all).
    assert keeper.reserve("o-1", lines).complete and _stock(store, "WID-200") == {"BER": (6, 5)}
    with store.engine.connect() as conn:
        history = [r[0] for r in conn.execute(text("SELECT kind FROM events WHERE order_id = 'o-1' ORDER BY id"))]
    assert history == ["stock_reserved", "stock_released", "stock_reserved"]
    assert keeper.reserve("o-2", lines).lines[0].outcome is ReserveOutcome.SHORT


def test_adjust_counts_what_the_order_gives_back(store: Store) -> None:
    _load_fixtures(store)  # WID-200: BER 6
    keeper = StockKeeper(store)
    assert keeper.reserve("o-1", [ReserveLine("1", "WID-200", Decimal(4), "BER")]).complete
    assert keeper.reserve("o-2", [ReserveLine("1", "WID-200", Decimal(1), "BER")]).complete
    # o-1 changes 4 -> 5: its own 4 come back first, so 5 of the 5 available fit.
    changed = keeper.adjust("o-1", [ReserveLine("1", "WID-200", Decimal(5), "BER")])
    assert changed.complete and [r.quantity for r in changed.released] == [4]
    assert _stock(store, "WID-200") == {"BER": (6, 6)}
    too_many = keeper.adjust("o-1", [ReserveLine("1", "WID-200", Decimal(7), "BER")], partial=True)
    assert too_many.lines[0].outcome is ReserveOutcome.PARTIAL and too_many.lines[0].reserved == 5
    down = keeper.adjust("o-1", [ReserveLine("1", "WID-200", Decimal(2), "BER")])
    assert down.complete and _stock(store, "WID-200") == {"BER": (6, 3)}
    assert [r.quantity for r in keeper.held("o-1")] == [2]


def test_a_bad_file_stores_nothing_and_names_row_and_column(store: Store) -> None:
    report = import_file(store, "items", MD / "items_bad.csv")
    assert not report.committed and report.stored == 0 and report.bad_rows == 4 and report.rows == 5
    text = [str(p) for p in report.problems]
    assert 'row 3, column "gtin" (C): gtin: \'4006381333932\' has a wrong check digit (expected 1): a typo in the GTIN' in text
    assert any(t.startswith('row 4, column "pack size" (E)') and "negative" in t for t in text)
    assert any(t.startswith('row 5, column "sku" (A)') and "empty" in t for t in text)
    assert "row 6: OK-1 is already on row 2; keep one of the two rows" in text
    assert list_rows(store, "items")[2] == 0
    skipped = import_file(store, "items", MD / "items_bad.csv", skip_bad=True)
    assert skipped.committed and skipped.stored == 1 and list_rows(store, "items")[2] == 1


def test_a_file_without_a_required_column_is_refused(store: Store, tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("sku,price\nA,1\n")
    with pytest.raises(ImportRefused, match=r"row 1: no column for currency \(header .*\"cur\""):
        import_file(store, "prices", tmp_path / "p.csv")
    (tmp_path / "x.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(ImportRefused, match="not an XLSX workbook"):
        import_file(store, "items", tmp_path / "x.xlsx")


def test_xlsx_is_read_with_its_cell_types(store: Store, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["SKU", "Price", "Currency", "Valid From", "Min Qty"])
    sheet.append(["WID-100", 2.5, "eur", dt.datetime(2026, 1, 1), 10])
    sheet.append(["WID-200", 4, "EUR", None, None])
    book.save(tmp_path / "p.xlsx")
    report = import_file(store, "prices", tmp_path / "p.xlsx")
    assert report.stored == 2, report.problems
    with store.engine.connect() as conn:
        found = StoreMasterData(conn).prices(["WID-100", "WID-200"], None, TODAY)
    assert [(p.unit_price, p.currency, p.valid_from, p.min_quantity) for p in found["WID-100"]] == [(Decimal("2.5"), "EUR", dt.date(2026, 1, 1), 10)]
    assert found["WID-200"][0].unit_price == 4


def test_a_mapping_with_an_unknown_field_is_a_configuration_error(tmp_path: Path) -> None:
    folder = tmp_path / "masterdata"
    folder.mkdir()
    (folder / "erp.yaml").write_text("kind: items\ncolumns:\n  sku: [Artikel]\n  colour: [Farbe]\n")
    with pytest.raises(ConfigError, match=r"erp.yaml:4: items has no field 'colour'"):
        load_mapping("items", "erp", roots=[tmp_path])
    (folder / "de.yaml").write_text("kind: items\ncolumns:\n  sku: [Artikelnummer]\n  description: Bezeichnung\n")
    mapping = load_mapping("items", "de", roots=[tmp_path])
    assert mapping.headers["artikelnummer"] == "sku" and mapping.headers["bezeichnung"] == "description"
    with pytest.raises(ConfigError, match="a mapping name is letters"):
        load_mapping("items", "price list!", roots=[tmp_path])


def test_reserving_in_the_callers_transaction_rolls_back_with_it(store: Store) -> None:
    """The step that accepts an order reserves in its own transaction: if that fails, the
    stock was never taken."""
    _load_fixtures(store)
    keeper = StockKeeper(store)
    lines = [ReserveLine("1", "WID-200", Decimal(6), "BER")]

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.begin() as conn:
        assert keeper.reserve("o-1", lines, conn=conn).complete
        assert [r.quantity for r in keeper.held("o-1", conn=conn)] == [6]
        raise Boom
    assert _stock(store, "WID-200") == {"BER": (6, 0)} and keeper.held("o-1") == []
    with store.begin() as conn:
        assert keeper.reserve("o-1", lines, conn=conn).complete
        assert keeper.reserve("o-2", lines, conn=conn).lines[0].outcome is ReserveOutcome.SHORT
    with store.begin() as conn:
        changed = keeper.adjust("o-1", [ReserveLine("1", "WID-200", Decimal(2), "BER")], conn=conn)
        assert [r.quantity for r in changed.released] == [6]
        assert [r.quantity for r in keeper.release("o-1", conn=conn)] == [2]
    assert _stock(store, "WID-200") == {"BER": (6, 0)}


def test_a_csv_in_another_encoding_is_refused_until_named(store: Store, tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_bytes("sku;description\nK-1;Kühlbox 30 l\n".encode("cp1252"))
    with pytest.raises(ImportRefused, match=r"byte 21 is not utf-8 text; .*--encoding .*cp1252"):
        import_file(store, "items", tmp_path / "w.csv")
    assert import_file(store, "items", tmp_path / "w.csv", encoding="cp1252").stored == 1
    with store.engine.connect() as conn:
        assert StoreMasterData(conn).items(["K-1"])["K-1"].description == "Kühlbox 30 l"
    with pytest.raises(ConfigError, match="no such text encoding"):
        import_file(store, "items", tmp_path / "w.csv", encoding="klingon")


def test_random_reserves_releases_and_changes_keep_the_books_exact(store: Store, tmp_path: Path) -> None:
    """300 seeded random operations (reserve whole or partial, again, change, release) on 3
    SKUs in 2 warehouses: after each, every stock row's `reserved` is exactly what the held
    reservations add up to, and never more than on hand."""
    import random

    from sqlalchemy import text as sql

    (tmp_path / "s.csv").write_text("sku,warehouse,on_hand\nA,W1,10\nA,W2,5\nB,W1,3\nC,W2,7.5\n")
    import_file(store, "stock", tmp_path / "s.csv")
    keeper = StockKeeper(store)
    rng = random.Random(10)
    orders = [f"o-{n}" for n in range(12)]

    def lines() -> list[ReserveLine]:
        return [
            ReserveLine(str(i + 1), rng.choice("ABC"), Decimal(rng.choice(["1", "2", "0.5", "4", "6"])), rng.choice([None, "W1", "W2"]))
            for i in range(rng.randint(1, 3))
        ]

    for _ in range(300):
        order, op = rng.choice(orders), rng.random()
        if op < 0.45:
            keeper.reserve(order, lines(), partial=rng.random() < 0.5)
        elif op < 0.7:
            keeper.adjust(order, lines(), partial=rng.random() < 0.5)
        else:
            keeper.release(order)
        with store.engine.connect() as conn:
            rows = {(r.sku, r.warehouse): (Decimal(r.on_hand), Decimal(r.reserved)) for r in conn.execute(sql("SELECT * FROM stock"))}
            held: dict[tuple[str, str], Decimal] = {}
            for r in conn.execute(sql("SELECT sku, warehouse, quantity FROM stock_reservations WHERE state = 'reserved'")):
                held[(r.sku, r.warehouse)] = held.get((r.sku, r.warehouse), Decimal(0)) + Decimal(r.quantity)
        for key, (on_hand, reserved) in rows.items():
            assert Decimal(0) <= reserved <= on_hand and reserved == held.get(key, Decimal(0)), (key, on_hand, reserved, held)
