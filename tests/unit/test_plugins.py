"""The one plugin registry: type name -> config model and class, built-ins and entry points."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from connectors.registry import SOURCES, TARGETS
from gateway import plugins
from gateway.config import config_schema, load_config
from gateway.errors import ConfigError


@pytest.mark.parametrize(("kind", "table"), [("source", SOURCES), ("target", TARGETS)])
def test_every_builtin_names_its_own_type_and_loads(kind: plugins.Kind, table: dict[str, plugins.PluginSpec]) -> None:
    for name, spec in table.items():
        assert spec.type == name
        model = plugins.config_model(kind, name)
        assert typing.get_args(model.model_fields["type"].annotation) == (name,), f"{name}: type must be Literal[{name!r}]"
        assert plugins.plugin_class(kind, name).__name__


def test_an_unknown_source_type_is_located_with_did_you_mean(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text("sources:\n  - type: foldr\n    name: in\n    path: inbox\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{cfg}:2: sources[0].type: ")
    assert "unknown source type 'foldr'; did you mean 'folder'?" in problem


def test_problems_in_several_items_are_reported_together(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(
        "sources:\n"
        "  - {type: folder, name: a, path: x, pol_seconds: 1}\n"
        "  - {type: folder, name: b}\n"
        "connectors:\n"
        "  - {type: file, name: out}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    text = "\n".join(info.value.problems)
    assert f"{cfg}:2: sources[0].pol_seconds: unknown key 'pol_seconds'; did you mean 'poll_seconds'?" in text
    assert f"{cfg}:3: sources[1].path: Field required" in text
    assert f"{cfg}:5: connectors[0].path: Field required" in text


def test_a_type_missing_is_a_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text("connectors:\n  - {name: out, path: x}\n")
    with pytest.raises(ConfigError, match="every connector needs a 'type'"):
        load_config(cfg, env={})


def test_the_schema_lists_every_known_type() -> None:
    schema = json.dumps(config_schema())
    for name in [*SOURCES, *TARGETS]:
        assert f'"const": "{name}"' in schema or f'"{name}"' in schema


def test_loading_a_configuration_imports_only_the_types_it_names(tmp_path: Path) -> None:
    """A configuration with a folder and a file target never imports imap, sftp or http code."""
    cfg = tmp_path / "g.yaml"
    cfg.write_text("sources:\n  - {type: folder, name: in, path: inbox}\nconnectors:\n  - {type: file, name: out, path: outbox}\n")
    probe = (
        "import sys; from gateway.config import load_config; load_config(sys.argv[1]);"
        "print(','.join(m for m in ('connectors.sources.imap.config', 'connectors.sources.sftp.source',"
        " 'connectors.targets.http_json.config', 'imapclient', 'paramiko', 'requests') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_poll_status_minutes_loads_under_its_old_name_too_but_not_both(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    target = f"connectors:\n  - type: file\n    name: out\n    path: {tmp_path / 'out'}\n"
    for key in ("poll_status_minutes", "poll_shipments_minutes"):
        cfg.write_text(target + f"    {key}: 15\n")
        (loaded,) = load_config(cfg).connectors
        assert loaded.poll_status_minutes == 15
    cfg.write_text(target + "    poll_status_minutes: 15\n    poll_shipments_minutes: 30\n")
    with pytest.raises(ConfigError, match="poll_shipments_minutes"):
        load_config(cfg)
