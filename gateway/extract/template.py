"""A partner's e-mail extraction template: mappings/<partner>/email.yaml.

    min_confidence: 0.9     # an order with any field below this goes to review (default 0.9)
    decimal_comma: false    # 1.234,50 style numbers (resolves 1,234 / 1.234)
    day_first: true         # 03/04/2026 is 3 April (resolves ambiguous dates)
    date_formats: ["%d/%m/%Y"]
    currency: EUR           # when the document does not say
    table:  {...}           # CSV and XLSX attachments: gateway.extract.table.TableSpec
    text:   {...}           # PDF attachments and the body text: gateway.extract.text.TextSpec

Checked when the configuration is loaded (`gateway config check`), every problem with its
file and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError
from gateway.extract.table import TableSpec
from gateway.extract.text import TextSpec
from gateway.mapping.tables import read_yaml

__all__ = ["EmailTemplate", "load_email_template"]


class EmailTemplate(BaseModel):
    """How to read one partner's orders from spreadsheets, PDFs and e-mail bodies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: float = Field(0.9, ge=0, le=1, description="Orders with a field below this confidence go to review.")
    decimal_comma: bool = Field(False, description="Numbers are written 1.234,50 (a comma before the decimals).")
    day_first: bool = Field(True, description="An ambiguous date such as 03/04/2026 is read day first (3 April).")
    date_formats: list[str] = Field(default_factory=list, description="strptime formats tried first for dates.")
    currency: str | None = Field(None, min_length=3, max_length=3, description="Currency when the document states none.")
    table: TableSpec | None = Field(None, description="Column mapping for CSV and XLSX attachments.")
    text: TextSpec | None = Field(None, description="Labelled fields and line table for PDF attachments and the body text.")


def load_email_template(file: Path) -> EmailTemplate:
    """Read and check `file`; ConfigError listing every problem."""
    problems: list[str] = []
    data = read_yaml(file, problems, "the e-mail extraction template")
    if problems:
        raise ConfigError(problems)
    try:
        return EmailTemplate.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(
            [f"{file}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        ) from exc
