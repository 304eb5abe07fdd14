"""Web-form order intake: ``POST /intake/forms/{form}``.

An order form on a web site posts here, form-encoded (``application/x-www-form-urlencoded``,
with bracket keys for structure: ``customer[email]=...&items[0][sku]=A-1&items[0][quantity]=2``)
or as a JSON object of the same shape. Unlike a shop webhook, a submission is checked AT THE
EDGE: it is mapped to an Order (``mappings/forms/<form>.yaml``) and validated before anything
is stored, so the person at the form sees what is wrong.

One submission, in this order; the first check that fails answers and nothing is stored:

1. the form is configured (``intake.forms``) ............................... else 404
2. the client address is within the form's ``rate_limit_per_minute``
   (in-memory sliding window per form and address) ........................ else 429 + Retry-After
3. form-encoded or JSON ..................................................... else 415
4. the body is at most ``max_body_bytes`` .................................. else 413 (408 if slow)
5. the form's secret: ``X-Form-Secret`` (constant-time compare) or a Standard
   Webhooks signature (``webhook-id``, ``webhook-timestamp`` within 5 minutes,
   ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``),
   whichever the form configures .......................................... else 401
6. the body reads as UTF-8 form fields or a JSON object .................... else 400
7. it maps to a valid order: every problem, by field ...................... else 422 {"errors": [...]}
8. the normalised JSON is committed (format ``web_form``) .................. 201 {"stored": id, ...}
   the store cannot be written ............................................ 503 + Retry-After

Normalisation. The stored message is the submission as one JSON object: bracket keys become
nested objects, numeric indices (and ``[]``) become lists, a repeated plain key a list;
every JSON number becomes its text, so amounts never pass through float. The intake adds
the reserved keys ``_form`` (the form's name; the pipeline finds the mapping by it),
``_received`` (UTC, to the second; for a signed submission the signed timestamp) and
``_submission`` (``WF-`` and 16 hex digits of a hash of the content and ``_received``, or of
the ``webhook-id``): the order's PO number unless the form sends ``po_number``. The same
bytes again are one message (a double click within the same second, or a replayed signed
delivery); a form that sends its own ``po_number`` per page load makes any re-submission
one order (the pipeline keys orders by partner and PO number).

Processing later (``WebFormParser`` + ``map_web_form``) reads the same JSON with the same
mapping, so the order stored is the order checked here.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

import pydantic
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from gateway.connector import RawMessage
from gateway.errors import InputRejected, MappingError, StoreUnavailable
from gateway.formats.base import Document
from gateway.formats.carts import load_json
from gateway.formats.webform import FORM_KEY, WebFormParser
from gateway.intake.config import FormConfig, _webhook_key
from gateway.mapping.webform import form_mapping, map_web_form
from gateway.model import Order
from gateway.validation import validate

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = [
    "SIGNATURE_TOLERANCE_SECONDS",
    "FieldError",
    "FormConfig",
    "FormRateLimiter",
    "forms_router",
    "normalise_form_body",
    "normalise_json_body",
    "sign_standard_webhook",
    "verify_standard_webhook",
]

SIGNATURE_TOLERANCE_SECONDS = 300  # Standard Webhooks: the timestamp within +-5 minutes
RETRY_AFTER_SECONDS = 30
BODY_TIMEOUT_SECONDS = 10.0
MAX_FIELDS = 1000  # form fields in one submission
MAX_KEY_DEPTH = 8  # brackets in one field name
MAX_INDEX = 9999  # items[9999][sku] at most
MAX_ERRORS = 50  # field errors in one 422
RESERVED_PREFIX = "_"

_DIGITS = re.compile(r"[0-9]{1,20}")
_INDEX = re.compile(r"[0-9]{1,4}")
_FIELD_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,200}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_LINE_LABEL = re.compile(r"line ([^:]+): ")


# -- answers, as documented in the OpenAPI schema -------------------------------------------


class FormStored(BaseModel):
    """The submission is a valid order and is committed to the store."""

    stored: str = Field(description="Id of the stored message (of the earlier one for a repeat).")
    reference: str = Field(description="The order's PO number: the form's po_number, or WF-....")
    duplicate: bool = Field(description="True when these exact bytes were stored before.")


class FieldError(BaseModel):
    """One problem of a submission."""

    field: str = Field(description="Where: a path in the submission (items[0].quantity).")
    message: str = Field(description="What is wrong, for a person.")


class FormErrors(BaseModel):
    """The submission is not a valid order; nothing was stored."""

    errors: list[FieldError]


class FormErrorAnswer(BaseModel):
    """The submission was refused; nothing was stored."""

    error: str = Field(description="What was wrong, in a few words. Never echoes the payload.")


def _doc(description: str, model: Any = FormErrorAnswer) -> dict[str, Any]:
    return {"description": description, "model": model}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: _doc("A valid order; stored.", FormStored),
    400: _doc("Not UTF-8 form fields or a JSON object, too many fields, bad Content-Length."),
    401: _doc("The form secret or the Standard Webhooks signature is missing or wrong."),
    404: _doc("No form is configured under that name."),
    408: _doc("The body did not arrive in time."),
    413: _doc("The body is larger than the form's max_body_bytes."),
    415: _doc("Neither application/x-www-form-urlencoded nor application/json."),
    422: _doc("Not a valid order: every problem, by field. Nothing was stored.", FormErrors),
    429: _doc("Too many submissions from this address; Retry-After says when to try again."),
    503: _doc("The store cannot be written right now (Retry-After is set). Nothing was stored."),
}

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "customer[name|email|phone], company, ship_to[...], items[N][sku|quantity|"
    "price|description], notes, po_number: see the form's mapping",
    "additionalProperties": True,
}

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The form's fields, form-encoded with bracket keys or as a JSON object.",
        "content": {
            "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
            "application/json": {"schema": _FORM_SCHEMA},
        },
    }
}


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.message = message
        self.headers = headers
        super().__init__(message)


class _Invalid(Exception):
    """A submission that is not a valid order: every problem found."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s)")


