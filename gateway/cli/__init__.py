"""The `gateway` command (entry point `gateway.cli:main`).

Each module registers its commands on the Typer apps in `gateway.cli.common`; importing them
here builds the whole command tree. Heavy imports stay inside the commands, so `--help` starts fast.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

from gateway.cli.common import app, err
from gateway.errors import ConfigError, GatewayError

__all__ = ["app", "main"]

# Imported in this order so that `gateway --help` lists the commands as an operator meets them.
for _module in (
    "translate", "work", "orders", "deadletters", "rendering", "review", "fulfilment", "partners",
    "data", "configuration", "connectors", "shipping", "users", "alerts", "report", "ops", "as2",
):  # fmt: skip
    import_module(f"gateway.cli.{_module}")


def main() -> None:
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except ConfigError as exc:
        for p in exc.problems:
            err.print(f"config: {p}", markup=False)
        sys.exit(2)
    except GatewayError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except Exception as exc:  # the last line of defence: never a traceback for a user
        # Usage errors from the command-line parser (typer vendors its own click).
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if os.environ.get("GATEWAY_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (set GATEWAY_DEBUG=1 for details)", markup=False)
        sys.exit(3)

