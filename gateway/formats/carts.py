"""Shopping-cart order readers: Shopify and WooCommerce order JSON, one `Document` per order.

Cart JSON is never recognised from its content alone: `sniff` is always False for both
readers. A cart order arrives through the platform's webhook endpoint (which knows the
platform and the topic from its URL and headers) or with ``--format shopify|woocommerce``;
guessing from bytes could take any JSON file for an order.

Accepted shapes
    Shopify       a webhook body (one bare order object, e.g. orders/create, orders/updated,
                  orders/cancelled), a REST resource ``{"order": {...}}`` or a REST list
                  ``{"orders": [...]}`` (a bare JSON array of orders is taken too)
    WooCommerce   a webhook body or REST resource (one bare order object, e.g.
                  order.created), or a REST list (a JSON array of orders); the legacy
                  ``{"order": ...}`` / ``{"orders": [...]}`` wrappers are taken too

Events
    InterchangeOpened   Envelope(standard "shopify" / "woocommerce"): sender_id = the shop's
                        host name (Shopify: a ``shop_domain``/``myshopify_domain`` field if
                        present, else the host of ``order_status_url``; WooCommerce: the
                        host of ``_links.self[0].href`` or of ``payment_url``), else None;
                        interchange_control_number = None (carts number no interchanges);
                        test_indicator T/P from Shopify's ``test`` flag when every order
                        agrees; version = WooCommerce's ``version`` (the WooCommerce release
                        that wrote the order)
    Document            per order: doc_type "order", control_number = the platform's order
                        id, body = the order object (a dict, numbers with a fraction parsed
                        as Decimal so amounts never pass through float), position "order 1"
                        (a bare order), "order" (``{"order": ...}``) or "orders[3]" / "[3]"
    DocumentRejected    per object that is not an order, reason NOT_AN_ORDER, naming what it
                        is: a Shopify abandoned checkout, draft order, refund, transaction,
                        fulfillment, customer or product; a WooCommerce refund, checkout
                        draft, customer or product; a bare object with no key only an order
                        has (Shopify: line_items, order_number, financial_status;
                        WooCommerce: line_items, order_key). An object a wrapper calls an
                        order is taken without line_items (a REST response limited with
                        ``fields=``), with a warning on its Document.
    InterchangeClosed   digest = sha256 of the canonical JSON of the whole input (keys sorted,
                        no insignificant white space, numbers as written)

Limits: at most `max_bytes` (default 5 MB) are read and nesting deeper than `max_depth`
(default 64) is refused; the depth is counted by scanning the brackets outside strings
before the JSON is parsed, so a hostile input cannot exhaust the stack.

Reason codes
    ParseError:
        EMPTY           the input is empty
        JSON_LIMIT      larger than the size limit, or nested deeper than the depth limit
        JSON_ENCODING   not UTF-8 (JSON is UTF-8 by RFC 8259)
        JSON_SYNTAX     not valid JSON (position "line L, column C"), including NaN/Infinity
        JSON_STRUCTURE  valid JSON, but not an object or an array of objects
    DocumentRejected:
        NOT_AN_ORDER    an object that is not an order (see above)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from itertools import accumulate
from typing import IO, Any
from urllib.parse import urlsplit

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)

__all__ = ["MAX_BYTES", "MAX_DEPTH", "ShopifyParser", "WooCommerceParser", "load_json"]

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64

_BOM = b"\xef\xbb\xbf"
# A JSON string, or an unterminated one running to the end. Possessive quantifiers and the
# end-of-input branch make it match from every quote, so the scan stays linear: a pattern
# that can fail makes the engine rescan from every later quote (quadratic on '\\"' * n).
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_MAX_WARNINGS = 10


# ------------------------------------------------------------------------------------------
# Reading JSON safely


def load_json(
    stream: IO[bytes] | Any,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    what: str = "JSON document",
) -> tuple[Any, list[str]]:
    """Read and parse one JSON document from a binary stream, within limits.

    Returns (value, warnings). Numbers with a fraction or exponent become `Decimal`, never
    float. Raises ParseError (EMPTY, JSON_LIMIT, JSON_ENCODING, JSON_SYNTAX).
    """
    data = _read_limited(stream, max_bytes, what)
    warnings: list[str] = []
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
        warnings.append("a UTF-8 byte order mark before the JSON was removed")
    if not data.strip():
        raise ParseError(f"the {what} is empty", reason="EMPTY", position="byte 0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"the {what} is not UTF-8 ({exc.reason}); JSON must be sent in UTF-8",
            reason="JSON_ENCODING",
            position=f"byte {exc.start}",
        ) from exc
    _check_depth(text, max_depth, what)
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items) and len(duplicates) < _MAX_WARNINGS:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    duplicates.append(key)
                seen.add(key)
        return obj

    try:
        value = json.loads(
            text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=pairs
        )
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"the {what} is not valid JSON: {exc.msg}",
            reason="JSON_SYNTAX",
            position=f"line {exc.lineno}, column {exc.colno}",
        ) from exc
    except RecursionError as exc:  # the depth scan should make this unreachable
        raise ParseError(
            f"the {what} is nested too deeply to be read", reason="JSON_LIMIT"
        ) from exc
    except ValueError as exc:  # NaN/Infinity, or an integer longer than Python converts
        raise ParseError(f"the {what} is not valid JSON: {exc}", reason="JSON_SYNTAX") from exc
    if duplicates:
        names = ", ".join(repr(k[:60]) for k in dict.fromkeys(duplicates))
        warnings.append(f"keys repeated in one object (the last value was kept): {names}")
    return value, warnings


def _read_limited(stream: IO[bytes] | Any, max_bytes: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:  # a raw stream or a pipe may return less than asked
        chunk = stream.read(max_bytes + 1 - size)
        if not chunk:
            break
        if isinstance(chunk, str):  # a text stream slipped in
            chunk = chunk.encode("utf-8")
        chunks.append(bytes(chunk))
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise ParseError(
            f"the {what} is larger than the limit of {max_bytes:,} bytes; it was not read",
            reason="JSON_LIMIT",
            position=f"byte {max_bytes}",
        )
    return data


def _check_depth(text: str, max_depth: int, what: str) -> None:
    """Refuse nesting deeper than `max_depth`, counting brackets outside strings.

    Everything runs in C (regex substitution, map, accumulate, max): no recursion and no
    per-character Python loop, whatever the input.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return
    deepest = max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)))
    if deepest > max_depth:
        raise ParseError(
            f"the {what} is nested {deepest} levels deep; the limit is {max_depth}",
            reason="JSON_LIMIT",
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _canonical(value: Any) -> str:
    """Canonical JSON text: keys sorted, no white space, Decimal numbers as written.

    Recursive, but only ever called on values that passed the depth check.
    """
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_canonical(str(k))}:{_canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)  # ASCII escapes: a lone surrogate ("\\ud800") stays encodable