# -- rate limit ------------------------------------------------------------------------------


class FormRateLimiter:
    """A sliding one-minute window of request times per key (form, client address).

    In memory, per process, thread-safe; at most `max_keys` keys are tracked (the least
    recently seen are forgotten first).
    """

    WINDOW = 60.0

    def __init__(
        self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: tuple[str, str], limit: int) -> int | None:
        """Count one request. None when it is within `limit`, else seconds to wait."""
        now = self._clock()
        with self._lock:
            times = self._hits.get(key)
            if times is None:
                times = self._hits[key] = deque()
            self._hits.move_to_end(key)
            while times and times[0] <= now - self.WINDOW:
                times.popleft()
            if len(times) >= limit:
                return max(1, math.ceil(times[0] + self.WINDOW - now))
            times.append(now)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
            return None


# -- signatures ------------------------------------------------------------------------------


def sign_standard_webhook(body: bytes, msg_id: str, timestamp: int, key: bytes) -> str:
    """The ``webhook-signature`` header value (``v1,<base64>``) for `body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify_standard_webhook(
    body: bytes,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    key: bytes,
    *,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> str | None:
    """None when the Standard Webhooks headers sign `body`; else why not (for the log)."""
    if not msg_id or not timestamp or not signature:
        return "headers missing"
    if not _WEBHOOK_ID.fullmatch(msg_id) or not _DIGITS.fullmatch(timestamp.strip()):
        return "malformed headers"
    if abs(now - int(timestamp)) > tolerance:
        return "timestamp outside the tolerance"
    if not key:
        return "no key"
    signed = f"{msg_id}.{timestamp.strip()}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    ok = False
    for part in signature.split()[:10]:
        version, _, value = part.partition(",")
        try:
            given = value.encode("ascii")
        except UnicodeEncodeError:
            continue
        if version == "v1":
            ok |= hmac.compare_digest(expected, given)
    return None if ok else "signature does not match"


# -- normalisation ---------------------------------------------------------------------------


class _Indexed(dict[int, Any]):
    """A container addressed by index (items[0], tags[]); becomes a list."""


def _has(node: Any, path: list[str]) -> bool:
    for seg in path:
        if seg == "":
            return False
        if isinstance(node, _Indexed) and _INDEX.fullmatch(seg):
            key: Any = int(seg)
        elif isinstance(node, dict) and not isinstance(node, _Indexed):
            key = seg
        else:
            return False
        if key not in node:
            return False
        node = node[key]
    return True


def _insert(root: dict[str, Any], key: str, value: str, errors: list[FieldError]) -> None:
    found = _FIELD_KEY.fullmatch(key)
    if not found:
        errors.append(FieldError(field=key[:100], message="not a field name"))
        return
    path = [found.group(1), *_BRACKET.findall(found.group(2))]
    if len(path) > MAX_KEY_DEPTH + 1:
        errors.append(FieldError(field=key[:100], message="nested too deep"))
        return
    container: dict[Any, Any] = root
    slot: Any = path[0]
    for i, seg in enumerate(path[1:], 1):
        indexed = seg == "" or _INDEX.fullmatch(seg) is not None
        if seg != "" and not indexed and _DIGITS.fullmatch(seg):
            errors.append(FieldError(field=key[:100], message=f"index larger than {MAX_INDEX}"))
            return
        child = container.get(slot)
        if child is None:
            child = container[slot] = _Indexed() if indexed else {}
        elif not isinstance(child, dict) or isinstance(child, _Indexed) != indexed:
            errors.append(FieldError(field=key[:100], message="conflicts with another field"))
            return
        container = child
        if seg == "":
            rest = path[i + 1 :]
            top = max(container, default=-1)
            slot = top if rest and top >= 0 and not _has(container[top], rest) else top + 1
            if slot > MAX_INDEX:
                errors.append(FieldError(field=key[:100], message="too many entries"))
                return
        else:
            slot = int(seg) if indexed else seg
    existing = container.get(slot)
    if existing is None:
        container[slot] = value
    elif isinstance(existing, str) and not isinstance(container, _Indexed):
        container[slot] = [existing, value]  # a repeated plain key: a list
    elif isinstance(existing, list):
        existing.append(value)
    else:
        errors.append(FieldError(field=key[:100], message="conflicts with another field"))


def _finish(node: Any) -> Any:
    if isinstance(node, _Indexed):
        return [_finish(node[k]) for k in sorted(node)]
    if isinstance(node, dict):
        return {k: _finish(v) for k, v in node.items()}
    return node


def normalise_form_body(body: bytes) -> dict[str, Any]:
    """A form-encoded body as a JSON object (see the module doc). Raises _Refused / _Invalid."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(400, "form fields are not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise _Refused(400, "form fields are not UTF-8") from None
    except ValueError:
        raise _Refused(400, f"more than {MAX_FIELDS} form fields") from None
    root: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, value in pairs:
        _insert(root, key, value, errors)
    if errors:
        raise _Invalid(errors[:MAX_ERRORS])
    result: dict[str, Any] = _finish(root)
    return result


