"""A connector from another package, installed with pip, configured and delivered through.

Issue 9 ("One plugin registry"): the entry-point path for third-party connectors did not work
(`type: acme_erp` was refused because the configuration imported every plugin into closed
unions). The test builds a real distribution with an `order_gateway.connectors` entry point,
installs it with pip into a folder on the gateway's path, and drives the CLI as an operator
would: `gateway config check`, `gateway config schema`, then 200 orders through `gateway run
--once` into the package's connector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.helpers import gateway_cmd
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow

PACKAGE = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "acme-gateway-erp"
        version = "1.0"

        [project.entry-points."order_gateway.connectors"]
        acme_erp = "acme_gateway_erp.connector:AcmeConnector"

        [tool.setuptools]
        packages = ["acme_gateway_erp"]
        """,
    "acme_gateway_erp/__init__.py": "",
    "acme_gateway_erp/connector.py": """\
        \"\"\"Acme's ERP takes orders as lines in a ledger file (a stand-in for its API).\"\"\"
        from __future__ import annotations

        import json
        from pathlib import Path
        from typing import Literal

        from pydantic import Field

        from gateway.connector import Capabilities, Delivery, Receipt
        from gateway.errors import PermanentError
        from gateway.plugins import PathFixer, TargetConfigBase


        class AcmeConfig(TargetConfigBase):
            type: Literal["acme_erp"] = "acme_erp"
            ledger: Path = Field(description="The ledger file orders are appended to.")
            company: str = Field(description="Acme company code.")

            def resolve_paths(self, fix: PathFixer) -> None:
                super().resolve_paths(fix)
                self.ledger = fix(self.ledger) or self.ledger


        class AcmeConnector:
            config_model = AcmeConfig
            capabilities = Capabilities(idempotency_key=True, idempotent=True)

            def __init__(self, cfg: AcmeConfig) -> None:
                self.name = cfg.name
                self.cfg = cfg

            def send(self, delivery: Delivery) -> Receipt:
                if not delivery.order.get("lines"):
                    raise PermanentError("an order without lines")
                with open(self.cfg.ledger, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": delivery.idempotency_key, "company": self.cfg.company,
                                         "po": delivery.order["po_number"]}) + "\\n")
                return Receipt(status=200, reference=delivery.order["po_number"])

            def close(self) -> None:
                pass
        """,
}


def _install(tmp: Path) -> Path:
    src = tmp / "acme-src"
    for name, text in PACKAGE.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    site = tmp / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert list(site.glob("acme_gateway_erp-1.0.dist-info/entry_points.txt"))
    return site


def _cli(*args: str, site: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("GATEWAY_CRASHPOINT", None)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(gateway_cmd(*args), capture_output=True, text=True, timeout=120, env=env)


def test_an_installed_connector_is_configured_checked_and_delivers(tmp_path: Path) -> None:
    site = _install(tmp_path)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            store: {{url: "sqlite:///{tmp_path / 'gw.db'}"}}
            sources:
              - {{type: folder, name: inbox, path: {tmp_path / 'inbox'}, poll_seconds: 0.1, stable_seconds: 0}}
            connectors:
              - type: acme_erp
                name: acme
                ledger: ledger.jsonl
                company: "ACME-01"
            """
        )
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    # Without the package the type is unknown, said with the place and the known types.
    refused = _cli("config", "check", "--config", str(cfg), site=None)
    assert refused.returncode == 2
    assert f"{cfg}:5: connectors[0].type" in refused.stderr
    assert "unknown connector type 'acme_erp'" in refused.stderr and "http_json" in refused.stderr

    checked = _cli("config", "check", "--config", str(cfg), site=site)
    assert checked.returncode == 0, checked.stderr
    assert "1 connector(s)" in checked.stdout

    # A key the package's model does not know is refused with the model's own keys.
    typo = tmp_path / "typo.yaml"
    typo.write_text(cfg.read_text().replace("company:", "compnay:"))
    bad = _cli("config", "check", "--config", str(typo), site=site)
    assert bad.returncode == 2 and "unknown key 'compnay'; did you mean 'company'?" in bad.stderr

    schema = _cli("config", "schema", site=site)
    assert schema.returncode == 0, schema.stderr
    assert "acme_erp" in json.dumps(json.loads(schema.stdout))

    for i in range(200):
        (inbox / f"po{i:03}.edi").write_bytes(file_with_orders([f"ACME-{i:03}"], icn=f"{i + 1:09d}"))
    ran = _cli("run", "--once", "--config", str(cfg), site=site)
    assert ran.returncode == 0, ran.stderr
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["po"] for r in ledger) == [f"ACME-{i:03}" for i in range(200)]
    assert len({r["key"] for r in ledger}) == 200 and {r["company"] for r in ledger} == {"ACME-01"}
