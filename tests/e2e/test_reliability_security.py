"""Reliability security rows S1-S4 from the outside (more S2, SSRF, in
tests/unit/test_http_network.py against real sockets: DNS rebinding, redirects): the CLI in a subprocess, real files, a
loopback fake ERP, and for S3 a real PostgreSQL whose URL carries a password.

S1: configuration and message values never become SQL text. S3: canary secrets never
appear in logs, `gateway config check` output, error messages or what the operator commands
show. S4: canary PII in the orders never appears in a log record at INFO or above, through
the whole pipeline including its failure paths.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, gateway_cmd
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import file_with_orders, interchange

pytestmark = pytest.mark.slow

INJECTION = "x'); DROP TABLE orders;--"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASHPOINT"}
    full.update(env or {})
    full.setdefault("COLUMNS", "400")
    return subprocess.run(gateway_cmd(*args), cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


# -- S1 ----------------------------------------------------------------------------------------


def test_s1_sql_in_configuration_and_data_stays_data(tmp_path: Path) -> None:
    """reliability S1: a source, a connector and a partner named `x'); DROP TABLE orders;--`,
    and a PO number carrying the same text, go through `gateway run`; every value is stored and
    shown literally and the orders table is still there (nothing reached SQL text)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with FakeERP() as erp:
        cfg = tmp_path / "gateway.yaml"
        cfg.write_text(
            f"""\
store:
  url: sqlite:///{tmp_path / 'gateway.db'}
sources:
  - type: folder
    name: "{INJECTION}"
    path: {inbox}
    archive: {tmp_path / 'archive'}
    poll_seconds: 0.2
    stable_seconds: 0
connectors:
  - type: http_json
    name: "{INJECTION}"
    url: {erp.url}
    allow_private_targets: true
    reference: id
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
"""
        )
        checked = cli("config", "check", "--config", str(cfg))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        po = "PO-1';DROP TABLE orders;--"
        (inbox / "po.edi").write_bytes(file_with_orders([po, "PO-2"]))
        done = cli("run", "--once", "--for", "30", "--config", str(cfg))
        assert done.returncode == 0, done.stderr
        assert sorted(o["body"]["po_number"] for o in erp.orders) == sorted([po, "PO-2"])
    orders = cli("orders", "--config", str(cfg))
    assert orders.returncode == 0, orders.stderr
    assert orders.stdout.count("dispatched") == 2
    shown = cli("show", po, "--config", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert po in shown.stdout and INJECTION in shown.stdout  # the connector's name, literally
    listed = cli("messages", "--config", str(cfg))
    assert listed.returncode == 0 and INJECTION in listed.stdout


def test_s1_no_sql_is_built_from_strings_in_the_gateway() -> None:
    """reliability S1: ruff's S608 (SQL built by string formatting) finds nothing in the gateway
    and its connectors (CI runs the same rule set)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "S608", "--no-cache", "gateway", "connectors"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"S"' in (ROOT / "pyproject.toml").read_text()  # the S rules are selected for CI


# -- S2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]:9/orders", "IPv4-mapped"),
        ("http://127.0.0.1:9/orders", "loopback"),
        ("http://10.1.2.3/orders", "private"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_s2_an_internal_connector_url_is_refused_by_config_check_and_run(tmp_path: Path, url: str, why: str) -> None:
    """reliability S2 (more in tests/unit/test_http_network.py): a connector URL naming the
    metadata service, loopback (also IPv4-mapped), a private network or another scheme is
    refused when the configuration is loaded, by `config check` and by `gateway run`, unless
    `allow_private_targets` is set."""
    (tmp_path / "inbox").mkdir()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""store:
  url: sqlite:///{tmp_path / 'gateway.db'}
sources:
  - type: folder
    name: inbox
    path: {tmp_path / 'inbox'}
connectors:
  - type: http_json
    name: erp
    url: "{url}"
"""
    )
    for args in (("config", "check"), ("run", "--once", "--for", "5")):
        out = cli(*args, "--config", str(cfg))
        assert out.returncode != 0, out.stdout
        assert why in out.stdout + out.stderr and "Traceback" not in out.stderr


# -- S3 ----------------------------------------------------------------------------------------

CANARY_PG = "Canary-PG-pass-7f3a"
CANARY_TOKEN = "Canary-Token-91bd55e0"
CANARY_WEBHOOK = "Canary-Hook-c0ffee42"


def test_s3_canary_secrets_never_shown(tmp_path: Path, pg_url: str) -> None:
    """reliability S3 (and issue 14 #4): the store password, an ERP token and a webhook secret
    come from the environment. They appear nowhere in `config check` (correct and broken
    configuration), the DEBUG log of a run where the ERP refuses the token and echoes it, the
    dead letters, `gateway show`, or the error of a store that cannot be reached."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret_url = pg_url.replace("postgres@", "postgres:${env:PG_PASSWORD}@")
    assert secret_url != pg_url
    env = {"PG_PASSWORD": CANARY_PG, "ERP_TOKEN": f"Bearer {CANARY_TOKEN}", "SHOP_SECRET": CANARY_WEBHOOK}
    with FakeERP() as erp:
        erp.script(*[Scripted(401, body={"error": f"token {CANARY_TOKEN} is not valid", "seen": f"Bearer {CANARY_TOKEN}"})] * 3)

        def config(store_url: str, extra: str = "") -> Path:
            cfg = tmp_path / "gateway.yaml"
            cfg.write_text(
                f"""\
store:
  url: {store_url}
log_level: DEBUG
sources:
  - type: folder
    name: inbox
    path: {inbox}
    archive: {tmp_path / 'archive'}
    poll_seconds: 0.2
    stable_seconds: 0
