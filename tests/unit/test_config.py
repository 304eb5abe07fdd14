from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gateway.yaml"
    p.write_text(text)
    return p


def test_example_configuration_loads_as_it_is():
    cfg = load_config(ROOT / "config" / "gateway.yaml", env={})
    assert cfg.store.url == f"sqlite:///{ROOT / 'var' / 'gateway.db'}"
    assert cfg.sources[0].path == ROOT / "var" / "inbox"
    assert cfg.sources[0].archive == ROOT / "var" / "archive"
    assert [c.name for c in cfg.connectors] == ["outbox"]


def test_every_problem_is_reported_at_once_with_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
sources:
  - type: folder
    name: a
    path: inbox
    pol_seconds: 3
connectors:
  - type: file
    name: out
    path: out
    retyr: {}
dispatchh: {}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    problems = exc.value.problems
    assert len(problems) == 3
    assert f"{path}:5: sources[0].pol_seconds: unknown key 'pol_seconds'; did you mean 'poll_seconds'?" in problems
    assert any(p.startswith(f"{path}:10: connectors[0].retyr") and "'retry'" in p for p in problems)
    assert any(p.startswith(f"{path}:11: dispatchh") and "'dispatch'" in p for p in problems)


def test_secrets_come_only_from_the_environment(tmp_path):
    text = """\
connectors:
  - type: http_json
    name: erp
    url: https://erp.example.com/orders
    headers:
      Authorization: Bearer literal-token
    secret_headers:
      X-Api-Key: written-in-the-file
"""
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    joined = "\n".join(exc.value.problems)
    assert "looks like a credential" in joined
    assert "secrets may not be written in the configuration" in joined

    ok = """\
connectors:
  - type: http_json
    name: erp
    url: https://erp.example.com/orders
    secret_headers:
      Authorization: ${env:ERP_AUTH}
"""
    cfg = load_config(write(tmp_path, ok), env={"ERP_AUTH": "Bearer s3cret-canary"})
    header = cfg.connectors[0].secret_headers["Authorization"]
    assert header.get_secret_value() == "Bearer s3cret-canary"
    assert "s3cret-canary" not in repr(cfg) and "s3cret-canary" not in str(cfg.model_dump())


def test_missing_environment_variable_names_the_variable(tmp_path):
    text = "store:\n  url: ${env:GW_DB_URL}\n"
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    assert exc.value.problems == [f"{tmp_path / 'gateway.yaml'}:2: store.url: environment variable GW_DB_URL is not set (export GW_DB_URL=... before starting the gateway)"]
    cfg = load_config(write(tmp_path, "store:\n  url: ${env:GW_DB_URL:-sqlite:///x.db}\n"), env={})
    assert cfg.store.url == f"sqlite:///{tmp_path / 'x.db'}"


def test_duplicate_names_and_unknown_partner_connector(tmp_path):
    text = """\
connectors:
  - {type: file, name: out, path: a}
  - {type: file, name: out, path: b}
partners:
  - {name: acme, connectors: [outt]}
"""
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    joined = "\n".join(exc.value.problems)
    assert "name 'out' is used twice" in joined
    assert "no connector named 'outt'; did you mean 'out'?" in joined


def test_bad_payload_mapping_stops_start_up(tmp_path):
    (tmp_path / "bad.jmespath").write_text("{ po: po_number, ")
    text = "connectors:\n  - {type: file, name: out, path: o, payload: bad.jmespath}\n"
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    assert "not valid JMESPath" in exc.value.problems[0]


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2"), env={})
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"), env={})


def test_intake_webhook_secrets_only_from_the_environment(tmp_path):
    text = """\
connectors:
  - {type: file, name: out, path: o}
intake:
  stores:
    - {name: shop, platform: shopify, secrets: ["literal-secret-0123456789"], connectors: [outt]}
"""
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    joined = "\n".join(exc.value.problems)
    assert "intake.stores[0].secrets[0]: secrets may not be written" in joined
    assert "no connector named 'outt'; did you mean 'out'?" in joined
    ok = text.replace('["literal-secret-0123456789"]', '["${env:SHOP_SECRET}"]').replace("[outt]", "[out]")
    cfg = load_config(write(tmp_path, ok), env={"SHOP_SECRET": "s" * 32})
    assert cfg.intake is not None and cfg.intake.stores[0].secrets[0].get_secret_value() == "s" * 32
