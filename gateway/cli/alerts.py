"""`gateway alerts`: the alerts raised for the teams, sent and pending (README "Alerts")."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _gateway, app, out


def _text(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@app.command()
def alerts(
    config: ConfigOpt = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only the alerts a team's rate limit holds back (sent with its next message).")] = False,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's alerts.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")] = 100,
    check: Annotated[bool, typer.Option("--check", help="Look for new alerts and send the messages due now (what `gateway run` does every alerts.check_seconds), then list.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per alert, for scripts.")] = False,
) -> None:
    """List recent alerts (dead letters, silent sources, failing polls) and whether each was sent
    to its team or waits for the team's rate limit."""
    from gateway.processing.alerts import alerter_for
    from gateway.store.alerts import listing

    gw = _gateway(config, existing=True)
    try:
        if check:
            stats = alerter_for(gw).run()
            if not as_json:
                out.print(f"{stats.raised} new alert(s), {stats.messages} message(s) queued, {stats.held_back} held back by a rate limit")
        rows = listing(gw.store, limit=limit, pending_only=pending, team=team)
    finally:
        gw.close()
    if as_json:
        for r in rows:
            sys.stdout.write(json.dumps({**r, "state": "sent" if r["sent_at"] else "pending"}, default=_text) + "\n")
        return
    table = Table(title=f"{len(rows)} {'pending ' if pending else ''}alert(s)")
    for col in ("id", "team", "kind", "raised", "state", "what"):
        table.add_column(col)
    for r in rows:
        state = f"sent {str(r['sent_at'])[:19]}" if r["sent_at"] else "pending"
        table.add_row(str(r["id"]), r["team"], r["kind"], str(r["created_at"])[:19], state, r["summary"])
    out.print(table)
