"""Alerts to the teams beyond waiting orders: dead letters, silent sources, failing polls.

One pass (`Alerter.run`, a scheduled job of `gateway run` every `alerts.check_seconds`, and
`gateway alerts --check`):

1. raise: each new dead letter (an order delivery or a document that gave up; team notices
   are left out, or a dead notice would alert about itself), each source in `alerts.sources`
   that sent nothing for its `silent_after_minutes` (by the database clock) and each source
   whose polls failed `alerts.poll_errors_after` times in a row becomes an alert of the first
   team that takes its kind (gateway.teams.team_for_alert). A silent source or a failing
   poll is an episode: alerted once when it begins and once more ("recovered") when the
   source sends again or a poll succeeds;
2. send: the alerts each team has pending are grouped per kind into one message (how many,
   and the first `alerts.max_items`), at most one per team and kind in the team's
   `min_interval_minutes`; what comes meanwhile waits and goes in the next message.

Messages are outbox documents of kind ``notice`` (gateway.processing.notify.notices), sent
by the one dispatcher like every team notification: e-mail through `smtp:` and a signed
JSON POST to the team's webhook. The webhook body is ``{"id", "team", "event": "alert",
"kind", "sent_at", "count", "items": [...], "more"}``; an item has ``event`` (dead_letter,
silent, poll_errors or recovered) and what it is about. Every claim is made in the store
(gateway.store.alerts), so several nodes never send the same alert twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.processing.notify import notices, team_email
from gateway.store import Store, documents
from gateway.store import alerts as repo
from gateway.store.db import db_now
from gateway.teams import AlertsConfig, TeamConfig, team_for_alert

log = logging.getLogger(__name__)

__all__ = ["AlertStats", "Alerter", "PollHealth", "alerter_for", "record_poll"]

_KIND_TEXT = {"dead_letter": "dead letter(s)", "partner_ack": "document(s) a partner rejected or did not acknowledge", "silent_source": "source alert(s)", "poll_errors": "poll alert(s)"}


@dataclass
class AlertStats:
    raised: int = 0  # new alerts
    messages: int = 0  # grouped messages queued (one per team and kind)
    held_back: int = 0  # (team, kind) pairs with alerts waiting for the rate limit


def record_poll(store: Store, source: str, error: str | None) -> None:
    """Record one poll of `source` (error None: it succeeded), for the poll_errors alert and
    `/metrics`. A store that does not answer is logged, never raised: the poll's own error wins."""
    try:
        with store.begin() as conn:
            repo.record_poll(conn, source, db_now(conn), error)
    except Exception as exc:  # recording health must never break the poll job
        log.debug("could not record the poll of %s: %s", source, exc)


class PollHealth:
    """Records each source's polls for one running service: every failure, and a success when
    the previous poll failed or `every` seconds passed (a source polled every 200 ms must not
    write as often)."""

    def __init__(self, store: Store, every: float = 30.0):
        self.store = store
        self.every = every
        self._last: dict[str, tuple[float, bool]] = {}  # source -> (monotonic time written, failed)
        self._lock = threading.Lock()

    def ok(self, source: str) -> None:
        now = time.monotonic()
        with self._lock:
            at, failed = self._last.get(source, (-self.every, True))
            if not failed and now - at < self.every:
                return
            self._last[source] = (now, False)
        record_poll(self.store, source, None)

    def failed(self, source: str, exc: BaseException) -> None:
        with self._lock:
            self._last[source] = (time.monotonic(), True)
        record_poll(self.store, source, f"{type(exc).__name__}: {exc}")


def alerter_for(gw: Any) -> Alerter:
    """The alerter of a gateway (gateway.app.Gateway): its store, teams, alerts and sources."""
    cfg = gw.config
    return Alerter(gw.store, cfg.exceptions.teams, cfg.alerts, sources=[s.name for s in cfg.sources], smtp=cfg.smtp)


