"""Is an e-mail really from a partner? (reliability.md M5)

`verify_sender(msg, allowed, require_auth, authserv_id)` passes only when
    - the message has exactly one From header holding exactly one address, read with the
      new e-mail API (`msg["From"].addresses`, `policy.default`) and with no header defects.
      `email.utils.parseaddr` is never used: on Python 3.11.7 it returns
      ``orders@partner.example`` for ``From: orders@partner.example <attacker@evil.example>``;
      the new API flags that header with a defect, so it is refused here;
    - the address, or ``@`` + its domain, is on the allow-list (case-insensitive);
    - with `require_auth`: the topmost Authentication-Results header whose authserv-id is
      `authserv_id` (our own MTA; headers from anyone else are ignored, since a sender can
      write any it likes below ours) shows ``dmarc=pass`` (with header.from, when given,
      equal to the From domain) or ``dkim=pass`` with ``header.d`` aligned with the From
      domain (equal, or one a subdomain of the other: relaxed alignment without a public
      suffix list).

The message must have been parsed with `email.policy.default` (an `EmailMessage`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

__all__ = ["SenderCheck", "parse_authentication_results", "verify_sender"]


@dataclass(frozen=True, slots=True)
class SenderCheck:
    ok: bool
    address: str | None  # the From address (lower-case) when one could be read
    reason: str  # why it failed, a sentence; "" when ok


def verify_sender(msg: Message, allowed: list[str], require_auth: bool, authserv_id: str | None) -> SenderCheck:
    """Check the From address of `msg` against `allowed` and, if asked, our MTA's verdict."""
    try:
        headers = msg.get_all("From") or []
        if len(headers) != 1:
            return SenderCheck(False, None, f"the message has {len(headers)} From headers; exactly one is required")
        header: Any = msg["From"]
        if not hasattr(header, "addresses"):
            return SenderCheck(False, None, "the message was not parsed with email.policy.default; the From address cannot be checked")
        defects = list(getattr(header, "defects", ()))
        addresses = list(header.addresses)
    except Exception as exc:  # a header the library cannot parse is a failed check, never a crash
        return SenderCheck(False, None, f"the From header cannot be read ({type(exc).__name__})")
    if defects:
        names = ", ".join(sorted({type(d).__name__ for d in defects}))
        return SenderCheck(False, None, f"the From header is malformed ({names}): {str(header)[:200]!r}")
    if len(addresses) != 1:
        return SenderCheck(False, None, f"the From header holds {len(addresses)} addresses; exactly one is required")
    address = (addresses[0].addr_spec or "").strip().lower()
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        return SenderCheck(False, address or None, f"the From address {address!r} has no domain")
    allow = {a.strip().lower() for a in allowed if a.strip()}
    if address not in allow and f"@{domain}" not in allow:
        return SenderCheck(False, address, f"{address} is not on the partner allow-list")
    if not require_auth:
        return SenderCheck(True, address, "")
    if not authserv_id:
        return SenderCheck(
            False, address, "sender authentication is required but no authserv-id of our mail server is configured"
        )
    results = None
    for value in msg.get_all("Authentication-Results") or []:
        parsed = parse_authentication_results(str(value))
        if parsed is not None and parsed[0] == authserv_id.lower():
            results = parsed[1]
            break
    if results is None:
        return SenderCheck(False, address, f"no Authentication-Results header from our mail server ({authserv_id}) is on the message")
    for method, result, props in results:
        if method == "dmarc" and result == "pass":
            hfrom = props.get("header.from")
            if hfrom is None or hfrom == domain:
                return SenderCheck(True, address, "")
        if method == "dkim" and result == "pass":
            d = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if d and _aligned(d, domain):
                return SenderCheck(True, address, "")
    summary = ", ".join(f"{m}={r}" for m, r, _ in results) or "no results"
    return SenderCheck(
        False, address, f"our mail server ({authserv_id}) shows no DMARC or aligned DKIM pass for {domain} ({summary})"
    )


def _aligned(d: str, domain: str) -> bool:
    d = d.rstrip(".")
    return d == domain or domain.endswith("." + d) or d.endswith("." + domain)


_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_PROP = re.compile(r"([A-Za-z0-9_.-]+)\s*=\s*(\S+)")


def _strip_comments(value: str) -> str:
    previous = None
    while previous != value:  # nested comments, innermost first; bounded by the length
        previous, value = value, _COMMENT.sub(" ", value)
    return value


def parse_authentication_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]] | None:
    """(authserv-id, [(method, result, {property: value})]) of one header (RFC 8601), all lower-case.

    None when the header has no authserv-id. Comments are dropped, quoted values unquoted.
    """
    text = _strip_comments(" ".join(value[:8192].split()))
    text = _QUOTED.sub(lambda m: m.group(1).replace(";", " ").replace(" ", "_"), text)
    parts = [p.strip() for p in text.split(";")]
    head = parts[0].split()
    if not head:
        return None
    results: list[tuple[str, str, dict[str, str]]] = []
    for part in parts[1:]:
        pairs = _PROP.findall(part)
        if not pairs:
            continue
        method, result = pairs[0][0].lower(), pairs[0][1].lower()
        props = {k.lower(): v.lower() for k, v in pairs[1:]}
        results.append((method.split("/")[0], result, props))
    return head[0].lower(), results