connectors:
  - type: http_json
    name: erp
    url: {erp.url}
    allow_private_targets: true
    reference: id
    secret_headers: {{Authorization: "${{env:ERP_TOKEN}}"}}
    retry: {{max_attempts: 2, base_seconds: 0.05, cap_seconds: 0.1}}
intake:
  host: 127.0.0.1
  port: 0
  stores:
    - name: shop
      platform: shopify
      secrets: ["${{env:SHOP_SECRET}}"]
{extra}"""
            )
            return cfg

        cfg = config(secret_url)
        outputs: dict[str, str] = {}
        checked = cli("config", "check", "--config", str(cfg), env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        outputs["config check"] = checked.stdout + checked.stderr
        (inbox / "po.edi").write_bytes(file_with_orders(["PO-S3"]))
        run = cli("run", "--once", "--for", "30", "--config", str(cfg), env=env)
        assert run.returncode == 0, run.stderr
        outputs["run (DEBUG log)"] = run.stdout + run.stderr
        assert [r.headers.get("authorization") for r in erp.requests][:1] == [f"Bearer {CANARY_TOKEN}"]  # it was used
        for args in (("dead-letters",), ("show", "PO-S3"), ("orders",), ("messages",)):
            out = cli(*args, "--config", str(cfg), env=env)
            assert out.returncode == 0, out.stderr
            outputs[" ".join(args)] = out.stdout + out.stderr
        assert "401" in outputs["dead-letters"]

    broken = config(secret_url, extra="unknown_key: 1\n")
    out = cli("config", "check", "--config", str(broken), env=env)
    assert out.returncode != 0
    outputs["config check (broken)"] = out.stdout + out.stderr
    unreachable = config(re.sub(r"@([^:/@]+):\d+/", r"@\1:9/", secret_url, count=1))  # whatever port the test server has
    out = cli("orders", "--config", str(unreachable), env=env)
    assert out.returncode != 0
    outputs["orders (store unreachable)"] = out.stdout + out.stderr
    for what, text in outputs.items():
        for canary in (CANARY_PG, CANARY_TOKEN, CANARY_WEBHOOK):
            assert canary not in text, f"{canary} shown by {what}:\n{text[-3000:]}"


# -- S4 ----------------------------------------------------------------------------------------

PII = {
    "name": "Jane Canaryperson",
    "street": "77 Canary Wharf Lane",
    "email": "jane.canary7731@acme-retail.example",
    "phone": "555-0177-3141",
}


def pii_po(po: str, st: str, qty: str = "2") -> list[str]:
    body = [
        f"ST*850*{st}",
        f"BEG*00*SA*{po}**20261127",
        f"PER*BD*{PII['name']}*TE*{PII['phone']}*EM*{PII['email']}",
        f"N1*ST*{PII['name']}*92*S001",
        f"N3*{PII['street']}",
        "N4*Springfield*IL*62704*US",
        f"PO1*1*{qty}*EA*9.99*PE*VP*SKU-1",
        "CTT*1",
    ]
    body.append(f"SE*{len(body) + 1}*{st}")
    return body


LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def test_s4_canary_pii_never_in_log_records_at_info_or_above(tmp_path: Path) -> None:
    """reliability S4: orders carrying a canary name, street, e-mail and phone go through the
    whole pipeline with DEBUG logging on: one delivered after a 503, one refused by the ERP (422
    echoing the e-mail), one quarantined by validation (quantity 0), one duplicate file. No log
    record at INFO or above contains any of the canaries (the orders do reach the ERP)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with FakeERP() as erp:
        erp.script(Scripted(503, body={"error": f"busy with {PII['name']}"}), Scripted(422, body={"error": f"customer {PII['email']} ({PII['name']}) unknown"}))
        cfg = tmp_path / "gateway.yaml"
        cfg.write_text(
            f"""\
store:
  url: sqlite:///{tmp_path / 'gateway.db'}
log_level: DEBUG
sources:
  - type: folder
    name: inbox
    path: {inbox}
    archive: {tmp_path / 'archive'}
    failed: {tmp_path / 'failed'}
    poll_seconds: 0.2
    stable_seconds: 0
connectors:
  - type: http_json
    name: erp
    url: {erp.url}
    allow_private_targets: true
    reference: id
    retry: {{max_attempts: 3, base_seconds: 0.05, cap_seconds: 0.1}}
"""
        )
        good = interchange([pii_po("PO-S4A", "0001"), pii_po("PO-S4B", "0002"), pii_po("PO-S4Q", "0003", qty="0")], icn="000000401").encode()
        (inbox / "a.edi").write_bytes(good)
        run = cli("run", "--once", "--for", "30", "--config", str(cfg))
        assert run.returncode == 0, run.stderr
        (inbox / "again.edi").write_bytes(good)  # the same interchange again: a duplicate
        (inbox / "bad.edi").write_bytes(b"ISA*00*garbage " + PII["name"].encode() + b"~")
        again = cli("run", "--once", "--for", "30", "--config", str(cfg))
        assert again.returncode == 0, again.stderr
        delivered = [o["body"] for o in erp.orders]
    assert len(delivered) == 1 and PII["email"] in str(delivered)  # the PII did flow through
    records = [(m.group(1), line) for line in (run.stderr + again.stderr).splitlines() if (m := LEVEL.match(line))]
    assert any(level == "DEBUG" for level, _ in records)  # the whole log was captured
    loud = [line for level, line in records if level != "DEBUG"]
    assert loud, "no INFO-or-above records: the test would prove nothing"
    for line in loud:
        for what, value in PII.items():
            assert value not in line, f"the canary {what} is in a log record: {line}"
