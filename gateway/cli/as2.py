"""AS2: `gateway as2 check`, `gateway as2 send`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _config, _gateway, app, err, out

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
    by_partner = {p.partner: p for p in as2.partners}
    for partner in cfg.partners:
        if partner.acks.as2 and by_partner.get(partner.name) is None:
            problems.append(f"{partner.name}: acks.as2 is set but intake.as2.partners has no entry for it")
        elif partner.acks.as2 and by_partner[partner.name].url is None:
            problems.append(f"{partner.name}: acks.as2 is set but its intake.as2.partners entry has no url")
    for line in problems:
        err.print(f"problem: {line}", markup=False)
    if problems:
        raise typer.Exit(1)


@as2_app.command("send")
def send(
    partner: Annotated[str, typer.Argument(help="Partner name (under partners: and intake.as2.partners).")],
    files: Annotated[list[Path], typer.Argument(help="Documents to send, one AS2 message each.")],
    config: ConfigOpt = None,
    content_type: Annotated[str, typer.Option("--content-type", help="MIME type of the documents.")] = "application/edi-x12",
) -> None:
    """Send documents to a partner by AS2 and check each MDN (signature and MIC).

    Each verified MDN is stored (event as2_sent, with the MDN as received) for disputes. The
    Message-ID comes from the document's content, so sending the same file again is
    recognised by the partner as a resend. Exits 1 if any document was not confirmed."""
    import hashlib

    from gateway.as2.identity import load_identity
    from gateway.as2.sender import As2Sender
    from gateway.errors import DeliveryError
    from gateway.store import add_event

    gw = _gateway(config)
    try:
        as2 = gw.config.intake.as2 if gw.config.intake is not None else None
        if as2 is None:
            err.print("AS2 is not configured (intake.as2)")
            raise typer.Exit(1)
        sender = As2Sender(load_identity(as2, (p.name for p in gw.config.partners)), partner)
        failed = 0
        for path in files:
            body = path.read_bytes()
            ident = f"{partner}-{hashlib.sha256(body).hexdigest()[:40]}"
            try:
                receipt = sender.send(body, filename=path.name, message_id=ident, content_type=content_type)
            except DeliveryError as exc:
                failed += 1
                err.print(f"not confirmed: {path.name}: {exc}", markup=False)
                continue
            with gw.store.begin() as conn:
                add_event(conn, "as2_sent", f"{path.name} to {partner}: {receipt.summary()}\n\n{receipt.mdn.decode('latin-1')}")
            out.print(f"sent {path.name}: {receipt.summary()}", markup=False, soft_wrap=True)
        sender.close()
    finally:
        gw.close()
    if failed:
        raise typer.Exit(1)