class Alerter:
    """Raises alerts and sends the grouped, rate-limited messages."""

    def __init__(self, store: Store, teams: Sequence[TeamConfig], config: AlertsConfig, *, sources: Sequence[str] = (), smtp: Any = None):
        self.store = store
        # Only a team that can be told takes alerts; the next matching one does otherwise.
        self.teams = [t for t in teams if t.notify.email or t.notify.webhook]
        self.by_name = {t.name: t for t in self.teams}
        self.config = config
        self.sources = list(sources)  # polled sources, watched for failing polls
        self.smtp = smtp

    def run(self) -> AlertStats:
        stats = AlertStats()
        with self.store.begin() as conn:
            now = db_now(conn)
            stats.raised += self._dead_letters(conn, now)
            stats.raised += self._partner_acks(conn, now)
            stats.raised += self._sources(conn, now)
        self.send(stats)
        return stats

    def _dead_letters(self, conn: Any, now: dt.datetime) -> int:
        rows = repo.dead_letters(conn)
        keyed = {f"outbox:{r['id']}:{r['replays']}": r for r in rows}  # a replay that dies again alerts again
        known = repo.known_keys(conn, "dead_letter", keyed)
        new = []
        for key, r in keyed.items():
            if key in known:
                continue
            team = team_for_alert(self.teams, "dead_letter", partner=r["partner"], channel=r["channel"])
            if team is None:
                continue
            what = f"order PO {r['po_number'] or '-'} to {r['connector']}" if r["kind"] == "order" else f"{documents.describe(r['kind'], None, r['partner'])} by {r['connector']}"
            detail = {
                "event": "dead_letter", "outbox_id": r["id"], "kind": r["kind"], "connector": r["connector"], "partner": r["partner"],
                "channel": r["channel"], "po_number": r["po_number"], "error": (r["last_error"] or "")[:300], "dead_at": _iso(r["updated_at"]),
            }
            summary = f"dead letter {'ack:' if r['kind'] != 'order' else ''}{r['id']}: {what}: {(r['last_error'] or 'gave up')[:200]}"
            new.append({"team": team.name, "kind": "dead_letter", "key": key, "summary": summary, "detail": detail, "created_at": now})
        return repo.raise_alerts(conn, new)

    def _partner_acks(self, conn: Any, now: dt.datetime) -> int:
        """A document the partner rejected (997/999 R, CONTRL 4) or left unacknowledged past its
        `expect_within_minutes`: the partner will not act on it as sent (issue 12)."""
        rows = repo.partner_ack_problems(conn)
        keyed = {f"ack:{r['id']}:{'rejected' if r['ack_status'] == 'rejected' else 'overdue'}": r for r in rows}
        known = repo.known_keys(conn, "partner_ack", keyed)
        new = []
        for key, r in keyed.items():
            if key in known:
                continue
            team = team_for_alert(self.teams, "partner_ack", partner=r["partner"])
            if team is None:
                continue
            what = f"{documents.describe(r['kind'], r['control_number'], r['partner'])}"
            rejected = r["ack_status"] == "rejected"
            why = f"rejected by the partner: {(r['ack_errors'] or 'no reason given')[:200]}" if rejected else "not acknowledged in time"
            detail = {"event": "rejected" if rejected else "overdue", "outbox_id": r["id"], "kind": r["kind"], "partner": r["partner"],
                      "control_number": r["control_number"], "errors": (r["ack_errors"] or "")[:300], "sent_at": _iso(r["updated_at"])}  # fmt: skip
            new.append({"team": team.name, "kind": "partner_ack", "key": key, "summary": f"{what} (outbox {r['id']}): {why}", "detail": detail, "created_at": now})
        return repo.raise_alerts(conn, new)

    def _sources(self, conn: Any, now: dt.datetime) -> int:
        silent_limits = {name: w.silent_after_minutes for name, w in self.config.sources.items()}
        health = repo.watch(conn, [*silent_limits, *self.sources], now)
        last = repo.last_messages(conn, list(silent_limits))
        episodes = repo.open_episodes(conn)
        new: list[dict[str, Any]] = []
        for name, minutes in silent_limits.items():
            seen = last.get(name)
            base = seen if seen is not None else _aware(health[name]["watched_since"])
            key = f"silent:{name}"
            if now - base > dt.timedelta(minutes=minutes):
                if key not in episodes and repo.open_episode(conn, key, base, now):
                    never = " (nothing yet since it is watched)" if seen is None else ""
                    summary = f"source {name} sent nothing for {_ago(now - base)}{never}; expected within {minutes:g} minute(s)"
                    new += self._raise("silent_source", name, f"{key}:{base.isoformat()}", summary,
                                       {"event": "silent", "source": name, "last_message_at": _iso(seen), "silent_after_minutes": minutes}, now)
            elif key in episodes:
                since = repo.close_episode(conn, key)
                if since is not None:
                    summary = f"source {name} sends again ({_iso(seen)}) after a silence since {_iso(since)}"
                    new += self._raise("silent_source", name, f"recovered:{key}:{since.isoformat()}", summary,
                                       {"event": "recovered", "source": name, "last_message_at": _iso(seen), "silent_since": _iso(since)}, now)
        for name in self.sources:
            h = health.get(name)
            if h is None:
                continue
            key = f"poll:{name}"
            if h["errors"] >= self.config.poll_errors_after:
                since = _aware(h["last_error_at"] or now)
                if key not in episodes and repo.open_episode(conn, key, since, now):
                    summary = f"source {name}: {h['errors']} poll(s) in a row failed: {(h['last_error'] or '')[:200]}"
                    new += self._raise("poll_errors", name, f"{key}:{since.isoformat()}", summary,
                                       {"event": "poll_errors", "source": name, "errors": h["errors"], "error": (h["last_error"] or "")[:300]}, now)
            elif h["errors"] == 0 and key in episodes:
                began = repo.close_episode(conn, key)
                if began is not None:
                    summary = f"source {name} polls again ({_iso(h['last_ok_at'])}) after failing since {_iso(began)}"
                    new += self._raise("poll_errors", name, f"recovered:{key}:{began.isoformat()}", summary,
                                       {"event": "recovered", "source": name, "failing_since": _iso(began)}, now)
        return repo.raise_alerts(conn, new)

    def _raise(self, kind: str, source: str, key: str, summary: str, detail: dict[str, Any], now: dt.datetime) -> list[dict[str, Any]]:
        team = team_for_alert(self.teams, kind, source=source)
        if team is None:
            log.warning("alert not sent, no team takes %s alerts for source %s: %s", kind, source, summary)
            return []
        log.warning("alert for team %s: %s", team.name, summary)
        return [{"team": team.name, "kind": kind, "key": key, "summary": summary, "detail": detail, "created_at": now}]

    def send(self, stats: AlertStats | None = None) -> AlertStats:
        """Queue one message per team and kind with pending alerts, where the rate limit allows."""
        stats = stats if stats is not None else AlertStats()
        with self.store.engine.connect() as conn:
            pairs = repo.pending_teams(conn)
        for name, kind in pairs:
            team = self.by_name.get(name)
            if team is None:  # the team is gone from the configuration (or cannot be told): they wait
                continue
            with self.store.begin() as conn:
                now = db_now(conn)
                items = repo.pending(conn, name, kind)
                if not items:
                    continue
                if not repo.claim_send(conn, name, kind, now, dt.timedelta(minutes=team.min_interval_minutes)):
                    stats.held_back += 1
                    continue
                taken = repo.mark_sent(conn, [i["id"] for i in items], now)  # another node's items are not ours
                items = [i for i in items if i["id"] in taken]
                if not items:
                    continue
                documents.queue(conn, None, self._message(team, kind, items, now))
            stats.messages += 1
        return stats

    def _message(self, team: TeamConfig, kind: str, items: list[dict[str, Any]], now: dt.datetime) -> list[documents.NewDocument]:
        shown = items[: self.config.max_items]
        more = len(items) - len(shown)
        events = Counter(str((i["detail"] or {}).get("event", kind)) for i in items)
        recovered = events.pop("recovered", 0)
        parts = [f"{len(items) - recovered} {_KIND_TEXT.get(kind, kind)}"] if len(items) > recovered else []
        if recovered:
            parts.append(f"{recovered} recovered")
        subject = f"[gateway] {', '.join(parts)} for team {team.name}"
        lines = [f"{len(items)} alert(s) of kind {kind}:", ""] + [f"- {i['summary']}" for i in shown]
        if more:
            lines.append(f"... and {more} more")
        lines += ["", f"`gateway alerts --team {team.name}` lists them; `gateway dead-letters` and `gateway replay` handle dead letters."]
        body = {
            "id": str(uuid.uuid4()), "team": team.name, "event": "alert", "kind": kind, "sent_at": now.isoformat(),
            "count": len(items), "items": [i["detail"] or {"summary": i["summary"]} for i in shown], "more": more,
        }
        text = "\n".join(lines) + "\n"
        return notices(team, self.smtp, lambda smtp: team_email(team, smtp, subject, text, now), body)


def _aware(value: Any) -> dt.datetime:
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _iso(value: Any) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _ago(delta: dt.timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} minute(s)" if minutes < 120 else f"{minutes / 60:.1f} hour(s)"
