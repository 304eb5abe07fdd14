"""Telling teams that orders wait for them (`exceptions.teams`, gateway.teams).

One pass (`Notifier.run`, a scheduled job of `gateway run` and a step of `gateway run --once`):

1. announce: every held or quarantined order without an assignment gets one (the first
   matching team, or none), and each team is told once about all of its newly waiting
   orders: one e-mail per team listing them (through `smtp:`) and/or one signed JSON POST to
   its webhook;
2. remind: a team's orders that still wait past its `remind_after_minutes`, by the database
   clock, are claimed (reminded_at set) and the team is told again, once, grouped the same way.

A team is told of newly waiting orders when its `alerts` take ``quarantine`` and reminded when
they take ``waiting`` (both by default). The other alerts (dead letters, silent sources,
failing polls; gateway.processing.alerts) are sent through `notices` below, the same road.

The assignments and the notifications are written in one transaction, as outbox documents of
kind ``notice`` (`gateway.store.documents`): the one dispatcher sends them with its retry
policy, dead letters and replay (`gateway.acks.channels`: ``smtp`` for a stored e-mail,
``webhook:<team>`` for the POST). An order is announced once because its assignment row is
the claim, and
reminded once because the reminder is an UPDATE only one pass can win (the insert skips
orders another node's pass assigned meanwhile, on SQLite and PostgreSQL alike).

The webhook body is JSON: ``{"id", "team", "event": "waiting"|"reminder", "sent_at",
"orders": [{"id", "po_number", "partner", "channel", "state", "reason", "error",
"waiting_since"}]}``, signed in the ``X-Gateway-Signature: sha256=<hex>`` header (HMAC-SHA256
of the raw body with the team's webhook_secret). Verify it with a constant-time comparison.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError
from gateway.store import Store, add_events, documents
from gateway.store import assignments as assignment_repo
from gateway.store import tables as t
from gateway.store.db import db_now
from gateway.store.ids import by_prefix
from gateway.teams import TeamConfig, team_for

log = logging.getLogger(__name__)

__all__ = ["NOTICE", "Notifier", "NotifyStats", "notices", "render_email", "team_email"]

NOTICE = "notice"  # the outbox kind of a team notification
_BATCH = 500


@dataclass
class NotifyStats:
    assigned: int = 0
    notices: int = 0
    reminded: int = 0


class Notifier:
    """Assigns waiting orders to teams and queues the teams' notifications."""

    def __init__(self, store: Store, teams: Sequence[TeamConfig], smtp: Any = None):
        self.store = store
        self.teams = list(teams)
        self.by_name = {t.name: t for t in self.teams}
        self.smtp = smtp

    def run(self) -> NotifyStats:
        stats = NotifyStats()
        while True:
            n = self.announce(stats)
            if n < _BATCH:
                break
        self.remind(stats)
        return stats

    def announce(self, stats: NotifyStats | None = None) -> int:
        """Assign up to one batch of newly waiting orders and tell their teams; how many."""
        stats = stats if stats is not None else NotifyStats()
        with self.store.begin() as conn:
            rows = assignment_repo.unannounced(conn, _BATCH)
            if not rows:
                return 0
            now = db_now(conn)
            by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
            records, events = [], []
            teams = {r["id"]: team_for(self.teams, reason=r["reason"], partner=r["partner"], channel=r["channel"]) for r in rows}
            for r in rows:
                team = teams[r["id"]]
                told = team is not None and _tells(team, "quarantine")
                records.append({"order_id": r["id"], "team": team.name if team else None, "assigned_at": now, "notified_at": now if told else None})
            taken = assignment_repo.record(conn, records)  # the claim: another node's orders are skipped
            for r in rows:
                team = teams[r["id"]]
                if team is not None and r["id"] in taken:
                    told = _tells(team, "quarantine")
                    if told:
                        by_team[team.name].append(r)
                    events.append({"kind": "assigned", "order_id": r["id"], "at": now, "detail": f"assigned to team {team.name}" + ("; the team is told" if told else "")})
            docs = [d for name, orders in by_team.items() for d in self._notices(self.by_name[name], orders, "waiting", now)]
            documents.queue(conn, None, docs)
            add_events(conn, events)
        stats.assigned += len(rows)
        stats.notices += len(docs)
        return len(rows)

    def remind(self, stats: NotifyStats | None = None) -> int:
        """Tell each team again about its orders waiting past its limit; how many orders."""
        stats = stats if stats is not None else NotifyStats()
        total = 0
        for team in self.teams:
            if team.remind_after_minutes is None or not _tells(team, "waiting"):
                continue
            with self.store.begin() as conn:
                now = db_now(conn)
                due = assignment_repo.claim_reminders(conn, team.name, now - dt.timedelta(minutes=team.remind_after_minutes), now)
                if not due:
                    continue
                docs = self._notices(team, due, "reminder", now)
                documents.queue(conn, None, docs)
                add_events(conn, [{"kind": "reminded", "order_id": r["id"], "at": now, "detail": f"team {team.name} reminded: waiting over {team.remind_after_minutes:g} minute(s)"} for r in due])
            total += len(due)
            stats.notices += len(docs)
        stats.reminded += total
        return total

    def assign(self, order_id: str, *, to: str, by: str, team: str | None = None) -> dict[str, Any]:
        """Give a waiting order to a person (`gateway assign ID --to NAME --by NAME`), and to
        `team` when given (a configured team). Returns {id, po_number, team, assignee}."""
        who, person = " ".join(by.split())[:100], " ".join(to.split())[:100]
        if not who:
            raise GatewayError("say who you are (--by NAME): the order's history records who assigned it")
        if not person:
            raise GatewayError("say who takes the order (--to NAME)")
        if team is not None and team not in self.by_name:
            known = ", ".join(self.by_name) or "none are configured (exceptions.teams)"
            raise GatewayError(f"no team is called {team!r}; the teams are: {known}")
        with self.store.begin() as conn:
            row = by_prefix(conn, t.orders, order_id, "order", "gateway exceptions", "`gateway exceptions` lists the orders waiting for a person")
            if row["state"] not in ("held", "quarantined"):
                raise GatewayError(f"order {row['id'][:8]} (PO {row['po_number']}) is {row['state']}; only a held or quarantined order waits for a person")
            now = db_now(conn)
            if team is None and not assignment_repo.of_orders(conn, [row["id"]]):
                matched = team_for(self.teams, reason=row["reason"], partner=row["partner"], channel=row["channel"])
                team = matched.name if matched else None
            old = assignment_repo.assign_person(conn, row["id"], team=team, assignee=person, by=who, now=now)
            current = assignment_repo.of_orders(conn, [row["id"]])[row["id"]]
            was = f" (was {old['assignee']})" if old and old.get("assignee") else ""
            add_events(conn, [{"kind": "assigned", "order_id": row["id"], "message_id": row["message_id"], "at": now,
                               "detail": f"assigned to {person}{was}" + (f" of team {current['team']}" if current["team"] else "") + f" by {who}"}])
        return {"id": row["id"], "po_number": row["po_number"], "team": current["team"], "assignee": person}

    def _notices(self, team: TeamConfig, orders: list[dict[str, Any]], event: str, now: Any) -> list[documents.NewDocument]:
        body = {
            "id": str(uuid.uuid4()), "team": team.name, "event": event, "sent_at": now.isoformat(),
            "orders": [
                {"id": r["id"], "po_number": r["po_number"], "partner": r["partner"], "channel": r["channel"], "state": r["state"],
                 "reason": r["reason"], "error": r["error"], "waiting_since": r["created_at"].isoformat()}
                for r in orders
            ],
        }
        return notices(team, self.smtp, lambda smtp: render_email(team, orders, event, now, smtp), body)


