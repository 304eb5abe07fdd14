"""After the order: `gateway ship`, `gateway invoice`, `gateway send-stock-report` (gateway.fulfilment)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli.common import ConfigOpt, _gateway, app, err, out
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.fulfilment import ShippedLine

LineOpt = Annotated[
    list[str] | None, typer.Option("--line", help="SKU=QTY of one line (repeat it); none: every line of the order in full.")
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", exists=True, dir_okay=False, help="A CSV file, one row per order (see README: Shipments, invoices and stock reports)."),
]
ByOpt = Annotated[str, typer.Option("--by", help="Who records it (kept in the order's history).")]


def _lines(given: list[str] | str | None) -> tuple[ShippedLine, ...]:
    """SKU=QTY values (a list, or one string of them separated by spaces or semicolons)."""
    from gateway.fulfilment import ShippedLine

    items = given.replace(";", " ").split() if isinstance(given, str) else (given or [])
    out_: list[ShippedLine] = []
    for item in items:
        sku, sep, qty = item.rpartition("=")
        try:
            quantity = Decimal(qty)
        except InvalidOperation:
            quantity = Decimal("NaN")
        if not sep or not sku or not quantity.is_finite() or quantity <= 0:
            raise GatewayError(f"--line {item!r}: write SKU=QTY with a positive quantity, e.g. WID-1=2")
        out_.append(ShippedLine(sku, quantity))
    return tuple(out_)


def _date(value: str | None, what: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GatewayError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def _amount(value: str | None, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise GatewayError(f"{what} {value!r} is not an amount")
    return amount


def _rows(orders: list[str] | None, file: Path | None, defaults: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, values) for each order named, then each row of the CSV (its empty cells
    take the command-line options)."""
    n = 0
    for order in orders or []:
        n += 1
        yield n, {**defaults, "order": order}
    if file is not None:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                n += 1
                yield n, {**defaults, **{k.strip().lower(): v.strip() for k, v in row.items() if k and v and v.strip()}}


def _run(kind: str, rows: Iterator[tuple[int, dict[str, Any]]], record: Any) -> None:
    done = failed = 0
    for n, values in rows:
        try:
            if not values.get("order"):
                raise GatewayError("no order named (an ORDER argument, or the CSV column `order`)")
            result = record(values)
        except GatewayError as exc:
            failed += 1
            err.print(f"{values.get('order') or f'row {n}'}: {exc}", markup=False)
            continue
        done += 1
        said = "recorded before: nothing done again" if result.repeat else "; ".join(result.documents) or "no document (the partner wants none)"
        out.print(f"{result.order_id[:8]} PO {result.po_number}: {result.state}; {said}", markup=False, soft_wrap=True)
    if done + failed == 0:
        raise GatewayError(f"name the orders to record a {kind} for (ORDER arguments or --file)")
    err.print(f"{done} {kind}(s) recorded" + (f", {failed} refused" if failed else ""), markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def ship(
    orders: Annotated[list[str] | None, typer.Argument(help="Orders shipped: id, id prefix or PO number.")] = None,
    carrier: Annotated[str | None, typer.Option("--carrier", help="The carrier (a SCAC such as UPSN, or a name such as UPS).")] = None,
    tracking: Annotated[list[str] | None, typer.Option("--tracking", help="A tracking number (repeat it for several packages).")] = None,
    service: Annotated[str | None, typer.Option("--service", help="The service level (GROUND, 2DAY, ...).")] = None,
    line: LineOpt = None,
    date: Annotated[str | None, typer.Option("--date", help="Ship date, YYYY-MM-DD (default: today).")] = None,
    file: FileOpt = None,
    by: ByOpt = "",
    config: ConfigOpt = None,
) -> None:
    """Record shipments: each order becomes shipped, its history names the carrier and tracking
    numbers, and partners that want ship notices get an 856 / DESADV. Many orders in one run:
    name them, or give --file with columns order, carrier, tracking, service, lines, date."""
    from gateway.fulfilment import Fulfilment, Shipment

    gw = _gateway(config, existing=True)
    try:
        f = Fulfilment(gw.store, gw.config)

        def record(v: dict[str, Any]) -> Any:
            if not v.get("carrier"):
                raise GatewayError("name the carrier (--carrier, or the CSV column `carrier`)")
            numbers = v.get("tracking") or ()
            numbers = tuple(numbers.replace(";", " ").split()) if isinstance(numbers, str) else tuple(numbers)
            shipment = Shipment(
                carrier=v["carrier"], tracking=numbers, service=v.get("service"), lines=_lines(v.get("lines")),
                ship_date=_date(v.get("date"), "the ship date"),
            )
            return f.record_shipment(v["order"], shipment, by=by)

        defaults = {"carrier": carrier, "tracking": tracking, "service": service, "lines": line, "date": date}
        _run("shipment", _rows(orders, file, defaults), record)
    finally:
        gw.close()


@app.command()
def invoice(
    orders: Annotated[list[str] | None, typer.Argument(help="Orders invoiced: id, id prefix or PO number.")] = None,
    number: Annotated[str | None, typer.Option("--number", help="The invoice number.")] = None,
    date: Annotated[str | None, typer.Option("--date", help="Invoice date, YYYY-MM-DD (default: today).")] = None,
    tax: Annotated[str | None, typer.Option("--tax", help="Tax amount.")] = None,
    freight: Annotated[str | None, typer.Option("--freight", help="Freight charged.")] = None,
    total: Annotated[str | None, typer.Option("--total", help="Invoice total (default: lines + tax + freight).")] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="ISO 4217 code (default: the order's).")] = None,
    line: LineOpt = None,
    file: FileOpt = None,
    by: ByOpt = "",
    config: ConfigOpt = None,
) -> None:
    """Record invoices: each order becomes invoiced, its history names the invoice, and
    partners that want invoices get an 810 / INVOIC. Many orders in one run: name them, or
    give --file with columns order, number, date, tax, freight, total, currency, lines."""
    from gateway.fulfilment import Fulfilment, Invoice

    gw = _gateway(config, existing=True)
    try:
        f = Fulfilment(gw.store, gw.config)

        def record(v: dict[str, Any]) -> Any:
            if not v.get("number"):
                raise GatewayError("give the invoice number (--number, or the CSV column `number`)")
            inv = Invoice(
                number=v["number"], date=_date(v.get("date"), "the invoice date"), lines=_lines(v.get("lines")),
                tax=_amount(v.get("tax"), "tax"), freight=_amount(v.get("freight"), "freight"),
                total=_amount(v.get("total"), "total"), currency=v.get("currency"),
            )
            return f.record_invoice(v["order"], inv, by=by)

        defaults = {"number": number, "date": date, "tax": tax, "freight": freight, "total": total, "currency": currency, "lines": line}
        _run("invoice", _rows(orders, file, defaults), record)
    finally:
        gw.close()


@app.command("send-stock-report")
def send_stock_report(
    partner: Annotated[str, typer.Argument(help="The partner (see `gateway partners`).")],
    config: ConfigOpt = None,
) -> None:
    """Queue a stock report (846 / INVRPT) for a partner now, with the stock available in the
    master data; `gateway run` sends it (and sends them on the partner's acks.stock_report schedule)."""
    from gateway.fulfilment import Fulfilment

    gw = _gateway(config, existing=True)
    try:
        said = Fulfilment(gw.store, gw.config).send_stock_report(partner)
    finally:
        gw.close()
    out.print(f"queued {said}", markup=False)
