"""Dead letters: look at them with their context, edit the order and send it again, replay
them by id, order, PO or filter, or discard them with a reason (gateway.store.dead_letters).

    gateway dead-letters [--connector C --partner P --error TEXT --since T --until T] [--json]
    gateway dead-letters edit ID --set PATH=VALUE ... --by NAME
    gateway dead-letters discard ID ... --reason TEXT --by NAME
    gateway replay IDS | --all | --order ID | --po PO | --connector C ... [--dry-run] [--yes] --by NAME
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _gateway, app, err, out
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.store.dead_letters import DeadFilter

dead_app = typer.Typer(
    invoke_without_command=True,
    help="List deliveries that gave up (filters, --json with context); `edit` or `discard` one.",
)
app.add_typer(dead_app, name="dead-letters")

# More dead letters than this in one filtered replay asks for --yes (or look first with --dry-run).
HANDFUL = 5

Connector = Annotated[str | None, typer.Option("--connector", help="Only deliveries to this connector.")]
Partner = Annotated[str | None, typer.Option("--partner", help="Only orders of this partner.")]
ErrorText = Annotated[str | None, typer.Option("--error", help="Only deliveries whose last error contains this text (taken literally).")]
Since = Annotated[str | None, typer.Option("--since", help="Only deliveries that died at or after this time (ISO 8601; UTC unless it says).")]
Until = Annotated[str | None, typer.Option("--until", help="Only deliveries that died before this time (ISO 8601; UTC unless it says).")]
OrderOpt = Annotated[str | None, typer.Option("--order", help="Only the deliveries of this order (its id or first 6+ characters).")]
PoOpt = Annotated[str | None, typer.Option("--po", help="Only the deliveries of orders with this PO number.")]
PartOpt = Annotated[
    int | None, typer.Option("--part", min=0, help="Only this part of split orders (a dead part is order + connector + part; 0: whole orders).")
]
By = Annotated[str | None, typer.Option("--by", help="Who does it (recorded in the order's history; default: your user name).")]


def _when(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise GatewayError(f"{option} {text!r} is not a time: give ISO 8601, e.g. 2026-12-05 or 2026-12-05T13:00:00Z") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _filter(
    connector: str | None, partner: str | None, error: str | None, since: str | None, until: str | None,
    order: str | None = None, po: str | None = None, part: int | None = None,
) -> DeadFilter:
    from gateway.store.dead_letters import DeadFilter

    return DeadFilter(connector, partner, error, _when(since, "--since"), _when(until, "--until"), order, po, part)


def _who(by: str | None) -> str:
    if by is not None:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise GatewayError("say who you are (--by NAME): the order's history records it") from None


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dead_app.callback()
def dead_letters(
    ctx: typer.Context,
    connector: Connector = None,
    partner: Partner = None,
    error: ErrorText = None,
    since: Since = None,
    until: Until = None,
    order: OrderOpt = None,
    po: PoOpt = None,
    part: PartOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most this many, oldest first.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per dead letter with its context (attempts, errors, times); documents with \"kind\".")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """List deliveries that gave up, with their last error (orders, then acknowledgements)."""
    if ctx.invoked_subcommand is not None:
        return
    import dataclasses

    from gateway.store.dead_letters import attempts_of, list_dead, list_dead_documents

    which = _filter(connector, partner, error, since, until, order, po, part)
    gw = _gateway(config, existing=True)
    try:
        rows = list_dead(gw.store, which, limit=limit)
        # Documents have no partner/connector/order of the kind filtered on: shown only unfiltered.
        acks = list_dead_documents(gw.store, limit=limit) if which.is_empty() else []
        context = attempts_of(gw.store, [r.outbox_id for r in rows]) if as_json else {}
    finally:
        gw.close()
    if as_json:
        for r in rows:
            item = {**dataclasses.asdict(r), "attempt_log": [dataclasses.asdict(a) for a in context.get(r.outbox_id, [])]}
            sys.stdout.write(json.dumps(item, default=_plain) + "\n")
        for a in acks:
            sys.stdout.write(json.dumps(dataclasses.asdict(a), default=_plain) + "\n")
        return
    table = Table(title=f"{len(rows)} dead letter(s)")
    for col in ("id", "order", "po number", "partner", "connector", "attempts", "died", "last status", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.outbox_id), r.order_id[:8], r.po_number or "-", r.partner or "-", r.target, str(r.attempts),
            str(r.updated_at)[:19], str(r.last_status or ""), (r.last_error or "")[:80],
        )
    out.print(table)
    if acks:
        at = Table(title=f"{len(acks)} acknowledgement(s) not delivered (replay them as ack:<id>)")
        for col in ("id", "kind", "partner", "channel", "message", "attempts", "last error"):
            at.add_column(col)
        for a in acks:
            kind = "confirmation e-mail" if a.kind == "MAILREPLY" else f"{a.kind} {a.control_number or ''}".strip()
            at.add_row(f"ack:{a.outbox_id}", kind, a.partner or "-", a.channel, (a.message_id or "")[:8], str(a.attempts), (a.last_error or "")[:80])
        out.print(at)


def _assignments(assignments: list[str] | None, patch: Path | None) -> list[tuple[str, str]]:
    """--set PATH=VALUE pairs, then those of a JSON file {"PATH": "VALUE", ...}."""
    from gateway.processing.exception_queue import parse_assignments

    items = list(assignments or [])
    if patch is not None:
        try:
            given = json.loads(patch.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GatewayError(f"cannot read the patch file {patch}: {exc}") from None
        if not isinstance(given, dict) or not all(isinstance(v, str | int | float) for v in given.values()):
            raise GatewayError(f"{patch}: give a JSON object of PATH: VALUE, e.g. {{\"lines[1].quantity\": \"5\"}}")
        items += [f"{k}={v}" for k, v in given.items()]
    return parse_assignments(items)


@dead_app.command("edit")
def edit(
    dead_id: Annotated[int, typer.Argument(metavar="ID", help="Dead-letter id (see `gateway dead-letters`).")],
    assignments: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE, e.g. lines[2].quantity=10; repeat for more.")] = None,
    patch: Annotated[Path | None, typer.Option("--patch", help="A JSON file of {\"PATH\": \"VALUE\", ...} to apply as well.")] = None,
    by: Annotated[str, typer.Option("--by", help="Who corrects it (required: recorded in the history).")] = "",
    config: ConfigOpt = None,
) -> None:
    """Correct the order of a dead letter: a new version, checked again and queued to where it died."""
    from gateway.cli.review import report_edit
    from gateway.processing.dead_letters import DeadLetters

    pairs = _assignments(assignments, patch)
    gw = _gateway(config, existing=True)
    try:
        done = DeadLetters(gw.store, gw.pipeline.exceptions).edit(dead_id, pairs, by=by)
    finally:
        gw.close()
    report_edit(done, "queued again with the correction")


@dead_app.command("discard")
def discard(
    ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Dead-letter ids (see `gateway dead-letters`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it never goes (required: recorded in the history).")] = "",
    by: Annotated[str, typer.Option("--by", help="Who decides (required: recorded in the history).")] = "",
    config: ConfigOpt = None,
) -> None:
    """Give up on dead letters for good: never sent; the order's state and history say so."""
    from gateway.store.dead_letters import discard as do_discard

    gw = _gateway(config, existing=True)
    try:
        n = do_discard(gw.store, ids, reason=reason, by=by)
    finally:
        gw.close()
    err.print(f"{n} dead letter(s) discarded", markup=False)
    if n < len(set(ids)):
        err.print("some ids were not dead deliveries of orders (`gateway dead-letters` lists them)", markup=False)
        raise typer.Exit(1)


