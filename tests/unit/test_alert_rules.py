"""deploy/prometheus/alerts.yml and deploy/grafana/gateway-dashboard.json use only metrics that
`GET /metrics` exports (issue 12): a renamed gauge must not leave a rule that never fires."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gateway.intake.metrics import exposition

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"\bgateway_[a-z0-9_]+")


def _exported() -> set[str]:
    snapshot = {
        "messages": {}, "orders": {}, "outbox": [], "oldest_due_seconds": 0.0, "exceptions": [],
        "alerting": {"orders_by": [], "outbox_depth": 0, "outbox_oldest_seconds": 0.0, "dead_letters": {}, "source_age": {},
                     "poll_errors": {}, "silent": set(), "alerts_pending": {}, "stage_latency": {}},
    }
    return {line.split()[2] for line in exposition(snapshot, {}).splitlines() if line.startswith("# TYPE ")}


def test_rules_and_dashboard_use_exported_metrics() -> None:
    exported = _exported()
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert {"GatewayDeadLetters", "GatewayOutboxStuck", "GatewaySourceSilent", "GatewayPollErrors"} <= {r["alert"] for g in rules["groups"] for r in g["rules"]}
    dashboard = json.loads((ROOT / "deploy/grafana/gateway-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for e in exprs for name in _NAME.findall(e)}
    assert used - exported == set()
    # every family meant for alerting is on the dashboard or in a rule
    assert {"gateway_orders_by_partner", "gateway_outbox_depth", "gateway_dead_letters", "gateway_source_poll_errors", "gateway_source_last_message_age_seconds"} <= used
