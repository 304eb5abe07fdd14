"""AS2: `gateway as2 check`."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _config, app, err, out

as2_app = typer.Typer(no_args_is_help=True, help="AS2: our certificate and the partners' (intake.as2).")
app.add_typer(as2_app, name="as2")


@as2_app.command("check")
def check(config: ConfigOpt = None) -> None:
    """List the AS2 partners and every certificate's expiry; exit 1 on a problem (an unreadable
    or expired certificate, a key that does not match our certificate, an unknown partner)."""
    from gateway.as2.certs import check as check_certificates

    cfg = _config(config)
    as2 = cfg.intake.as2 if cfg.intake is not None else None
    if as2 is None:
        err.print("AS2 is not configured (intake.as2)")
        raise typer.Exit(1)
    now = dt.datetime.now(dt.UTC)
    rows = check_certificates(as2, {p.name for p in cfg.partners}, now)
    by_id = {p.as2_id: p for p in as2.partners}
    table = Table(title=f"AS2 {as2.our_id}: {len(as2.partners)} partner(s)")
    for col in ("partner", "AS2 id", "certificate", "expires", "days left", "settings", "status"):
        table.add_column(col)
    for row in rows:
        p = by_id.get(row.as2_id) if row.role != "ours" else None
        settings = "-"
        if p is not None:
            wanted = [w for w, on in (("encrypted", p.encrypt), ("signed", p.sign)) if on]
            settings = f"requires {' + '.join(wanted) or 'nothing'}; MDN {p.mdn_mode}" + (f" to {p.mdn_url}" if p.mdn_url else "")
        left = row.days_left(now)
        status = "; ".join(row.problems + row.warnings) or "ok"
        table.add_row(
            row.role, row.as2_id, f"{row.subject}\n{row.path}", f"{row.expires:%Y-%m-%d}" if row.expires else "-",
            "-" if left is None else str(left), settings, status,
        )
    out.print(table)
    problems = [f"{row.role} ({row.as2_id}): {p}" for row in rows for p in row.problems]
    for line in problems:
        err.print(f"problem: {line}", markup=False)
    if problems:
        raise typer.Exit(1)
