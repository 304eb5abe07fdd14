"""`gateway config verify` (issue 11): each ERP/CRM connector logs in and checks its
permissions, writing nothing; a failure names the connector and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from gateway.cli import app
from tests.support.fake_erpnext import ERPNEXT_URL, FakeERPNext
from tests.support.fake_hubspot import TOKEN, FakeHubSpot
from tests.support.fake_odoo import ODOO_URL, FakeOdoo


def test_verify_checks_each_connector_without_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_ODOO_KEY", "odoo-key-1")
    monkeypatch.setenv("GW_ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    monkeypatch.setenv("GW_HUBSPOT_TOKEN", TOKEN)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'gw.db'}\nconnectors:\n"
        f"  - {{type: odoo, name: odoo, url: '{ODOO_URL}', database: prod, username: gateway, password_env: GW_ODOO_KEY}}\n"
        f"  - type: erpnext\n    name: erpnext\n    url: {ERPNEXT_URL}\n"
        "    auth: {type: api_key, header: Authorization, prefix: 'token ', value_env: GW_ERPNEXT_TOKEN}\n"
        "  - {type: hubspot, name: crm, auth: {type: bearer, token_env: GW_HUBSPOT_TOKEN}}\n"
        f"  - {{type: file, name: files, path: {tmp_path / 'out'}}}\n"
    )
    runner = CliRunner()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        odoo, erp, crm = FakeOdoo(mock), FakeERPNext(mock), FakeHubSpot(mock)
        done = runner.invoke(app, ["config", "verify", "--config", str(cfg)])
        assert done.exit_code == 0, done.output
        assert "odoo: ok: logged in to prod as gateway (uid 7); may create sale.order" in done.output
        assert "erpnext: ok: authenticated as gateway@example.com" in done.output
        assert "crm: ok: token accepted; deal property order_gateway_key has unique values" in done.output
        assert "files" not in done.output  # a file target has nothing to log in to
        assert odoo.orders() == [] and erp.orders() == [] and crm.deals() == []

        crm.unique_property = "something_else"
        odoo.key = "rotated"
        failed = runner.invoke(app, ["config", "verify", "crm", "odoo", "--config", str(cfg)])
        assert failed.exit_code == 1
        assert "crm: failed: " in failed.output and "must have unique values" in failed.output
        assert "odoo: failed: Odoo odoo refused the login of 'gateway'" in failed.output
        assert "erpnext" not in failed.output
