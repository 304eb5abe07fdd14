"""The confirmation e-mail sent back to a partner who ordered by e-mail.

It tells the buyer what the gateway understood (PO number, date, ship-to, every line with
item, quantity and price, and what happened to the order), so a misreading is caught by a
person before goods are shipped. Sending it is `gateway.smtp.send`; storing it and
delivering it durably is the caller's job.

    refusal = reply_refusal(original, own_addresses=["orders@us.example"])
    if refusal is None:
        reply = build_confirmation(
            original, to=verified_from, orders=orders, outcomes=outcomes,
            from_address="orders@us.example", now=now,
            message_id=make_message_id(inbound_key, "us.example"),
        )

When not to answer (`reply_refusal`, RFC 3834 §2 and the reliability note M6): automatic
mail (``Auto-Submitted`` other than ``no``, ``Precedence: bulk/list/junk/auto_reply``,
``X-Autoreply``/``X-Autorespond``), mailing lists (``List-*``), senders that ask not to be
answered (``X-Auto-Response-Suppress: All/AutoReply/OOF``), bounces (empty or missing
Return-Path, ``multipart/report``, mailer-daemon/postmaster/no-reply senders) and loops
(our own address, our loop header). Each answer is a sentence for the log and the UI.

Who gets it: only ``to``, the **verified From address** (`gateway.formats.email_sender`).
Reply-To is never used: nothing verifies it, so anyone could have a confirmation (with
the partner's prices and addresses) sent to a third party, or use the gateway to mail
someone else (backscatter). The Return-Path is not used either, although RFC 3834 names
it for responders in general: it is often the bounce-processing address of the
partner's mail system, which no buyer reads, and it is not what DMARC aligns.

Headers set on the reply
    From, To, Date, Subject    ``Re: <original subject>`` (one ``Re:``), or
                               ``Your order PO <n> received`` when there was none
    Message-ID                 given by the caller, so a resend after a crash carries the
                               same id and the receiving side can drop the copy;
                               `make_message_id` derives one from a stable key
    In-Reply-To, References    only ids of valid msg-id syntax (``<left@right>``, printable
                               ASCII, at most 250 characters); References keeps the first
                               id (the thread root) and the last nine
    Auto-Submitted             ``auto-replied`` (RFC 3834 §5)
    X-Auto-Response-Suppress   ``All``: Exchange/Outlook send no out-of-office or receipts
    X-Loop, X-Gateway-Loop     our own From address: we never answer mail carrying them
No ``Precedence`` header: it is not standardised, RFC 3834 points to Auto-Submitted
instead, and ``Precedence: bulk`` makes some providers file a transactional message as
bulk mail, where the buyer would not see it. Responders that ignore Auto-Submitted still
do not answer us, because the envelope sender is empty (`gateway.smtp.send`).

Everything copied from the original or from the order (subject, ids, names, addresses,
item numbers, descriptions, reasons) is treated as hostile: CR, LF and other control
characters, bidi overrides and invisible format characters are removed, lengths are
capped, and non-ASCII header text is encoded by the e-mail package (RFC 2047). A subject
such as ``Order 1\\r\\nBcc: victim@x`` stays one line of text in the Subject.

The message is built with `email.policy.SMTP` (CRLF line ends, ready to store and send);
the body is text/plain UTF-8 in quoted-printable, so it passes servers without 8BITMIME.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from itertools import zip_longest
from typing import Any, Literal

from gateway.model import Order, OrderLine, Party

__all__ = [
    "OrderOutcome",
    "OutcomeState",
    "build_confirmation",
    "clean_text",
    "is_msg_id",
    "make_message_id",
    "reply_refusal",
]

OutcomeState = Literal["accepted", "review", "rejected", "duplicate"]
_STATES: frozenset[str] = frozenset({"accepted", "review", "rejected", "duplicate"})

LOOP_HEADER = "X-Gateway-Loop"

# Caps on text copied from partner input.
_SUBJECT_MAX = 200
_FIELD_MAX = 120
_ITEM_MAX = 48
_DESCRIPTION_MAX = 160
_REASON_MAX = 500
_NOTE_MAX = 300
_NOTES_SHOWN = 5
_LINES_SHOWN = 500
_MSG_ID_MAX = 250
_REFERENCES_MAX = 10
_BODY_WIDTH = 78

# ---------------------------------------------------------------------------------------
# Text hygiene


# Bidi embeddings, overrides, isolates and marks: they can make "ABC-123" display as
# something else ("Trojan Source"). Removed everywhere.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Zero-width (non-)joiners are format characters that scripts and emoji need; kept.
_JOINERS = frozenset("\u200c\u200d")


def clean_text(value: object, limit: int = _FIELD_MAX) -> str:
    """`value` as one line of printable text of at most `limit` characters.

    Whitespace of any kind (CR, LF, tab, NEL, U+2028, ...) becomes one space; other
    control characters, surrogates, bidi controls and invisible format characters are
    removed; the result is NFC-normalised and cut with ``…`` when longer than `limit`.
    """
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)[: limit * 4 + 16])
    out: list[str] = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif ch in _BIDI:
            continue
        else:
            category = unicodedata.category(ch)
            if category in ("Cc", "Cs") or (category == "Cf" and ch not in _JOINERS):
                continue
            out.append(ch)
    cleaned = " ".join("".join(out).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: max(limit - 1, 0)].rstrip() + "…"
    return cleaned


# ---------------------------------------------------------------------------------------
# Message ids

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_MSG_ID = re.compile(rf"<[{_ATEXT}.]+@(?:[{_ATEXT}.]+|\[[\x21-\x5a\x5e-\x7e]*\])>")


def is_msg_id(value: str) -> bool:
    """True for one ``<left@right>`` id of printable ASCII, without spaces, ≤ 250 characters."""
    return len(value) <= _MSG_ID_MAX and _MSG_ID.fullmatch(value) is not None


def make_message_id(key: str, domain: str) -> str:
    """A stable Message-ID for the confirmation of the input identified by `key`.

    Use a key that survives a crash (the inbound message's id or SHA-256), so that a
    confirmation built again after a restart carries the same id and the receiving mail
    system or client can drop the second copy.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    msg_id = f"<order-confirmation.{digest}@{domain.strip().lower()}>"
    if not is_msg_id(msg_id):
        raise ValueError(f"{domain!r} is not a domain that can end a Message-ID")
    return msg_id


def _original_ids(original: EmailMessage) -> tuple[str | None, list[str]]:
    """(the original's Message-ID, the References of the reply), invalid ids dropped."""
    own = _header(original, "Message-ID").strip()
    own_id = own if is_msg_id(own) else None
    seen: set[str] = set()
    refs: list[str] = []
    for token in _header(original, "References", limit=20_000).split():
        if is_msg_id(token) and token not in seen:
            seen.add(token)
            refs.append(token)
    if own_id is not None:
        if own_id in seen:
            refs.remove(own_id)
        refs.append(own_id)
    if len(refs) > _REFERENCES_MAX:
        # Keep the thread root: clients thread by the first id as well as the last ones.
        refs = [refs[0], *refs[-(_REFERENCES_MAX - 1) :]]
    return own_id, refs


class _MsgIdListHeader(BaseHeader):
    """In-Reply-To / References as whitespace-separated msg-ids, folded only between ids.

    The stdlib treats both as unstructured text and, for an id longer than a line,
    writes RFC 2047 encoded-words, which no mail client threads on.
    """

    max_count = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        kwds["decoded"] = " ".join(str(value).split())
        kwds["parse_tree"] = None

    def fold(self, *, policy: Policy) -> str:
        name = self.name
        linesep = policy.linesep
        lines: list[str] = []
        current = f"{name}:"
        for token in str(self).split():
            if current != f"{name}:" and len(current) + 1 + len(token) > 78:
                lines.append(current)
                current = ""
            current += f" {token}"
        lines.append(current)
        return linesep.join(lines) + linesep


def _reply_policy() -> Any:
    registry = HeaderRegistry()
    registry.map_to_type("in-reply-to", _MsgIdListHeader)
    registry.map_to_type("references", _MsgIdListHeader)
    return email_policy.SMTP.clone(header_factory=registry)


_POLICY = _reply_policy()


# ---------------------------------------------------------------------------------------
# When not to reply


def _headers(msg: EmailMessage, name: str, limit: int = 2000) -> list[str]:
    """Every value of header `name` as text (a header the library cannot read counts as "")."""
    try:
        values = msg.get_all(name) or []
    except Exception:  # a malformed header must not crash the check; it reads as empty
        return [""]
    out: list[str] = []
    for v in values:
        try:
            out.append(str(v)[:limit])
        except Exception:
            out.append("")
    return out


def _header(msg: EmailMessage, name: str, limit: int = 2000) -> str:
    values = _headers(msg, name, limit)
    return values[0] if values else ""


def _addresses(msg: EmailMessage, name: str) -> list[str] | None:
    """The addr-specs of the first `name` header (lower-case); None when it cannot be read."""
    try:
        header: Any = msg[name]
        if header is None:
            return []
        if not hasattr(header, "addresses"):  # Return-Path is not an address header to the stdlib
            header = _POLICY.header_factory("To", str(header)[:2000])
        return [a.addr_spec.lower() for a in header.addresses if a.addr_spec]
    except Exception:  # unreadable address header
        return None


_ROBOT_LOCAL_PARTS = frozenset({"mailerdaemon", "postmaster", "noreply", "donotreply"})


def _is_robot(address: str) -> bool:
    local = address.rpartition("@")[0].split("+", 1)[0]
    return re.sub(r"[-_.]", "", local) in _ROBOT_LOCAL_PARTS


def _own_entry(entry: str) -> str:
    """An own_addresses entry as a lower-case addr-spec (or ``@domain``)."""
    entry = entry.strip()
    if "<" in entry:
        with contextlib.suppress(Exception):  # unreadable: compared as written
            addresses = _POLICY.header_factory("To", entry).addresses
            if len(addresses) == 1 and addresses[0].addr_spec:
                return str(addresses[0].addr_spec).lower()
    return entry.lower()


def _is_own(address: str, own: set[str]) -> bool:
    return address in own or f"@{address.rpartition('@')[2]}" in own


_LIST_HEADERS = (
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Owner",
    "List-Archive",
    "Mailing-List",
    "X-Mailing-List",
)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond")


def reply_refusal(original: EmailMessage, *, own_addresses: Collection[str]) -> str | None:
    """Why no automatic reply may be sent to `original`, as a sentence; None when one may.

    `own_addresses` are the gateway's own addresses (``orders@us.example``, also as
    ``Orders <orders@us.example>``), or ``@domain`` for every address of a domain.
    `original` must be parsed with `email.policy.default` (a header-only parse is enough).
    """
    for value in _headers(original, "Auto-Submitted"):
        keyword = value.split(";", 1)[0].strip().lower()
        if keyword != "no":
            return f"the message was sent automatically (Auto-Submitted: {clean_text(value, 60)})."
    for value in _headers(original, "Precedence"):
        if value.strip().lower() in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
            return f"the message is bulk or list mail (Precedence: {clean_text(value, 40)})."
    for name in _AUTO_REPLY_HEADERS:
        if original.get(name) is not None:
            return f"the message is itself an automatic reply ({name} header)."
    for name in _LIST_HEADERS:
        if original.get(name) is not None:
            return f"the message came through a mailing list ({name} header)."
    for value in _headers(original, "X-Auto-Response-Suppress"):
        flags = {f.strip().lower() for f in value.split(",")}
        if flags & {"all", "autoreply", "oof"}:
            return f"the sender asked for no automatic replies (X-Auto-Response-Suppress: {clean_text(value, 60)})."
    if original.get_content_type() == "multipart/report":
        return "the message is a delivery or read report (multipart/report), not an order."
    return_paths = _headers(original, "Return-Path")
    if not return_paths:
        return "the message has no Return-Path, so it cannot be told apart from a bounce."
    for value in return_paths:
        if value.strip().strip("<>").strip() == "":
            return (
                "the message has an empty Return-Path (<>): it is a bounce or an automatic message."
            )

    own = {_own_entry(a) for a in own_addresses if a.strip()}
    loop_values = _headers(original, LOOP_HEADER)
    if loop_values:
        return (
            f"the message carries our loop header {LOOP_HEADER}: answering could start a mail loop."
        )
    for value in _headers(original, "X-Loop"):
        if any(token.strip("<>").lower() in own for token in re.split(r"[\s,;]+", value) if token):
            return (
                "the message carries an X-Loop header naming our own address: answering would loop."
            )

    senders = _addresses(original, "From")
    if not senders:
        return "the sender address cannot be read."
    return_path = _addresses(original, "Return-Path") or []
    for address in [*senders, *return_path]:
        if _is_own(address, own):
            return f"the message comes from our own address {address}: answering would loop."
    for address in senders:
        if _is_robot(address):
            return f"the sender {address} is a mail system or no-reply address that nobody reads."
    return None


# ---------------------------------------------------------------------------------------
# The reply


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What the gateway did with one order of the e-mail.

    `reason` is a sentence for the buyer; it is required for ``review`` and ``rejected``.
    `po_number` is None when the order was not readable enough to find one.
    """

    po_number: str | None
    state: OutcomeState
    reason: str = ""

    def __post_init__(self) -> None:
        if self.state not in _STATES:
            raise ValueError(f"unknown outcome state {self.state!r}; use one of {sorted(_STATES)}")
        if self.state in ("review", "rejected") and not self.reason.strip():
            raise ValueError(
                f"an outcome in state {self.state!r} needs a reason the buyer can act on"
            )


def _single_address(value: str, what: str) -> tuple[str, str]:
    """(the header text, the addr-spec) of one address; ValueError when it is not exactly one."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError(f"{what} {value!r} contains control characters")
    header: Any = _POLICY.header_factory("To", value)
    addresses = list(header.addresses)
    if (
        header.defects
        or len(addresses) != 1
        or not addresses[0].username
        or not addresses[0].domain
    ):
        raise ValueError(f"{what} must be exactly one valid e-mail address, not {value!r}")
    return str(header), str(addresses[0].addr_spec)


def _subject(
    original: EmailMessage, orders: Sequence[Order], outcomes: Sequence[OrderOutcome]
) -> str:
    subject = clean_text(_header(original, "Subject", limit=4 * _SUBJECT_MAX), _SUBJECT_MAX)
    subject = re.sub(
        r"^(?:(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", "", subject, flags=re.I
    ).strip()
    if subject:
        return f"Re: {subject}"
    pos: list[str] = []
    for po in [o.po_number for o in outcomes] + [o.po_number for o in orders]:
        text = clean_text(po, 40)
        if text and text not in pos:
            pos.append(text)
    if not pos:
        return "Your order e-mail was received"
    shown = ", ".join(f"PO {p}" for p in pos[:3])
    more = f" and {len(pos) - 3} more" if len(pos) > 3 else ""
    return f"Your order{'s' if len(pos) > 1 else ''} {shown}{more} received"


def build_confirmation(
    original: EmailMessage,
    *,
    to: str,
    orders: list[Order],
    outcomes: list[OrderOutcome],
    from_address: str,
    message_id: str,
    now: dt.datetime,
) -> EmailMessage:
    """The confirmation reply to `original`, ready to send with `gateway.smtp.send`.

    `to` must be the verified From address of `original` (never its Reply-To: nothing
    verifies that one). Every order needs an outcome with its PO number; an outcome
    without an order (input too broken to build one) is listed with its reason only.
    `message_id` is ``<left@right>`` and must be the same when the reply is built again
    for the same input (`make_message_id`). `now` must carry a time zone.

    Raises ValueError for a bad `to`, `from_address`, `message_id` or `now`, or when an
    order has no outcome.
    """
    to_header, _ = _single_address(to, "the recipient")
    from_header, from_spec = _single_address(from_address, "the sender address")
    mid = message_id.strip()
    if not mid.startswith("<"):
        mid = f"<{mid}>"
    if not is_msg_id(mid):
        raise ValueError(f"message_id {message_id!r} is not a valid <left@right> Message-ID")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    sections = _pair(orders, outcomes)
    in_reply_to, references = _original_ids(original)

    msg = EmailMessage(policy=_POLICY)
    msg["From"] = from_header
    msg["To"] = to_header
    msg["Date"] = format_datetime(now)
    msg["Subject"] = _subject(original, orders, outcomes)
    msg["Message-ID"] = mid
    if in_reply_to is not None:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = from_spec
    msg[LOOP_HEADER] = from_spec
    msg.set_content(_body(original, sections), charset="utf-8", cte="quoted-printable")
    return msg


def _pair(
    orders: Sequence[Order], outcomes: Sequence[OrderOutcome]
) -> list[tuple[OrderOutcome, Order | None]]:
    """Each outcome with the first unused order of the same PO number, in outcome order."""
    unused = list(orders)
    pairs: list[tuple[OrderOutcome, Order | None]] = []
    for outcome in outcomes:
        match = next(
            (
                o
                for o in unused
                if outcome.po_number is not None and o.po_number == outcome.po_number
            ),
            None,
        )
        if match is not None:
            unused.remove(match)
        pairs.append((outcome, match))
    if unused:
        missing = ", ".join(repr(o.po_number) for o in unused)
        raise ValueError(f"orders without an outcome: {missing}; give every order an OrderOutcome")
    return pairs


# ---------------------------------------------------------------------------------------
# Body


def _state_words(outcome: OrderOutcome) -> str:
    reason = clean_text(outcome.reason, _REASON_MAX).rstrip(".")
    if outcome.state == "accepted":
        return "accepted and passed to our order system."
    if outcome.state == "review":
        return f"received; a person will check it before it is accepted because: {reason}."
    if outcome.state == "rejected":
        return f"not accepted: {reason}."
    return "already received earlier; nothing changed."


def _para(text: str, first: str = "", rest: str | None = None) -> list[str]:
    """`text` wrapped to the body width, the first line prefixed by `first`, the others by `rest`."""
    rest = " " * _width(first) if rest is None else rest
    lines = _wrap(text, _BODY_WIDTH - max(_width(first), _width(rest)))
    return [f"{first if i == 0 else rest}{line}".rstrip() for i, line in enumerate(lines)]


def _body(original: EmailMessage, sections: list[tuple[OrderOutcome, Order | None]]) -> str:
    subject = clean_text(_header(original, "Subject", limit=4 * _SUBJECT_MAX), _SUBJECT_MAX)
    count = len(sections)
    about = f' "{subject}"' if subject else ""
    noun = "order" if count == 1 else "orders"
    out: list[str] = ["Hello,", ""]
    out += _para(
        f"this is an automatic reply to your e-mail{about}. We read {count} {noun} from it. "
        "Please check below that we understood everything correctly."
    )
    for outcome, order in sections:
        out += ["", "-" * _BODY_WIDTH, ""]
        out += _order_section(outcome, order)
    out += ["", "-" * _BODY_WIDTH, ""]
    out += _closing(sections)
    return "\n".join(out) + "\n"


def _order_section(outcome: OrderOutcome, order: Order | None) -> list[str]:
    po = clean_text(outcome.po_number or (order.po_number if order else None), _FIELD_MAX)
    out = _para(po, "Order PO ", "  ") if po else ["Order without a readable PO number"]
    out += _para(_state_words(outcome), "Status: ")
    if order is None:
        return out
    out.append(f"Order date: {order.order_date.isoformat() if order.order_date else 'not stated'}")
    if order.requested_delivery_date:
        out.append(f"Requested delivery: {order.requested_delivery_date.isoformat()}")
    currency = clean_text(order.currency, 8)
    out += ["", "Ship to:"]
    address = _party_lines(order.ship_to)
    for line in address:
        out += _para(line, "  ")
    if not address:
        out.append("  (no ship-to address given)")
    out.append("")
    out += _lines_table(order.lines, currency)
    out.append("")
    for line in _totals(order, currency):
        out += _para(line)
    notes = [clean_text(n, _NOTE_MAX) for n in order.notes[:_NOTES_SHOWN]]
    notes = [n for n in notes if n]
    if notes:
        out += ["", "Notes:"]
        for note in notes:
            out += _para(note, "  ")
        if len(order.notes) > _NOTES_SHOWN:
            out.append(f"  ... and {len(order.notes) - _NOTES_SHOWN} more notes")
    return out


def _party_lines(party: Party | None) -> list[str]:
    if party is None:
        return []
    lines = [clean_text(party.name)] + [clean_text(a) for a in party.address_lines[:6]]
    place = " ".join(
        p
        for p in (clean_text(party.city), clean_text(party.region), clean_text(party.postal_code))
        if p
    )
    lines += [place, clean_text(party.country)]
    return [line for line in lines if line]


def _number(value: Decimal, min_places: int = 0) -> str:
    """A Decimal without exponent and trailing zeros, with at least `min_places` decimals."""
    text = format(value, "f")
    if len(text) > 40:  # an absurd exponent: keep the line short
        return str(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if min_places:
        whole, _, frac = text.partition(".")
        text = f"{whole}.{frac.ljust(min_places, '0')}"
    return text


def _money(value: Decimal, currency: str) -> str:
    return f"{_number(value, 2)} {currency}".rstrip()


def _item(line: OrderLine) -> str:
    for value in (line.sku, line.buyer_part_number, line.gtin):
        text = clean_text(value, _ITEM_MAX)
        if text:
            return text
    return "-"


_Column = tuple[str, bool, int]  # header, right-aligned, maximum width


def _lines_table(lines: Sequence[OrderLine], currency: str) -> list[str]:
    if not lines:
        return ["No order lines were found."]
    rows: list[list[str]] = []
    for index, line in enumerate(lines[:_LINES_SHOWN], 1):
        qty = f"{_number(line.quantity)} {clean_text(line.uom, 8)}".rstrip()
        price = _money(line.unit_price, currency) if line.unit_price is not None else "no price"
        rows.append(
            [
                clean_text(line.line_number, 12) or str(index),
                _item(line),
                clean_text(line.description, _DESCRIPTION_MAX) or "-",
                qty,
                price,
            ]
        )
    columns: list[_Column] = [
        ("Line", False, 6),
        ("Item", False, 18),
        ("Description", False, 0),
        ("Quantity", True, 14),
        ("Unit price", True, 18),
    ]
    table = _table(columns, rows)
    if len(lines) > _LINES_SHOWN:
        table += _para(
            f"... and {len(lines) - _LINES_SHOWN} more lines not shown here (they are in the totals)."
        )
    return table


def _table(columns: list[_Column], rows: list[list[str]]) -> list[str]:
    """Aligned plain-text columns; cells wrap inside their column. Width 0 = the rest."""
    gap = "  "
    widths: list[int] = []
    for i, (head, _, cap) in enumerate(columns):
        natural = max([_width(head), *(_width(r[i]) for r in rows)])
        widths.append(min(natural, cap) if cap else natural)
    flexible = [i for i, c in enumerate(columns) if c[2] == 0]
    for i in flexible:
        rest = (
            _BODY_WIDTH
            - sum(w for j, w in enumerate(widths) if j != i)
            - len(gap) * (len(columns) - 1)
        )
        widths[i] = max(min(widths[i], rest), 12, _width(columns[i][0]))

    def render(cells: Iterable[str]) -> list[str]:
        wrapped = [_wrap(cell, widths[i]) for i, cell in enumerate(cells)]
        out = []
        for parts in zip_longest(*wrapped, fillvalue=""):
            fields = [_pad(p, widths[i], columns[i][1]) for i, p in enumerate(parts)]
            out.append(gap.join(fields).rstrip())
        return out

    lines = render(c[0] for c in columns)
    lines.append(gap.join("-" * w for w in widths))
    for row in rows:
        lines += render(row)
    return lines


def _totals(order: Order, currency: str) -> list[str]:
    total = Decimal(0)
    unpriced: list[str] = []
    for index, line in enumerate(order.lines, 1):
        if line.unit_price is None:
            unpriced.append(clean_text(line.line_number, 12) or str(index))
        else:
            total += line.quantity * line.unit_price
    n = len(order.lines)
    out = [
        f"{n} line{'s' if n != 1 else ''}; sum of quantity x unit price: {_money(total, currency)}"
    ]
    if not currency:
        out.append("The order does not state a currency.")
    if unpriced:
        which = ", ".join(unpriced[:10]) + (" ..." if len(unpriced) > 10 else "")
        out.append(f"Without a unit price, so not in the sum: line {which}.")
    if order.totals is not None and order.totals.total is not None:
        out.append(f"Order total stated in your order: {_money(order.totals.total, currency)}")
    return out


def _closing(sections: list[tuple[OrderOutcome, Order | None]]) -> list[str]:
    out = _para(
        "If anything above is wrong, reply to this e-mail and tell us which PO and line is "
        "wrong and what it should be. Please check the PO numbers, the ship-to address, the "
        "item numbers, the quantities and units, and the unit prices and currency."
    )
    if any(o.state == "rejected" for o, _ in sections):
        out += [""] + _para(
            'An order marked "not accepted" was not passed on: please correct it and send it again.'
        )
    out += ["", "This message was sent automatically."]
    return out


# ---------------------------------------------------------------------------------------
# Plain-text layout by display width (wide East Asian characters take two columns,
# combining marks none), so columns stay aligned in a fixed-width font.


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(ch) for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(width - _width(text), 0)
    return fill + text if right else text + fill


def _split_at(word: str, width: int) -> tuple[str, str]:
    used = 0
    for i, ch in enumerate(word):
        w = _char_width(ch)
        if used + w > width and i > 0:
            return word[:i], word[i:]
        used += w
    return word, ""


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        while _width(word) > width:
            if current:
                lines.append(current)
                current = ""
            head, word = _split_at(word, width)
            lines.append(head)
        if not word:
            continue
        if not current:
            current = word
        elif _width(current) + 1 + _width(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    return lines
