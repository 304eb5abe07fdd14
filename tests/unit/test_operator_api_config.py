"""intake.operator_api: off unless configured, its token read from the environment and checked
at start-up (`gateway config check`), never written in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import check_connectors
from gateway.config import load_config
from gateway.errors import ConfigError


def config(tmp_path: Path, api: str) -> Path:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"store:\n  url: sqlite:///{tmp_path}/g.db\nintake:\n  port: 0\n{api}")
    return cfg


def test_the_token_must_be_set_and_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(config(tmp_path, "  operator_api: {token_env: GW_TEST_OPERATOR_TOKEN}\n"))
    monkeypatch.delenv("GW_TEST_OPERATOR_TOKEN", raising=False)
    assert any("GW_TEST_OPERATOR_TOKEN is not set" in p for p in check_connectors(cfg))
    monkeypatch.setenv("GW_TEST_OPERATOR_TOKEN", "short")
    assert any("too short" in p for p in check_connectors(cfg))
    monkeypatch.setenv("GW_TEST_OPERATOR_TOKEN", "t" * 24)
    assert check_connectors(cfg) == []
    assert cfg.intake is not None and cfg.intake.operator_api is not None
    assert cfg.intake.operator_api.token() == b"t" * 24


def test_off_unless_configured_and_the_name_is_a_variable_name(tmp_path: Path) -> None:
    cfg = load_config(config(tmp_path, ""))
    assert cfg.intake is not None and cfg.intake.operator_api is None
    with pytest.raises(ConfigError) as err:
        load_config(config(tmp_path, "  operator_api: {token_env: 'my token value'}\n"))
    assert f"{tmp_path / 'gateway.yaml'}:5" in str(err.value)
