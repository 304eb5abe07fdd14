"""Interchange repeats: the same EDI interchange (sender and control number) received again.

Whether an interchange was seen before is decided inside the write transaction of the first
batch that holds its documents (or its end), so the check costs no extra round trip and two
nodes cannot both take the same interchange (gateway.store.interchanges holds the keys).

    same key, same digest        a duplicate: nothing new is created
    same key, other digest       CONTROL_NUMBER_REUSED: refused until a person accepts it
                                 (`gateway reprocess --accept-reused-control`, take_over_reused)
    no trailer (cut off)         TRUNCATED: not registered, so the complete one may follow
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError, InputRejected
from gateway.formats.base import InterchangeClosed, InterchangeOpened
from gateway.processing.acknowledge import ack_closed
from gateway.processing.run import Run, is_cut_off
from gateway.store import interchanges as interchange_repo
from gateway.store import messages as message_repo
from gateway.store import utcnow
from gateway.translate import PartnerDirectory

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["close_interchange", "decide_interchanges", "forget_settled", "open_interchange", "settle_close", "take_over_reused", "truncated"]


def open_interchange(ev: InterchangeOpened, run: Run) -> None:
    key = ev.envelope.interchange_key
    if key is None or is_cut_off(ev.envelope, run):
        return  # a cut-off interchange is not registered: the complete one may follow
    ix = ev.envelope.interchange_index
    if key in run.opened:  # the same interchange twice in this very file
        run.skipping[ix] = run.opened[key]
        return
    run.opened[key] = ""
    run.undecided[key] = ix


def close_interchange(ev: InterchangeClosed, run: Run) -> None:
    for err in ev.errors:
        run.warnings.append(f"interchange {ev.envelope.interchange_control_number}: {err}")
    key = ev.envelope.interchange_key
    if not ev.complete or is_cut_off(ev.envelope, run):
        truncated(ev, run)
        ack_closed(ev, None, run)  # TA1 R 023 / CONTRL UCI 4: agrees with the quarantine
        return
    if key is None:
        ack_closed(ev, None, run)
        return
    if key in run.undecided:
        run.closes[key] = ev  # settled by the next flush, once we know if it is a repeat
        return
    settle_close(ev, run)


def truncated(ev: InterchangeClosed, run: Run) -> None:
    env, ix = ev.envelope, ev.envelope.interchange_index
    trailer = "IEA" if env.standard == "x12" else "UNZ"
    run.truncated_seen.append(
        f"interchange {env.interchange_control_number or '?'} from {env.sender_id or '?'} is cut off "
        f"(no {trailer} or group trailer): none of its {ev.document_count} document(s) was accepted; "
        "ask the partner to send the complete file again"
    )
    if not is_cut_off(env, run):  # the scan missed it: refuse what is not written yet
        run.truncated.add((ix, env.interchange_control_number or ""))
        for row in run.batch.orders:
            if row.get("_ix") == ix and row["state"] != "quarantined":
                row.update(state="quarantined", reason="TRUNCATED", error=run.truncated_seen[-1], order_key=None)
                row.pop("_mapped", None)
                row.pop("_review", None)
                run.orders -= 1
                run.rejected += 1


def settle_close(ev: InterchangeClosed, run: Run) -> None:
    key = ev.envelope.interchange_key
    assert key is not None
    ix = ev.envelope.interchange_index
    if run.acks is not None:
        repeat = None if ix not in run.skipping else ("same" if run.skipping[ix] and run.skipping[ix] == ev.digest else "reused")
        ack_closed(ev, repeat, run)
    if ix in run.skipping:
        earlier = run.skipping.pop(ix)  # closed: no more of its documents to skip
        run.skipped = True
        if not run.resumed:
            run.opened.pop(key, None)  # the store answers for it from now on (forget_settled)
        if earlier and earlier == ev.digest:
            run.duplicates += ev.document_count or 1
            run.batch.events.append({"kind": "duplicate_interchange", "message_id": run.message_id, "detail": f"interchange {key} was received before with the same content; nothing new created"})
        else:
            run.rejected += 1
            run.reused.append(key)
            run.batch.events.append({"kind": "quarantined", "message_id": run.message_id, "detail": f"CONTROL_NUMBER_REUSED: interchange {key} was received before with different content; a person must decide"})
            run.warnings.append(f"CONTROL_NUMBER_REUSED: interchange control number {ev.envelope.interchange_control_number} from {ev.envelope.sender_id} was used before for different content")
        return
    if run.opened.get(key) == "":
        run.opened[key] = ev.digest
    run.batch.digests.append((key, ev.digest))


def forget_settled(run: Run, written: list[tuple[str, str]]) -> None:
    """Drop interchanges whose digest was just written from `run.opened`: a repeat later in
    the file is found in the store by `decide_interchanges`. Kept when resumed after a crash,
    where our own rows in the store cannot be told from a repeat."""
    if not run.resumed:
        for key, _ in written:
            run.opened.pop(key, None)


def decide_interchanges(conn: Connection, run: Run) -> None:
    if not run.undecided:
        return
    keys = sorted(run.undecided)
    known = interchange_repo.known(conn, keys)
    new_rows = []
    for key in keys:
        ix = run.undecided.pop(key)
        row = known.get(key)
        if row is None:
            new_rows.append({"key": key, "message_id": run.message_id, "digest": None, "created_at": utcnow()})
        elif row.message_id != run.message_id or (row.digest and not run.resumed):
            # Someone else's, or ours from earlier in this very file (forgotten by
            # forget_settled once written). Our own row when resumed after a crash is not a
            # repeat, nor is one a person handed to this message (digest forgotten).
            run.skipping[ix] = row.digest or ""
            run.opened[key] = row.digest or ""
            dropped = {o["id"] for o in run.batch.orders if o.get("_ix") == ix}
            if dropped:
                run.batch.orders = [o for o in run.batch.orders if o["id"] not in dropped]
                run.batch.events = [e for e in run.batch.events if e.get("order_id") not in dropped]
                run.orders -= len(dropped)
    interchange_repo.register(conn, new_rows)
    for key in keys:
        close = run.closes.pop(key, None)
        if close is not None:
            settle_close(close, run)


def take_over_reused(conn: Connection, msg: dict[str, Any], partners: PartnerDirectory) -> list[str]:
    """Point the control numbers this message reuses at it, so processing reads them as new."""
    from gateway.formats import detect, get_parser
    from gateway.formats.x12 import X12Parser

    body = message_repo.body(conn, msg["id"])
    digests: dict[str, str] = {}
    if body:
        try:
            fmt = msg["format"] or detect(body[:4096])
            # Read as processing reads it: the partner's profile decides the envelope repairs.
            parser = X12Parser(lenient=partners.x12_lenient(msg["partner"])) if fmt == "x12" else get_parser(fmt)
            for ev in parser.parse(io.BytesIO(body), name="reprocess"):
                if isinstance(ev, InterchangeClosed) and ev.complete and ev.envelope.interchange_key:
                    digests[ev.envelope.interchange_key] = ev.digest
        except (InputRejected, GatewayError, KeyError):
            digests = {}
    rows = interchange_repo.known(conn, sorted(digests)).values()
    keys = sorted(r.key for r in rows if r.message_id != msg["id"] and r.digest != digests[r.key])
    if not keys:
        raise GatewayError(f"message {msg['id'][:8]} reuses no interchange control number; nothing to accept")
    interchange_repo.take_over(conn, keys, msg["id"])
    return keys