def _texts(value: Any) -> Any:
    """JSON numbers as their text (a Decimal never becomes a float)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return [_texts(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _texts(v) for k, v in value.items()}
    return str(value)


def normalise_json_body(body: bytes, max_bytes: int) -> dict[str, Any]:
    """A JSON body as the normalised object (numbers as text). Raises _Refused."""
    try:
        value, _ = load_json(io.BytesIO(body), max_bytes=max_bytes, what="form JSON")
    except InputRejected as exc:
        raise _Refused(400, f"{exc.message} ({exc.position})") from None
    if not isinstance(value, dict):
        raise _Refused(400, "expected a JSON object")
    result: dict[str, Any] = _texts(value)
    return result


def _canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# -- checking at the edge --------------------------------------------------------------------


def _source(trace: dict[str, str], order_path: str) -> str | None:
    found = trace.get(order_path)
    return found.rpartition(" <- ")[2] if found else None


def _field_of(trace: dict[str, str], order_path: str) -> str:
    """The submission field an Order path came from (the Order path when it is not known)."""
    found = _source(trace, order_path)
    if found:
        return found
    parent, _, leaf = order_path.rpartition(".")
    if parent:  # not set: a sibling's source gives the entry (items[0]), the leaf the field
        for key in trace:
            if key.startswith(parent + ".") and "." not in key[len(parent) + 1 :]:
                sibling = _source(trace, key)
                if sibling and "." in sibling:
                    return f"{sibling.rpartition('.')[0]}.{leaf}"
    return order_path


_RULE_FIELDS = {
    "quantity_not_positive": "quantity",
    "negative_price": "unit_price",
    "item_missing": "sku",
    "duplicate_line_number": "line_number",
}


def _lines_field(form: str) -> str:
    """The submission field the form's lines come from (``from`` of its lines block)."""
    for node in form_mapping(form).fields:
        if node.name == "lines":
            for part in getattr(node, "parts", ()):
                source = getattr(part, "source", None)
                if source is not None and getattr(source, "simple", False):
                    return str(source.text)
    return "lines"


