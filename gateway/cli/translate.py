"""Translating a file without storing it, and the canonical order's schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.errors import InputRejected

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _config,
    app,
    err,
)

# -- translate / schema -----------------------------------------------------------------------


@app.command()
def translate(
    files: Annotated[list[Path], typer.Argument(help="Input files; '-' reads standard input.")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="Input format (default: detected from the content).")] = None,
    partner: Annotated[str | None, typer.Option("--partner", "-p", help="Trading partner the input comes from.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the canonical orders in FILES as JSON Lines; problems go to stderr."""
    from gateway.formats.base import InterchangeClosed
    from gateway.translate import PartnerDirectory, Rejected, Translated
    from gateway.translate import translate as run

    cfg = _config(config, secrets_optional=True)
    partners = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)

    write = sys.stdout.write
    failed = 0
    for f in files:
        label = str(f)
        try:
            stream = sys.stdin.buffer if label == "-" else open(f, "rb")  # noqa: SIM115
        except OSError as exc:
            err.print(f"{label}: cannot read: {exc.strerror}", markup=False)
            failed += 1
            continue
        try:
            if label == "-":
                import io

                stream = io.BytesIO(stream.read())
            for ev in run(stream, name=Path(label).name, format=format, partner=partner, partners=partners):
                if isinstance(ev, Translated):
                    write(ev.order.model_dump_json())
                    write("\n")
                    if ev.review:
                        err.print(f"{label}: {ev.position}: PO {ev.order.po_number} would be held for review: {'; '.join(ev.review)}", markup=False)
                elif isinstance(ev, Rejected):
                    failed += 1
                    doc = f"{ev.doc_type or 'document'} {ev.control_number or ''}".strip()
                    err.print(f"{label}: {ev.position}: {doc} rejected ({ev.reason}): {ev.message}", markup=False)
                elif isinstance(ev, InterchangeClosed) and (problem := _interchange_problem(ev)):
                    failed += 1
                    err.print(f"{label}: {problem}", markup=False)
        except InputRejected as exc:
            failed += 1
            err.print(f"{label}: {exc.position or 'start'}: {exc.message} ({exc.reason})", markup=False)
        finally:
            stream.close()
    sys.stdout.flush()
    if failed:
        raise typer.Exit(1)


def _interchange_problem(ev: Any) -> str | None:
    """Why an interchange is refused as a whole (cut off, or holding nothing), else None."""
    env = ev.envelope
    what = f"interchange {env.interchange_control_number or '?'} from {env.sender_id or '?'}"
    trailer = "IEA" if env.standard == "x12" else "UNZ"
    if not ev.complete:
        return f"{what} is cut off (no {trailer} or group trailer): nothing from it is accepted (TRUNCATED)"
    if not ev.document_count:
        return f"{what} holds no transaction set or message (NO_ORDERS)"
    return None


@app.command()
def schema() -> None:
    """Print the JSON Schema of the canonical order."""
    from gateway.model import order_json_schema

    sys.stdout.write(json.dumps(order_json_schema(), indent=2) + "\n")
