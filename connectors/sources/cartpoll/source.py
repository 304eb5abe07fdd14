"""Cart reconciliation poller: fetches a shop's orders updated since a cursor.

Webhooks get lost and shops disable subscriptions after failures, so this source also reads
the shop's REST API for orders updated since the last acknowledged one:

    Shopify       GET {base}/admin/api/{version}/orders.json?status=any&updated_at_min=..
                  &limit=N&order=updated_at asc, following ``Link: <..>; rel="next"``
                  (only to the shop's own scheme, host and port)
    WooCommerce   GET {base}/wp-json/wc/v3/orders?modified_after=..&dates_are_gmt=true
                  &per_page=N&page=K&orderby=modified&order=asc, pages by X-WP-TotalPages

Each message is ONE order, re-serialized canonically (sorted keys, no white space), so the
same unchanged order read again is the same bytes and the store skips it; a webhook copy of
the order and the polled copy are one order (same partner and order number).

The cursor (the latest ``updated_at`` acknowledged) lives in the store (source_cursors) and
moves only in `ack`, after the message is committed, and only forward. Each poll starts at
cursor - overlap_seconds (first start: now - initial_lookback_hours).

An order without id or a readable modification time is refused (a quarantined message
with reason UNREADABLE_ORDER) and leaves the cursor where it is.

Errors end the poll quietly (logged); nothing unacknowledged is lost, the next poll reads it
again: connection errors, timeouts and 5xx; 401/403 (logged as a configuration error); 429
(the poll stops and the next one waits for Retry-After). Shopify's call-limit header
(``X-Shopify-Shop-Api-Call-Limit: 39/40``) slows requests down before the bucket is full.
Redirects are never followed (the credentials would go with them). The shop's host must
resolve to public addresses only (SSRF guard) unless allow_private_targets.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.sources.cartpoll.config import CartPollConfig
from connectors.targets.http_json.connector import _forbidden, _is_ip, resolve_host
from gateway.connector import AckOutcome, RawMessage
from gateway.errors import ConfigError
from gateway.retry import parse_retry_after
from gateway.store import Store
from gateway.store.cursors import get_cursor, parse_timestamp, set_cursor

log = logging.getLogger(__name__)

__all__ = ["CartPollSource"]

USER_AGENT = "order-gateway/0.1 (reconciliation poller)"
MAX_PAGES = 1000  # per poll; a runaway pagination ends here and resumes next poll
_CALL_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+-]+")

Resolver = Callable[[str, int], list[str]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _StopPoll(Exception):
    """End this poll quietly (already logged)."""


class CartPollSource:
    def __init__(
        self,
        config: CartPollConfig,
        *,
        store: Store,
        session: requests.Session | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        resolver: Resolver = resolve_host,
    ):
        self.config = config
        self.name = config.name
        self.store = store
        self.session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._resolver = resolver
        self._not_before = float("-inf")  # after a 429: no request before this (monotonic)
        base = urlsplit(config.base_url)
        self._scheme = base.scheme
        self._host = (base.hostname or "").lower()
        self._port = base.port or (443 if base.scheme == "https" else 80)
        if _is_ip(self._host) and not config.allow_private_targets:
            why = _forbidden(self._host)
            if why:
                raise ConfigError(f"source {self.name}: base_url {self._host} is {why}; orders are only fetched from public hosts")

    # -- the Source protocol ---------------------------------------------------------------------

    def poll(self) -> Iterator[RawMessage]:
        if self._monotonic() < self._not_before:
            log.info("cart poll %s: rate limited by the shop; waiting until Retry-After has passed", self.name)
            return
        if not self._target_allowed():
            return
        since = self._since()
        fetch = self._shopify if self.config.platform == "shopify" else self._woocommerce
        try:
            for order in fetch(since):
                msg = self._message(order)
                if msg is not None:
                    yield msg
        except _StopPoll:
            return

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        # Every outcome means the order is committed (stored, or the same bytes were already).
        # A refused order has no usable modification time: the cursor stays where it is.
        updated_at: str | None = message.ack_token
        if updated_at is not None:
            set_cursor(self.store, self.name, updated_at)

    # -- fetching ----------------------------------------------------------------------------------

    def _since(self) -> dt.datetime:
        cursor = get_cursor(self.store, self.name)
        if cursor is None:
            return self._clock().astimezone(dt.UTC) - dt.timedelta(hours=self.config.initial_lookback_hours)
        return parse_timestamp(cursor) - dt.timedelta(seconds=self.config.overlap_seconds)

    def _shopify(self, since: dt.datetime) -> Iterator[dict[str, Any]]:
        cfg = self.config
        url: str | None = f"{cfg.base_url}/admin/api/{cfg.api_version}/orders.json"
        params: dict[str, Any] | None = {
            "status": "any",
            "updated_at_min": since.isoformat(timespec="seconds"),
            "limit": cfg.page_size,
            "order": "updated_at asc",
        }
        assert cfg.access_token is not None  # the config validator ensures it
        headers = {"X-Shopify-Access-Token": cfg.access_token.get_secret_value()}
        pages = 0
        while url is not None and pages < MAX_PAGES:
            pages += 1
            resp, data = self._get(url, params=params, headers=headers)
            orders = data.get("orders") if isinstance(data, dict) else None
            if not isinstance(orders, list):
                log.error("cart poll %s: the shop's answer has no orders list; poll ended", self.name)
                return
            yield from (o for o in orders if isinstance(o, dict))
            self._shopify_throttle(resp)
            url, params = self._next_link(resp), None  # the next link carries its own query (page_info)

    def _woocommerce(self, since: dt.datetime) -> Iterator[dict[str, Any]]:
        cfg = self.config
        url = f"{cfg.base_url}/wp-json/wc/v3/orders"
        assert cfg.consumer_key is not None and cfg.consumer_secret is not None
        auth = (cfg.consumer_key.get_secret_value(), cfg.consumer_secret.get_secret_value())
        page, total = 1, 1
        while page <= min(total, MAX_PAGES):
            params = {
                "modified_after": since.replace(tzinfo=None).isoformat(timespec="seconds"),
                "dates_are_gmt": "true",
                "per_page": cfg.page_size,
                "page": page,
                "orderby": "modified",
                "order": "asc",
            }
            resp, data = self._get(url, params=params, auth=auth)
            if not isinstance(data, list):
                log.error("cart poll %s: the shop's answer is not a list of orders; poll ended", self.name)
                return
            yield from (o for o in data if isinstance(o, dict))
            header = resp.headers.get("X-WP-TotalPages", "")
            if header.strip().isdigit():
                total = int(header)
            elif len(data) >= cfg.page_size:
                total = page + 1  # no header: go on while pages are full
            page += 1

    def _get(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[requests.Response, Any]:
        what = f"cart poll {self.name}"
        try:
            resp = self.session.get(
                url,
                params=params,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
                auth=auth,
                timeout=self.config.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            log.warning("%s: %s unreachable (%s); poll ended, will retry", what, self._host, type(exc).__name__)
            raise _StopPoll from exc
        try:
            status = resp.status_code
            if status == 429:
                wait = parse_retry_after(resp.headers.get("Retry-After")) or self.config.poll_seconds
                self._not_before = self._monotonic() + wait
                log.warning("%s: rate limited (429); poll ended, next request in %.0f s", what, wait)
                raise _StopPoll
            if status in (401, 403):
                log.error(
                    "%s: CONFIGURATION ERROR: the shop refused the credentials (HTTP %d); check %s and its permissions (read orders)",
                    what,
                    status,
                    "access_token" if self.config.platform == "shopify" else "consumer_key/consumer_secret",
                )
                raise _StopPoll
            if status >= 500:
                log.warning("%s: the shop answered HTTP %d; poll ended, will retry", what, status)
                raise _StopPoll
            if 300 <= status < 400:
                log.error("%s: the shop redirected (HTTP %d); redirects are not followed: check base_url", what, status)
                raise _StopPoll
            if status != 200:
                log.error("%s: the shop answered HTTP %d; poll ended", what, status)
                raise _StopPoll
            body = self._read(resp)
        finally:
            resp.close()
        try:
            return resp, json.loads(body)
        except ValueError as exc:
            log.error("%s: the shop's answer is not JSON (%s); poll ended", what, exc)
            raise _StopPoll from exc

    def _read(self, resp: requests.Response) -> bytes:
        limit = self.config.max_page_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(1 << 16):
                size += len(chunk)
                if size > limit:
                    log.error("cart poll %s: a page is larger than max_page_bytes (%d); poll ended", self.name, limit)
                    raise _StopPoll
                chunks.append(chunk)
        except requests.RequestException as exc:
            log.warning("cart poll %s: the answer broke off (%s); poll ended, will retry", self.name, type(exc).__name__)
            raise _StopPoll from exc
        return b"".join(chunks)

    def _next_link(self, resp: requests.Response) -> str | None:
        link = resp.links.get("next", {}).get("url")
        if not link:
            return None
        try:
            parts = urlsplit(link)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = -1
            parts = urlsplit("")
        if parts.scheme != self._scheme or (parts.hostname or "").lower() != self._host or port != self._port:
            log.error("cart poll %s: the next-page link leads to another host; not followed, poll ended", self.name)
            return None
        return link

    def _shopify_throttle(self, resp: requests.Response) -> None:
        m = _CALL_LIMIT.match(resp.headers.get("X-Shopify-Shop-Api-Call-Limit", ""))
        if not m:
            return
        used, limit = int(m.group(1)), int(m.group(2))
        if limit > 0 and used >= 0.8 * limit:
            # the bucket leaks about 2 calls a second (standard plans): wait until it is half empty
            wait = min(10.0, (used - limit / 2) / 2.0)
            log.info("cart poll %s: API call limit %d/%d; slowing down %.1f s", self.name, used, limit, wait)
            self._sleep(wait)

    def _target_allowed(self) -> bool:
        if self.config.allow_private_targets:
            return True
        try:
            addresses = [self._host] if _is_ip(self._host) else self._resolver(self._host, self._port)
        except OSError as exc:
            log.warning("cart poll %s: cannot resolve %s (%s); poll ended, will retry", self.name, self._host, exc)
            return False
        for address in addresses or ["<none>"]:
            why = _forbidden(address)
            if why:
                log.error(
                    "cart poll %s: CONFIGURATION ERROR: %s resolves to %s (%s); orders are only fetched from public hosts",
                    self.name,
                    self._host,
                    address,
                    why,
                )
                return False
        return True

    # -- messages ----------------------------------------------------------------------------------

    def _message(self, order: dict[str, Any]) -> RawMessage | None:
        platform = self.config.platform
        oid = order.get("id")
        updated = order.get("updated_at") if platform == "shopify" else order.get("date_modified_gmt") or order.get("date_modified")
        body = json.dumps(order, separators=(",", ":"), sort_keys=True).encode()
        if oid is None or not isinstance(updated, str):
            return self._refusal(order, body, "UNREADABLE_ORDER: the shop sent an order without id or modification time")
        try:
            parse_timestamp(updated)
        except ValueError:
            return self._refusal(order, body, f"UNREADABLE_ORDER: order {_safe(str(oid))} has an unreadable modification time")
        ident, stamp = _safe(str(oid)), _safe(updated)
        return RawMessage(
            body=body,
            source=self.name,
            source_ref=f"{platform}:{self.config.partner}:{ident}:{stamp}",
            display_name=f"order {ident} updated {stamp}",
            ack_token=updated,
        )

    def _refusal(self, order: dict[str, Any], body: bytes, reason: str) -> RawMessage:
        # Stored (quarantined) so a person sees it rather than a skipped line in a log; its
        # bytes are the shop's, so reading it again is a duplicate, never a second message.
        ident = _safe(str(order.get("id")))
        log.warning("cart poll %s: %s; refused", self.name, reason)
        return RawMessage(
            body=body,
            source=self.name,
            source_ref=f"{self.config.platform}:{self.config.partner}:{ident}:refused",
            display_name=f"order {ident} (refused)",
            ack_token=None,
            rejected=reason,
        )


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)[:60] or "_"