def _problems(order: Order, trace: dict[str, str], form: str) -> list[FieldError]:
    errors: list[FieldError] = []
    labels = {f"line {line.line_number or i}": i - 1 for i, line in enumerate(order.lines, 1)}
    for problem in validate(order):
        message = problem.message
        path = {"po_number_missing": "po_number", "no_lines": "lines"}.get(problem.rule, "")
        label = _LINE_LABEL.match(message)
        if problem.rule in _RULE_FIELDS and label and f"line {label.group(1)}" in labels:
            index = labels[f"line {label.group(1)}"]
            path = f"lines[{index}].{_RULE_FIELDS[problem.rule]}"
            message = message[label.end() :]
        field = _field_of(trace, path) if path else ""
        if problem.rule == "no_lines":
            field, message = _lines_field(form), "the order has no items"
        errors.append(FieldError(field=field, message=message))
    emails = [("customer_email", order.customer_email)]
    for role in ("buyer", "seller", "ship_to", "bill_to"):
        party = getattr(order, role)
        if party is not None and party.contact is not None:
            emails.append((f"{role}.contact.email", party.contact.email))
    for path, email in emails:
        if email is not None and not _EMAIL.fullmatch(email):
            errors.append(
                FieldError(field=_field_of(trace, path), message="not a valid e-mail address")
            )
    return errors


def _mapping_errors(exc: MappingError) -> list[FieldError]:
    cause = exc.__cause__
    if exc.reason == "INVALID_ORDER" and isinstance(cause, pydantic.ValidationError):
        return [
            FieldError(
                field=".".join(str(p) for p in e["loc"]).replace(".[", "["), message=e["msg"]
            )
            for e in cause.errors(include_url=False)
        ]
    message = exc.message
    # jsonmap says "<order path> (<input path>): <detail> (<mapping>, order at <where>)"
    detail = re.fullmatch(r".*? \([^()]*\): (.*) \([^()]*, order at [^()]*\)", message, re.S)
    if detail:
        message = detail.group(1)
    elif exc.reason.startswith("JSON_MISSING_"):
        message = "required"
    return [FieldError(field=exc.position or "", message=message)]


def check_submission(body: bytes) -> tuple[Order, list[FieldError]]:
    """Map the stored form of a submission as the pipeline will; its problems by field."""
    events = WebFormParser(max_bytes=max(len(body), 1)).parse(io.BytesIO(body))
    doc = next(ev for ev in events if isinstance(ev, Document))
    trace: dict[str, str] = {}
    try:
        order = map_web_form(doc, trace=trace)
    except MappingError as exc:
        raise _Invalid(_mapping_errors(exc)) from None
    return order, _problems(order, trace, doc.body[FORM_KEY])