@app.command()
def replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids (see `gateway dead-letters`): 12 for a delivery, ack:12 for an acknowledgement.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter (deliveries and acknowledgements).")] = False,
    order: OrderOpt = None,
    po: PoOpt = None,
    connector: Connector = None,
    part: PartOpt = None,
    partner: Partner = None,
    error: ErrorText = None,
    since: Since = None,
    until: Until = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be queued; queue nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help=f"Go ahead when a filter matches more than {HANDFUL}.")] = False,
    by: By = None,
    config: ConfigOpt = None,
) -> None:
    """Send dead letters again (after fixing what made them fail): by id, by order or PO, by filter, or --all."""
    from gateway.store.dead_letters import list_dead, list_dead_documents
    from gateway.store.dead_letters import replay as do_replay

    which = _filter(connector, partner, error, since, until, order, po, part)
    if ids and not which.is_empty():
        raise GatewayError("give dead-letter ids or a filter (--order, --po, --connector, ...), not both")
    if not ids and not all_ and which.is_empty():
        raise GatewayError("name the dead letters to replay (ids, --order, --po or a filter such as --connector), or pass --all")
    outbox_ids: list[int] = []
    ack_ids: list[int] = []
    for i in ids or []:
        kind, _, num = i.lower().rpartition(":")
        if kind not in ("", "ack") or not num.isdigit():
            raise GatewayError(f"{i!r} is not a dead-letter id: give a number (a delivery) or ack:<number> (an acknowledgement)")
        (ack_ids if kind == "ack" else outbox_ids).append(int(num))
    who = _who(by)
    gw = _gateway(config, existing=True)
    try:
        if not which.is_empty():
            matched = list_dead(gw.store, which)
            if (order is not None or po is not None) and not matched:
                raise GatewayError(f"order {order or 'with PO ' + str(po)} has no dead delivery; nothing queued")
            if dry_run or (len(matched) > HANDFUL and not yes):
                for r in matched:
                    out.print(f"{r.outbox_id}\t{r.order_id[:8]}\t{r.po_number or '-'}\t{r.target}\t{(r.last_error or '')[:80]}", markup=False)
                if dry_run:
                    err.print(f"{len(matched)} dead letter(s) match; --dry-run: nothing queued", markup=False)
                    return
                err.print(f"{len(matched)} dead letters match; give --yes to replay them all (or narrow the filter)", markup=False)
                raise typer.Exit(1)
            n = do_replay(gw.store, [r.outbox_id for r in matched], by=who)
        else:
            if not all_:
                # Say which id is wrong instead of "0 queued" (issue 14 #15); nothing is queued then.
                dead = {r.outbox_id for r in list_dead(gw.store)} if outbox_ids else set()
                dead_acks = {r.outbox_id for r in list_dead_documents(gw.store)} if ack_ids else set()
                unknown = [str(i) for i in sorted(set(outbox_ids) - dead)]
                unknown += [f"ack:{i}" for i in sorted(set(ack_ids) - dead_acks)]
                if unknown:
                    raise GatewayError(
                        f"no dead letter with id {', '.join(unknown)}; nothing queued "
                        "(`gateway dead-letters` lists them)"
                    )
            if dry_run:
                err.print("--dry-run lists what a filter matches; `gateway dead-letters` lists them all", markup=False)
                return
            # Orders and documents are rows of one outbox: one replay queues both.
            n = do_replay(gw.store, "all" if all_ else [*outbox_ids, *ack_ids], by=who)
    finally:
        gw.close()
    err.print(f"{n} delivery(ies) queued again; `gateway run` sends them", markup=False)
    if ids and n < len(ids):
        raise typer.Exit(1)