def _tells(team: TeamConfig, kind: str) -> bool:
    """Whether the team takes alerts of `kind` and has a way to be told."""
    return kind in team.alerts and bool(team.notify.email or team.notify.webhook)


def notices(team: TeamConfig, smtp: Any, email: Callable[[Any], bytes], body: dict[str, Any]) -> list[documents.NewDocument]:
    """The outbox documents that tell `team`: the e-mail `email(smtp)` makes, to its addresses
    (held when there is no `smtp:` section), and `body` POSTed as JSON to its webhook."""
    out: list[documents.NewDocument] = []
    if team.notify.email:
        if smtp is None:
            out.append(documents.NewDocument(kind=NOTICE, partner=team.name, body=email(None), channel=None,
                                             held_reason="team notifications by e-mail need an smtp: section"))
        else:
            out.append(documents.NewDocument(kind=NOTICE, partner=team.name, body=email(smtp), channel="smtp"))
    if team.notify.webhook is not None:
        out.append(documents.NewDocument(kind=NOTICE, partner=team.name, body=json.dumps(body).encode(), channel=f"webhook:{team.name}"))
    return out


def team_email(team: TeamConfig, smtp: Any, subject: str, text: str, now: Any) -> bytes:
    """One e-mail to the team's addresses (stored whole; the dispatcher sends it as is)."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    from gateway.email_reply import make_message_id

    msg = EmailMessage()
    msg["From"] = smtp.from_address if smtp is not None else "gateway@localhost"
    msg["To"] = ", ".join(team.notify.email)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_message_id(f"notice-{team.name}-{uuid.uuid4()}", smtp.from_domain if smtp is not None else "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    return bytes(msg)


def render_email(team: TeamConfig, orders: list[dict[str, Any]], event: str, now: Any, smtp: Any) -> bytes:
    """One e-mail to the team listing the orders (stored whole; the dispatcher sends it as is)."""
    what = "still waiting" if event == "reminder" else "waiting"
    lead = (
        f"These orders have waited longer than {team.remind_after_minutes:g} minute(s):" if event == "reminder"
        else "These orders wait for a person:"
    )
    lines = [lead, ""]
    for r in orders:
        lines.append(f"- {r['id'][:8]}  PO {r['po_number'] or '-'}  {r['partner'] or '-'} ({r['channel']})  {r['state']}")
        lines.append(f"    {r['reason']}: {(r['error'] or '')[:300]}")
    lines += ["", "`gateway show ID` shows an order; `gateway exceptions --team " + team.name + "` lists the team's queue."]
    return team_email(team, smtp, f"[gateway] {len(orders)} order(s) {what} for team {team.name}", "\n".join(lines) + "\n", now)