# -- the endpoint ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Form:
    config: FormConfig
    secret: bytes | None
    webhook_key: bytes | None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _DIGITS.fullmatch(declared.strip()):
            raise _Refused(400, "invalid Content-Length")
        if int(declared) > limit:
            raise _Refused(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, f"body larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(408, "the body did not arrive in time") from None
    except ClientDisconnect:
        raise _Refused(400, "the client went away") from None
    return b"".join(chunks)


FormName = Annotated[str, Path(description="The form's name as configured under intake.forms.")]


class _FormIntake:
    """The forms an endpoint serves and what it does with a submission: check who may send
    it and how often, read its fields, then map, validate and commit it."""

    def __init__(
        self,
        gateway: Gateway,
        forms: Iterable[FormConfig],
        clock: Callable[[], float],
        rate: FormRateLimiter,
        store_timeout: float,
    ):
        table: dict[str, _Form] = {}
        for cfg in forms:
            if cfg.name in table:
                raise ValueError(f"form name {cfg.name!r} is used twice")
            form_mapping(cfg.name)
            table[cfg.name] = _Form(
                cfg,
                cfg.secret.get_secret_value().encode("utf-8") if cfg.secret else None,
                _webhook_key(cfg.standard_webhooks_secret) if cfg.standard_webhooks_secret else None,
            )
        self.table = table
        self.gateway = gateway
        self.clock = clock
        self.rate = rate
        self.store_timeout = store_timeout

    async def read(
        self, form: str, request: Request, headers: dict[str, str | None]
    ) -> tuple[_Form, dict[str, Any], str, str]:
        """(the form, the submitted fields, when it was received, what identifies it),
        once the form exists, the client is within its rate, the body is of a type we read
        and within its size, and the secret or signature `headers` carry is right."""
        found = self.table.get(form)
        if found is None:
            raise _Refused(404, "unknown form")
        wait = self.rate.hit((found.config.name, _client(request)), found.config.rate_limit_per_minute)
        if wait is not None:
            raise _Refused(429, "too many submissions", {"Retry-After": str(wait)})
        media = _media_type(request)
        if media not in ("application/x-www-form-urlencoded", "application/json"):
            raise _Refused(415, "expected application/x-www-form-urlencoded or application/json")
        body = await _read_body(request, found.config.max_body_bytes)
        self.authenticate(found, body, headers, request)
        if media == "application/json":
            fields = normalise_json_body(body, found.config.max_body_bytes)
        else:
            fields = normalise_form_body(body)
        webhook_id, timestamp = headers["id"], headers["timestamp"]
        if found.webhook_key is not None and timestamp and webhook_id:
            return found, fields, _utc(int(timestamp)), f"webhook-id {webhook_id}"
        received = _utc(self.clock())
        return found, fields, received, received

    def authenticate(
        self, form: _Form, body: bytes, headers: dict[str, str | None], request: Request
    ) -> None:
        """Refuse (401) a submission without the form's secret or a valid signature."""
        name = form.config.name
        if form.secret is not None:
            given = (headers["secret"] or "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, form.secret):
                log.warning(
                    "intake form %s: secret %s from %s; %d bytes refused",
                    name,
                    "missing" if not given else "does not match",
                    _client(request),
                    len(body),
                )
                raise _Refused(401, "invalid form secret")
        elif form.webhook_key is not None:
            why = verify_standard_webhook(
                body,
                headers["id"],
                headers["timestamp"],
                headers["signature"],
                form.webhook_key,
                now=self.clock(),
            )
            if why is not None:
                log.warning(
                    "intake form %s: signature refused (%s) from %s; %d bytes",
                    name,
                    why,
                    _client(request),
                    len(body),
                )
                raise _Refused(401, "invalid signature")

    def store(
        self, form: _Form, fields: dict[str, Any], received: str, basis: str
    ) -> JSONResponse:
        """Map, validate, commit. Blocking: runs in the thread pool."""
        reserved = [k for k in fields if k.startswith(RESERVED_PREFIX)]
        if reserved:
            raise _Invalid(
                [FieldError(field=k[:100], message="reserved field name") for k in reserved]
            )
        name = form.config.name
        digest = hashlib.sha256(f"{name}\n{basis}\n".encode() + _canonical(fields)).hexdigest()
        submission = f"WF-{digest[:16].upper()}"
        stored = {**fields, FORM_KEY: name, "_received": received, "_submission": submission}
        body = _canonical(stored)
        order, errors = check_submission(body)
        if errors:
            raise _Invalid(errors[:MAX_ERRORS])
        raw = RawMessage(
            body=body,
            source=f"web_form:{name}",
            source_ref=f"web_form:{name}:{submission}",
            display_name=f"form {name} {submission}",
        )
        partner = form.config.partner or name
        try:
            with self.gateway.store.lock_wait(self.store_timeout):  # 503 promptly, never after 30 s
                result = self.gateway.pipeline.receive(raw, format="web_form", partner=partner)
        except StoreUnavailable as exc:
            log.error("intake form %s: %s; answered 503", name, exc)
            raise _Refused(
                503, "store unavailable, retry later", {"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        log.info(
            "intake form %s: %s stored as %s%s",
            name,
            submission,
            result.message_id,
            " (duplicate)" if result.duplicate else "",
        )
        return JSONResponse(
            {
                "stored": result.message_id,
                "reference": order.po_number,
                "duplicate": result.duplicate,
            },
            status_code=201,
        )


def forms_router(
    gateway: Gateway,
    forms: Iterable[FormConfig],
    *,
    clock: Callable[[], float] = time.time,
    limiter: FormRateLimiter | None = None,
    store_timeout: float = 3.0,
) -> APIRouter:
    """The web-form endpoint for `forms`. Loads and checks each form's mapping now
    (ConfigError when one is missing or invalid)."""
    intake = _FormIntake(gateway, forms, clock, limiter or FormRateLimiter(), store_timeout)
    router = APIRouter(tags=["forms"])

    @router.post(
        "/intake/forms/{form}",
        summary="Submit an order from a web form",
        description=(
            "Takes one order form submission, form-encoded with bracket keys "
            "(`items[0][sku]=A-1&items[0][quantity]=2`) or as JSON of the same shape. The "
            "submission is mapped with `mappings/forms/<form>.yaml` and validated at once: an "
            "invalid one is answered 422 with a message per field and nothing is stored; a valid "
            "one is stored (format `web_form`) and answered 201. Rate-limited per client address; "
            "depending on the form's configuration it must carry `X-Form-Secret` or a Standard "
            "Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`)."
        ),
        status_code=201,
        response_model=None,
        responses=_RESPONSES,
        openapi_extra=_BODY,
    )
    async def submit(
        form: FormName,
        request: Request,
        x_form_secret: Annotated[
            str | None, Header(description="The form's shared secret, when it has one.")
        ] = None,
        webhook_id: Annotated[
            str | None, Header(description="Standard Webhooks: id of the submission.")
        ] = None,
        webhook_timestamp: Annotated[
            str | None, Header(description="Standard Webhooks: Unix seconds when signed.")
        ] = None,
        webhook_signature: Annotated[
            str | None, Header(description="Standard Webhooks: v1,<base64 HMAC-SHA256>.")
        ] = None,
    ) -> JSONResponse:
        headers = {
            "secret": x_form_secret,
            "id": webhook_id,
            "timestamp": webhook_timestamp,
            "signature": webhook_signature,
        }
        try:
            found, fields, received, basis = await intake.read(form, request, headers)
            return await run_in_threadpool(intake.store, found, fields, received, basis)
        except _Refused as exc:
            if exc.status != 401:
                log.info(
                    "intake form %s: %s from %s: %s",
                    form[:64],
                    exc.status,
                    _client(request),
                    exc.message,
                )
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        except _Invalid as exc:
            log.info(
                "intake form %s: 422 from %s: %d problem(s)",
                form[:64],
                _client(request),
                len(exc.errors),
            )
            return JSONResponse({"errors": [e.model_dump() for e in exc.errors]}, status_code=422)

    return router