def _host(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host


# ------------------------------------------------------------------------------------------
# The readers


class _CartParser:
    """What Shopify and WooCommerce readers share: read, split into orders, classify."""

    name = ""
    platform = ""
    # wrapper key -> (what it holds, is a list): a REST resource or list of one kind
    wrappers: dict[str, tuple[str, bool]] = {}
    # keys only an order has: a bare object with none of them is not taken for an order
    order_keys: tuple[str, ...] = ("line_items",)

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def sniff(self, head: bytes) -> bool:
        """Always False: cart JSON is taken only through its webhook endpoint or --format."""
        return False

    def parse(self, stream: IO[bytes] | Any, *, name: str = "<input>") -> Iterator[Event]:
        """Yield the events of one cart payload; ParseError if it cannot be read as JSON."""
        value, warnings = load_json(
            stream,
            max_bytes=self.max_bytes,
            max_depth=self.max_depth,
            what=f"{self.platform} JSON",
        )
        items = self._split(value)
        envelope = self._envelope([obj for obj, _, _ in items])
        yield InterchangeOpened(envelope=envelope, warnings=warnings)
        for index, (obj, position, kind) in enumerate(items):
            problem = self._not_an_order(obj, kind)
            if problem is not None:
                yield DocumentRejected(
                    envelope=envelope,
                    doc_type=kind,
                    control_number=_id(obj),
                    reason="NOT_AN_ORDER",
                    message=problem,
                    position=position,
                    index=index,
                )
                continue
            notes: list[str] = []
            if "line_items" not in obj:
                notes.append(
                    f"the {self.platform} order has no line_items (a REST response limited "
                    "with fields= leaves them out): it is read without lines"
                )
            yield Document(
                envelope=envelope,
                doc_type="order",
                control_number=_id(obj),
                body=obj,
                position=position,
                index=index,
                warnings=notes,
            )
        digest = hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()
        yield InterchangeClosed(envelope=envelope, digest=digest, document_count=len(items))

    # -- splitting ---------------------------------------------------------------------------

    def _split(self, value: Any) -> list[tuple[Any, str, str | None]]:
        """(object, position, what the wrapper says it is) for each object of the input."""
        if isinstance(value, list):
            return [(obj, f"[{i}]", None) for i, obj in enumerate(value)]
        if not isinstance(value, dict):
            raise ParseError(
                f"a {self.platform} order is a JSON object (or a list of them); this input "
                f"is a JSON {_json_type(value)}",
                reason="JSON_STRUCTURE",
                position="line 1, column 1",
            )
        if len(value) == 1 and "line_items" not in value:
            ((key, inner),) = value.items()
            if key in self.wrappers:
                kind, many = self.wrappers[key]
                if many and isinstance(inner, list):
                    return [(obj, f"{key}[{i}]", kind) for i, obj in enumerate(inner)]
                if not many and isinstance(inner, dict):
                    return [(inner, key, kind)]
                raise ParseError(
                    f'"{key}" holds a JSON {_json_type(inner)}; a {self.platform} '
                    f"{key} resource holds {'a list' if many else 'an object'}",
                    reason="JSON_STRUCTURE",
                    position=key,
                )
        return [(value, "order 1", None)]

    def _envelope(self, objects: list[Any]) -> Envelope:
        raise NotImplementedError

    def _not_an_order(self, obj: Any, kind: str | None) -> str | None:
        """None for an order; else a sentence saying what the object is instead."""
        raise NotImplementedError

    def _generic(self, obj: Any, kind: str | None) -> str | None:
        """The checks both platforms share: an object, of an order kind, with line items."""
        if not isinstance(obj, dict):
            return (
                f"a JSON {_json_type(obj)} is not a {self.platform} order; an order is a "
                "JSON object"
            )
        if kind is not None and kind != "order":
            return (
                f"a {self.platform} {kind} is not an order; the gateway takes "
                f"{self.platform} orders"
            )
        # A wrapper ({"orders": [...]}) says what its objects are; a bare object must show it.
        if kind is None and not any(k in obj for k in self.order_keys):
            keys = ", ".join(repr(k[:40]) for k in list(obj)[:5])
            return (
                f"this JSON object is not a {self.platform} order: it has none of "
                f"{', '.join(self.order_keys)} (its keys start {keys or 'nowhere'})"
            )
        if "line_items" in obj and not isinstance(obj["line_items"], list):
            return f"the {self.platform} order's line_items is a JSON {_json_type(obj['line_items'])}, not a list"
        return None


class ShopifyParser(_CartParser):
    """Reads Shopify order JSON (webhook bodies and REST Admin API resources).

    Never recognised by `sniff`: Shopify JSON comes in through the webhook endpoint or
    ``--format shopify``.
    """

    name = "shopify"
    platform = "Shopify"
    order_keys = ("line_items", "order_number", "financial_status")
    wrappers = {
        "order": ("order", False),
        "orders": ("order", True),
        "draft_order": ("draft order", False),
        "draft_orders": ("draft order", True),
        "checkout": ("checkout", False),
        "checkouts": ("checkout", True),
        "refund": ("refund", False),
        "refunds": ("refund", True),
        "transaction": ("transaction", False),
        "transactions": ("transaction", True),
        "fulfillment": ("fulfillment", False),
        "fulfillments": ("fulfillment", True),
        "customer": ("customer", False),
        "customers": ("customer", True),
        "product": ("product", False),
        "products": ("product", True),
    }

    def _envelope(self, objects: list[Any]) -> Envelope:
        sender = None
        for obj in objects:
            if not isinstance(obj, dict):
                continue
            for key in ("shop_domain", "myshopify_domain", "shop"):
                if isinstance(obj.get(key), str) and obj[key].strip():
                    sender = obj[key].strip()
                    break
            sender = sender or _host(obj.get("order_status_url"))
            if sender:
                break
        flags = {o.get("test") for o in objects if isinstance(o, dict) and "test" in o}
        test = "T" if flags == {True} else "P" if flags == {False} else None
        return Envelope(standard="shopify", sender_id=sender, test_indicator=test)

    def _not_an_order(self, obj: Any, kind: str | None) -> str | None:
        if isinstance(obj, dict):
            if (
                kind == "draft order"
                or "invoice_url" in obj
                or ("status" in obj and "order_id" in obj and "financial_status" not in obj)
            ):
                return _draft_order(obj)
            if kind == "checkout" or "abandoned_checkout_url" in obj:
                return (
                    f"a Shopify abandoned checkout{_named(obj)} is a cart the customer did not "
                    "complete, not an order; Shopify sends the order itself (orders/create) "
                    "when the checkout is completed"
                )
            if kind == "refund" or "refund_line_items" in obj:
                of = f" of order {obj['order_id']}" if obj.get("order_id") is not None else ""
                return (
                    f"a Shopify refund{_named(obj)}{of} is not an order: it changes an order "
                    "already placed; the gateway takes orders"
                )
        return self._generic(obj, kind)


class WooCommerceParser(_CartParser):
    """Reads WooCommerce order JSON (webhook bodies and REST API v3 resources).

    Never recognised by `sniff`: WooCommerce JSON comes in through the webhook endpoint or
    ``--format woocommerce``.
    """

    name = "woocommerce"
    platform = "WooCommerce"
    order_keys = ("line_items", "order_key")
    wrappers = {"order": ("order", False), "orders": ("order", True)}

    def _envelope(self, objects: list[Any]) -> Envelope:
        sender = version = None
        for obj in objects:
            if not isinstance(obj, dict):
                continue
            links = obj.get("_links")
            selfs = links.get("self") if isinstance(links, dict) else None
            href = (
                selfs[0].get("href")
                if isinstance(selfs, list) and selfs and isinstance(selfs[0], dict)
                else None
            )
            sender = sender or _host(href) or _host(obj.get("payment_url"))
            if version is None and isinstance(obj.get("version"), str):
                version = obj["version"].strip() or None
            if sender and version:
                break
        return Envelope(standard="woocommerce", sender_id=sender, version=version)

    def _not_an_order(self, obj: Any, kind: str | None) -> str | None:
        if isinstance(obj, dict):
            if "refunded_by" in obj or "refunded_payment" in obj:
                return (
                    f"a WooCommerce refund{_named(obj)} is not an order: it changes an order "
                    "already placed; the gateway takes orders"
                )
            if obj.get("status") == "checkout-draft":
                return (
                    f"a WooCommerce checkout draft{_named(obj)} (status checkout-draft) is a "
                    "cart still in checkout, not an order; WooCommerce sends the order when "
                    "the customer places it"
                )
            if "line_items" not in obj and ("username" in obj or "role" in obj):
                return f"a WooCommerce customer{_named(obj)} is not an order"
            if "line_items" not in obj and "permalink" in obj:
                return f"a WooCommerce product{_named(obj)} is not an order"
        return self._generic(obj, kind)


def _draft_order(obj: dict[str, Any]) -> str:
    done = obj.get("order_id")
    after = (
        f"; this draft was completed as order {done}: send that order instead"
        if done is not None
        else "; Shopify creates the order (and sends orders/create) when the draft is completed"
    )
    return (
        f"a Shopify draft order{_named(obj)} is not an order until it is completed: it is a "
        f"quote or invoice the merchant is still preparing{after}"
    )


def _named(obj: dict[str, Any]) -> str:
    name = obj.get("name")
    ident = obj.get("id")
    if isinstance(name, str) and name.strip():
        return f" ({name.strip()[:60]})"
    if isinstance(ident, int | str) and not isinstance(ident, bool):
        return f" (id {str(ident)[:60]})"
    return ""


def _id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        ident = obj.get("id")
        if isinstance(ident, int | str) and not isinstance(ident, bool):
            return str(ident)[:100]
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    return "object"
