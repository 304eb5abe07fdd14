"""Whose orders an e-mail carries: decided by who verifiably sent it, never by its From
header alone (gateway.formats.email_sender: one well-formed From address on a partner's
allow-list and, where the partner requires it, DMARC or aligned DKIM passing in the
Authentication-Results header our own MTA wrote under `authserv_id`). Reads headers only:
no network I/O (no DNS lookups either; our MTA did those).
"""

from __future__ import annotations

from typing import Any

from gateway.translate import PartnerDirectory

__all__ = ["email_partner"]

UNVERIFIED = "SENDER_UNVERIFIED"


def email_partner(body: bytes, partners: PartnerDirectory, authserv_id: str | None) -> tuple[str | None, str | None, str]:
    """(partner, None, "") for a verified sender, or (None, why not, reason code): SENDER_UNVERIFIED,
    or the reader's reason when the mail cannot be read at all (an Outlook .msg that is not one)."""
    from gateway.errors import ParseError
    from gateway.formats.email import mail_headers
    from gateway.formats.email_sender import verify_sender
    from gateway.formats.outlook import OLE_MAGIC, msg_to_email

    headers: Any
    if body.startswith(OLE_MAGIC):  # read once: an unreadable .msg is refused with the reader's reason
        try:
            headers = msg_to_email(body)
        except ParseError as exc:
            return None, exc.message, exc.reason
    else:
        headers = mail_headers(body)
    refusals = []
    for p in partners.configs:
        if not p.email_senders:
            continue
        check = verify_sender(headers, p.email_senders, p.email_require_auth, authserv_id)
        if check.ok:
            return p.name, None, ""
        if "allow-list" not in check.reason:
            refusals.append(f"{p.name}: {check.reason}")
    if refusals:
        return None, "; ".join(refusals), UNVERIFIED
    check = verify_sender(headers, [], False, None)
    who = check.address or "the sender"
    why = check.reason if "allow-list" not in check.reason else f"{who} is not an e-mail sender of any configured partner"
    return None, why, UNVERIFIED
