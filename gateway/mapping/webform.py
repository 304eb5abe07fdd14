"""Web-form submissions -> Order, with one declarative mapping per form.

Each form ``<name>`` has ``mappings/forms/<name>.yaml`` in the jsonmap format
(gateway/mapping/jsonmap/), applied to the submission as the intake normalised it: a JSON
object of the submitted fields (``items[0][sku]`` became ``items[0].sku``), every number
as text, plus the reserved ``_submission`` and ``_received`` (``_form``, the form's name,
is taken out before the mapping sees the object). Files are loaded, checked and cached once
per process; a missing or invalid file is a ConfigError.

Used in two places, with the same result: by the intake, to refuse an invalid submission
before it is stored (422), and by the pipeline (MAPPERS[("web_form", "form")]).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.formats.webform import FORM_KEY, FORM_NAME
from gateway.mapping.builder import not_an_order
from gateway.mapping.files import mappings_root
from gateway.mapping.jsonmap import JsonMapping, load_mapping
from gateway.model import Order

__all__ = ["FORMS_DIR", "form_mapping", "form_mapping_path", "map_web_form"]

FORMS_DIR = mappings_root() / "forms"


def form_mapping_path(form: str) -> Path:
    """mappings/forms/<form>.yaml; ConfigError for a name that is not a form name."""
    if not FORM_NAME.fullmatch(form):
        raise ConfigError(
            [f"{form[:70]!r} is not a form name (lower-case letters, digits, - and _)"]
        )
    return FORMS_DIR / f"{form}.yaml"


@functools.cache
def form_mapping(form: str) -> JsonMapping:
    """The checked mapping of one form, loaded once per process. Raises ConfigError."""
    path = form_mapping_path(form)
    if not path.is_file():
        raise ConfigError([f"{path}: no mapping for web form {form!r}"])
    return load_mapping(path)


def map_web_form(
    doc: Document, tables: JsonMapping | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one web-form `Document` (from WebFormParser) with its form's mapping.

    `tables` replaces the form's mapping (a partner override). Raises MappingError.
    """
    body = doc.body
    form = body.get(FORM_KEY) if isinstance(body, dict) else None
    if doc.doc_type != "form" or not isinstance(form, str) or not FORM_NAME.fullmatch(form):
        raise not_an_order(doc, f"{doc.doc_type} at {doc.position} is not a web form submission")
    if tables is None:
        try:
            tables = form_mapping(form)
        except ConfigError as exc:
            raise MappingError(
                f"web form {form!r} has no usable mapping: {exc}",
                reason="NO_MAPPING",
                position=FORM_KEY,
            ) from exc
    fields = {k: v for k, v in body.items() if k != FORM_KEY}
    return tables.map(dataclasses.replace(doc, doc_type="order", body=fields), trace)
