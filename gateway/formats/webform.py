"""Web-form order reader: one stored form submission, one `Document`.

A web form reaches the gateway through ``POST /intake/forms/{form}`` (gateway.intake.forms),
which normalises the submission (form-encoded or JSON) to one JSON object, checks that it
maps to a valid order, and stores that JSON as the raw message (format ``web_form``). This
reader turns the stored JSON back into a Document for the pipeline, exactly as the intake
did before answering, so processing later produces the same order.

The stored object
    _form           reserved: the form's name; its mapping is mappings/forms/<_form>.yaml
    _submission     reserved: the gateway's reference for the submission (WF-...)
    _received       reserved: when the intake received it (UTC, ISO 8601)
    everything else the fields as the customer submitted them; every number is text

Events
    InterchangeOpened   Envelope(standard "web_form"), no sender id
    Document            doc_type "form", control_number = _submission, body = the object,
                        position "form <name>"
    InterchangeClosed   digest = sha256 of the bytes as stored

Never recognised by `sniff`: form JSON comes only through the intake or ``--format web_form``.

Reason codes (ParseError): EMPTY, JSON_LIMIT, JSON_ENCODING, JSON_SYNTAX (from the JSON
reader), JSON_STRUCTURE (not an object, or no valid ``_form`` name).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import IO, Any

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.carts import load_json

__all__ = ["FORM_KEY", "FORM_NAME", "MAX_BYTES", "WebFormParser"]

FORM_KEY = "_form"
#: What a form name may be: it names a file under mappings/forms/.
FORM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MAX_BYTES = 1_000_000


class WebFormParser:
    """Reads one web-form submission as the intake stored it (a JSON object)."""

    name = "web_form"

    def __init__(self, *, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes

    def sniff(self, head: bytes) -> bool:
        """Always False: a form submission is taken only through its endpoint or --format."""
        return False

    def parse(self, stream: IO[bytes] | Any, *, name: str = "<input>") -> Iterator[Event]:
        data = stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ParseError(
                f"the web form submission is larger than {self.max_bytes} bytes",
                reason="JSON_LIMIT",
                position=f"byte {self.max_bytes}",
            )
        value, warnings = load_json(
            io.BytesIO(data), max_bytes=self.max_bytes, what="web form JSON"
        )
        if not isinstance(value, dict):
            raise ParseError(
                "a web form submission is a JSON object",
                reason="JSON_STRUCTURE",
                position="line 1, column 1",
            )
        form = value.get(FORM_KEY)
        if not isinstance(form, str) or not FORM_NAME.fullmatch(form):
            raise ParseError(
                f"a web form submission names its form in {FORM_KEY!r} (lower-case letters, "
                "digits, - and _)",
                reason="JSON_STRUCTURE",
                position=FORM_KEY,
            )
        envelope = Envelope(standard="web_form")
        yield InterchangeOpened(envelope=envelope, warnings=warnings)
        submission = value.get("_submission")
        yield Document(
            envelope=envelope,
            doc_type="form",
            control_number=submission[:100] if isinstance(submission, str) else None,
            body=value,
            position=f"form {form}",
            index=0,
        )
        yield InterchangeClosed(
            envelope=envelope, digest=hashlib.sha256(data).hexdigest(), document_count=1
        )
