"""Webhook signature checks: HMAC-SHA256 over the raw request body, base64-encoded.

Shopify (``X-Shopify-Hmac-Sha256``) and WooCommerce (``X-WC-Webhook-Signature``) sign the same
way. The check runs on the bytes exactly as received, before anything parses them: a
signature computed over re-serialized JSON, a hex digest, a truncated value or a missing
header all fail. Comparison is constant time (`hmac.compare_digest`), and every configured
secret is tried, so the time taken does not tell which secret matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

#: Shorter secrets are refused: an empty one (an unset variable with an empty default) would
#: let anybody sign a delivery.
MIN_SECRET_LENGTH = 16

__all__ = ["sign_hmac_base64", "verify_hmac_base64"]


def sign_hmac_base64(body: bytes, secret: bytes) -> str:
    """The signature a shop sends for `body`: base64 of HMAC-SHA256 keyed with `secret`."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode("ascii")


def verify_hmac_base64(body: bytes, header: str | None, secrets: Iterable[bytes]) -> bool:
    """True when `header` is the base64 HMAC-SHA256 of the raw `body` under one of `secrets`."""
    if not header:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    ok = False
    for secret in secrets:
        if not secret:
            continue  # an empty key would accept signatures anybody can compute
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
        ok |= hmac.compare_digest(expected, given)
    return ok
