"""The web console's users: `gateway users add` and `gateway users list`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _gateway, app, err, out
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

users_app = typer.Typer(no_args_is_help=True, help="People who may log in to the web console (intake.console).")
app.add_typer(users_app, name="users")

PASSWORD_ENV = "GATEWAY_CONSOLE_PASSWORD"  # noqa: S105  (the name of a variable, not a password)


def console_address(cfg: GatewayConfig) -> str | None:
    """Where the console is served when `gateway run` runs with `cfg`, or None when it is off."""
    intake = cfg.intake
    if intake is None or intake.console is None:
        return None
    host = f"[{intake.host}]" if ":" in intake.host else intake.host
    return f"http://{host}:{intake.port}/console/"


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name (1-100 characters).")],
    role: Annotated[str, typer.Option("--role", "-r", help="viewer (reads), operator (+ decides orders, replays dead letters) or admin (+ sees users).")] = "viewer",
    password_env: Annotated[str | None, typer.Option("--password-env", help=f"Read the password from this environment variable (for scripts; default: ask, or ${PASSWORD_ENV} when set).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Give an existing user this role and password (its sessions end).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Add a console user; the password is asked for (never an argument) and stored as an Argon2id hash."""
    from gateway.console.auth import MIN_PASSWORD_LENGTH, hash_password
    from gateway.store.console_users import ROLES, add_user

    name = name.strip()
    if not 1 <= len(name) <= 100 or any(c.isspace() or not c.isprintable() for c in name):
        raise GatewayError("a user name has 1 to 100 printable characters and no spaces")
    if role not in ROLES:
        raise GatewayError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    env_name = password_env or (PASSWORD_ENV if PASSWORD_ENV in os.environ else None)
    if env_name is not None:
        password = os.environ.get(env_name, "")
        if not password:
            raise GatewayError(f"environment variable {env_name} is not set")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise GatewayError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    gw = _gateway(config)
    try:
        created = add_user(gw.store, name, role, hash_password(password), replace=replace)
        address = console_address(gw.config)
    finally:
        gw.close()
    err.print(f"user {name} {'added' if created else 'changed'} ({role})", markup=False)
    if address is None:
        err.print("note: the console is off; add `intake: {console: {}}` to the configuration to serve it", markup=False)
    else:
        err.print(f"log in at {address} while `gateway run` serves it", markup=False)


@users_app.command("list")
def list_(config: ConfigOpt = None) -> None:
    """List the console's users and their roles."""
    from gateway.store.console_users import list_users

    gw = _gateway(config, existing=True)
    try:
        rows = list_users(gw.store)
    finally:
        gw.close()
    table = Table(title=f"{len(rows)} console user(s)")
    for col in ("name", "role", "since"):
        table.add_column(col)
    for u in rows:
        table.add_row(u.name, u.role, u.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
