"""What every `gateway` command shares: the Typer apps, the consoles, configuration and store loading.

The `gateway` command.

Every command reads the configuration from --config, else $GATEWAY_CONFIG, else
./config/gateway.yaml, else the embedded defaults (SQLite in ./var, inbox ./var/inbox, file
outbox ./var/outbox). Errors end with a one-line reason on stderr and a non-zero exit, never
a traceback (set GATEWAY_DEBUG=1 to see one).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

# Shell completion (`--install-completion`, `--show-completion`) is typer's own; it loads its
# completion scripts only when asked, so `--help` stays fast (tests/e2e/test_fast_start.py).
app = typer.Typer(add_completion=True, no_args_is_help=True, help="Order-entry integration gateway.")
config_app = typer.Typer(no_args_is_help=True, help="Check and explain the configuration.")
app.add_typer(config_app, name="config")
mapping_app = typer.Typer(no_args_is_help=True, help="Try mappings against sample files.")
app.add_typer(mapping_app, name="mapping")
data_app = typer.Typer(no_args_is_help=True, help="Master data: catalogue, prices, stock and customer accounts.")
app.add_typer(data_app, name="data")
rules_app = typer.Typer(no_args_is_help=True, help="Try the configured rules against sample files.")
app.add_typer(rules_app, name="rules")

# Piped output keeps whole table cells instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Configuration file (YAML).", envvar="GATEWAY_CONFIG")]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # gateway/examples


def _config_path(path: Path | None) -> Path | None:
    """The configuration file a command reads, or None for the embedded defaults."""
    if path is not None:
        return path
    default = Path("config/gateway.yaml")
    return default if default.exists() else None


def _config(path: Path | None, *, secrets_optional: bool = False) -> GatewayConfig:
    """The configuration; `secrets_optional` for commands that use no secret (translate)."""
    from gateway.config import default_config, load_config  # not for --help: keeps start-up fast

    found = _config_path(path)
    if found is not None:
        return load_config(found, secrets_optional=secrets_optional)
    return default_config(Path.cwd())


def _gateway(path: Path | None, *, existing: bool = False) -> Any:
    """The gateway; `existing=True` (commands that look at or act on stored work) opens only a
    store that exists and exits with a one-line reason otherwise, creating nothing."""
    from gateway.app import Gateway
    from gateway.logs import configure_logging
    from gateway.store import Store

    cfg = _config(path)
    configure_logging(cfg.log_level, cfg.log_format)
    return Gateway(cfg, store=_open_store(Store, cfg, create=not existing))


def _open_store(store_type: Any, cfg: GatewayConfig, *, create: bool) -> Any:
    """The store; with `store.migrate: false` one whose schema is not the installed gateway's
    is refused with the command that fixes it, and nothing is migrated."""
    store = store_type(cfg.store.url, create=create, migrate=cfg.store.migrate)
    if not cfg.store.migrate:
        from gateway.errors import GatewayError
        from gateway.store.schema import current_revision, head_revision

        found, head = current_revision(store), head_revision()
        if found != head:
            store.dispose()
            raise GatewayError(
                f"the store's schema is at {found or 'nothing'}, this gateway needs {head}; "
                "run `gateway db upgrade` (store.migrate is false)"
            )
    return store




def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("order-gateway")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown (not installed)"
        out.print(f"gateway {found}", markup=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the installed version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Order-entry integration gateway."""
