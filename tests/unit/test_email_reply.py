"""The confirmation reply: when not to answer, headers, threading, injection, and the body."""

from __future__ import annotations

import base64
import datetime as dt
import unicodedata
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from gateway.email_reply import (
    OrderOutcome,
    build_confirmation,
    clean_text,
    is_msg_id,
    make_message_id,
    reply_refusal,
)
from gateway.model import Order, OrderLine, Party, Totals

OWN = ["orders@gateway.test"]
NOW = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
MID = "<order-confirmation.1@gateway.test>"

_DEFAULT_HEADERS = {
    "Return-Path": "<buyer@partner.test>",
    "From": "Petra Buyer <buyer@partner.test>",
    "To": "orders@gateway.test",
    "Subject": "PO 4711",
    "Date": "Thu, 26 Nov 2026 16:02:11 +0100",
    "Message-ID": "<po4711.1@mail.partner.test>",
}


def mail(
    *extra: str, body: str = "Please see the attached order.\r\n", **headers: str | None
) -> EmailMessage:
    """An incoming e-mail as our mailbox would hold it; `headers` replace (None drops) the defaults."""
    values: dict[str, str | None] = dict(_DEFAULT_HEADERS)
    values.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = [f"{k}: {v}" for k, v in values.items() if v is not None] + list(extra)
    raw = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def order(**changes: object) -> Order:
    values: dict[str, object] = {
        "po_number": "4711",
        "order_date": dt.date(2026, 11, 26),
        "currency": "EUR",
        "channel": "email",
        "ship_to": Party(
            name="ACME Handels GmbH",
            address_lines=["Wareneingang Tor 4", "Industriestraße 12"],
            city="Köln",
            region="NW",
            postal_code="50667",
            country="DE",
        ),
        "lines": [
            OrderLine(
                line_number="10",
                sku="WID-100",
                description="Widget, blue, 20 mm",
                quantity=Decimal("12"),
                uom="EA",
                unit_price=Decimal("2.50"),
            ),
            OrderLine(
                line_number="20",
                buyer_part_number="ACME-778",
                description="Bracket",
                quantity=Decimal("3.000"),
                uom="CT",
                unit_price=Decimal("41.333"),
            ),
            OrderLine(
                line_number="30",
                gtin="04012345678901",
                description="Screws M4",
                quantity=Decimal("500"),
                uom="PCE",
                unit_price=Decimal("0.04"),
            ),
        ],
    }
    values.update(changes)
    return Order.model_validate(values)


def reply(
    original: EmailMessage | None = None,
    orders: list[Order] | None = None,
    outcomes: list[OrderOutcome] | None = None,
    **kw: Any,
) -> EmailMessage:
    orders = [order()] if orders is None else orders
    if outcomes is None:
        outcomes = [OrderOutcome(o.po_number, "accepted") for o in orders]
    args: dict[str, Any] = {
        "to": "buyer@partner.test",
        "from_address": "Orders <orders@gateway.test>",
        "message_id": MID,
        "now": NOW,
    }
    args.update(kw)
    return build_confirmation(
        original if original is not None else mail(), orders=orders, outcomes=outcomes, **args
    )


def wire(msg: EmailMessage) -> tuple[bytes, EmailMessage]:
    """The bytes that would be sent, and those bytes parsed back as a receiver would."""
    raw = msg.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def head(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def width(text: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )


# --------------------------------------------------------------------------------------
# reply_refusal: one test per rule


def test_an_ordinary_order_mail_may_be_answered() -> None:
    assert reply_refusal(mail(), own_addresses=OWN) is None


def test_auto_submitted_no_may_be_answered() -> None:
    assert reply_refusal(mail("Auto-Submitted: no"), own_addresses=OWN) is None


@pytest.mark.parametrize(
    "value",
    ["auto-replied", "auto-generated", "auto-notified; owner-email=x@y.test", "AUTO-GENERATED"],
)
def test_auto_submitted_is_refused(value: str) -> None:
    """reliability M6: never reply to Auto-Submitted other than "no" (loops, backscatter)."""
    why = reply_refusal(mail(f"Auto-Submitted: {value}"), own_addresses=OWN)
    assert why is not None and "automatically" in why


@pytest.mark.parametrize("value", ["bulk", "list", "junk", "auto_reply", "Bulk"])
def test_precedence_is_refused(value: str) -> None:
    why = reply_refusal(mail(f"Precedence: {value}"), own_addresses=OWN)
    assert why is not None and "Precedence" in why


def test_precedence_first_class_may_be_answered() -> None:
    assert reply_refusal(mail("Precedence: first-class"), own_addresses=OWN) is None


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: Orders <orders.lists.partner.test>",
        "List-Unsubscribe: <mailto:leave@lists.partner.test>",
        "List-Post: <mailto:orders@lists.partner.test>",
    ],
)
def test_list_headers_are_refused(header: str) -> None:
    why = reply_refusal(mail(header), own_addresses=OWN)
    assert why is not None and "mailing list" in why and header.split(":")[0] in why


@pytest.mark.parametrize("value", ["All", "AutoReply", "OOF", "DR, OOF", "dr,autoreply"])
def test_x_auto_response_suppress_is_refused(value: str) -> None:
    why = reply_refusal(mail(f"X-Auto-Response-Suppress: {value}"), own_addresses=OWN)
    assert why is not None and "no automatic replies" in why


def test_x_auto_response_suppress_of_receipts_only_may_be_answered() -> None:
    # DR/RN/NRN suppress delivery and read receipts, not replies.
    assert reply_refusal(mail("X-Auto-Response-Suppress: DR, RN, NRN"), own_addresses=OWN) is None


def test_missing_return_path_is_refused() -> None:
    why = reply_refusal(mail(Return_Path=None), own_addresses=OWN)
    assert why is not None and "no Return-Path" in why


@pytest.mark.parametrize("value", ["<>", "< >", ""])
def test_empty_return_path_is_refused(value: str) -> None:
    why = reply_refusal(mail(Return_Path=value), own_addresses=OWN)
    assert why is not None and "empty Return-Path" in why


def test_mail_from_our_own_address_is_refused() -> None:
    why = reply_refusal(
        mail(From="Orders <Orders@Gateway.test>", Return_Path="<orders@gateway.test>"),
        own_addresses=OWN,
    )
    assert why is not None and "our own address" in why


def test_own_addresses_may_carry_a_display_name() -> None:
    why = reply_refusal(
        mail(From="orders@gateway.test"), own_addresses=["Orders <Orders@gateway.test>"]
    )
    assert why is not None and "our own address" in why


def test_mail_from_our_own_domain_is_refused() -> None:
    why = reply_refusal(
        mail(From="billing@gateway.test", Return_Path="<billing@gateway.test>"),
        own_addresses=["@gateway.test"],
    )
    assert why is not None and "our own address" in why


def test_return_path_of_our_own_address_is_refused() -> None:
    why = reply_refusal(mail(Return_Path="<orders@gateway.test>"), own_addresses=OWN)
    assert why is not None and "our own address" in why


@pytest.mark.parametrize(
    "local",
    [
        "MAILER-DAEMON",
        "postmaster",
        "noreply",
        "no-reply",
        "do-not-reply",
        "donotreply",
        "no_reply+po4711",
    ],
)
def test_robot_senders_are_refused(local: str) -> None:
    why = reply_refusal(mail(From=f"Partner <{local}@partner.test>"), own_addresses=OWN)
    assert why is not None and "nobody reads" in why


def test_our_loop_header_is_refused() -> None:
    why = reply_refusal(mail("X-Gateway-Loop: orders@other-gateway.test"), own_addresses=OWN)
    assert why is not None and "X-Gateway-Loop" in why


def test_x_loop_naming_us_is_refused() -> None:
    why = reply_refusal(mail("X-Loop: orders@gateway.test"), own_addresses=OWN)
    assert why is not None and "X-Loop" in why


def test_x_loop_naming_someone_else_may_be_answered() -> None:
    assert reply_refusal(mail("X-Loop: helpdesk@partner.test"), own_addresses=OWN) is None


@pytest.mark.parametrize("header", ["X-Autoreply: yes", "X-Autorespond: vacation"])
def test_other_auto_reply_markers_are_refused(header: str) -> None:
    why = reply_refusal(mail(header), own_addresses=OWN)
    assert why is not None and "automatic reply" in why


def test_multipart_report_is_refused() -> None:
    why = reply_refusal(
        mail(
            'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"',
            body="--b\r\n\r\nx\r\n--b--\r\n",
        ),
        own_addresses=OWN,
    )
    assert why is not None and "multipart/report" in why


def test_unreadable_sender_is_refused() -> None:
    why = reply_refusal(mail(From=None), own_addresses=OWN)
    assert why is not None and "cannot be read" in why


BOUNCE = b"""Return-Path: <>
Delivered-To: orders@gateway.test
Date: Thu, 26 Nov 2026 16:05:02 +0100 (CET)
From: MAILER-DAEMON@mx1.partner.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: orders@gateway.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="8A1F23C0D1.1795621502/mx1.partner.test"
Message-Id: <20261126150502.8A1F23C0D1@mx1.partner.test>

This is a MIME-encapsulated message.

--8A1F23C0D1.1795621502/mx1.partner.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<purchasing@partner.test>: host mx1.partner.test said: 550 5.1.1 User unknown

--8A1F23C0D1.1795621502/mx1.partner.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.partner.test
Arrival-Date: Thu, 26 Nov 2026 16:05:01 +0100 (CET)

Final-Recipient: rfc822; purchasing@partner.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--8A1F23C0D1.1795621502/mx1.partner.test--
""".replace(b"\n", b"\r\n")


def test_a_real_bounce_is_refused() -> None:
    bounce = message_from_bytes(BOUNCE, policy=policy.default)
    assert isinstance(bounce, EmailMessage)
    assert reply_refusal(bounce, own_addresses=OWN) is not None
    # Each of its marks on its own is enough.
    del bounce["Auto-Submitted"]
    assert "multipart/report" in (reply_refusal(bounce, own_addresses=OWN) or "")


MAILING_LIST = b"""Return-Path: <orders-bounces+orders=gateway.test@lists.partner.test>
From: Petra Buyer <buyer@partner.test>
To: orders@lists.partner.test
Subject: [orders] PO 4712 for next week
Message-ID: <po4712@mail.partner.test>
Date: Thu, 26 Nov 2026 16:10:00 +0100
Precedence: list
List-Id: Partner orders <orders.lists.partner.test>
List-Unsubscribe: <https://lists.partner.test/postorius/lists/orders.lists.partner.test/>,
 <mailto:orders-leave@lists.partner.test>
List-Post: <mailto:orders@lists.partner.test>
List-Help: <mailto:orders-request@lists.partner.test?subject=help>
Sender: orders-bounces@lists.partner.test
Errors-To: orders-bounces@lists.partner.test

Please deliver PO 4712.
""".replace(b"\n", b"\r\n")


def test_a_real_mailing_list_message_is_refused() -> None:
    listed = message_from_bytes(MAILING_LIST, policy=policy.default)
    assert isinstance(listed, EmailMessage)
    why = reply_refusal(listed, own_addresses=OWN)
    assert why is not None and ("list" in why)
    del listed["Precedence"]
    assert "mailing list" in (reply_refusal(listed, own_addresses=OWN) or "")


def test_refusals_are_short_sentences() -> None:
    cases = [
        mail("Auto-Submitted: auto-replied"),
        mail(Return_Path=None),
        mail("List-Id: <x.y>"),
        mail(From="noreply@partner.test"),
    ]
    for case in cases:
        why = reply_refusal(case, own_addresses=OWN)
        assert why is not None and why.endswith(".") and len(why) < 200 and "\n" not in why


def test_our_own_reply_would_never_be_answered() -> None:
    raw, _ = wire(reply())
    looped = message_from_bytes(b"Return-Path: <>\r\n" + raw, policy=policy.default)
    assert isinstance(looped, EmailMessage)
    assert reply_refusal(looped, own_addresses=OWN) is not None
    # Even relayed with a real Return-Path and Auto-Submitted stripped, the loop headers stop it.
    relayed = message_from_bytes(
        b"Return-Path: <relay@partner.test>\r\n" + raw, policy=policy.default
    )
    assert isinstance(relayed, EmailMessage)
    del relayed["Auto-Submitted"]
    del relayed["X-Auto-Response-Suppress"]
    assert "loop" in (reply_refusal(relayed, own_addresses=OWN) or "")


# --------------------------------------------------------------------------------------
# Headers


def test_reply_headers() -> None:
    raw, got = wire(reply())
    assert got["From"] == "Orders <orders@gateway.test>"
    assert got["To"] == "buyer@partner.test"
    assert got["Subject"] == "Re: PO 4711"
    assert got["Message-ID"] == MID
    assert got["Date"].datetime == NOW
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["X-Gateway-Loop"] == "orders@gateway.test"
    assert got["X-Loop"] == "orders@gateway.test"
    assert got["Precedence"] is None  # decided against; see the module docstring
    assert got.get_content_type() == "text/plain"
    assert got.get_content_charset() == "utf-8"
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_reply_goes_to_the_verified_sender_not_to_reply_to() -> None:
    original = mail("Reply-To: Accounts <collector@elsewhere.test>", "Cc: boss@partner.test")
    _, got = wire(reply(original, to="buyer@partner.test"))
    assert [a.addr_spec for a in got["To"].addresses] == ["buyer@partner.test"]
    assert b"elsewhere" not in got.as_bytes() and got["Cc"] is None and got["Bcc"] is None


def test_message_id_is_the_callers_so_a_rebuild_is_identical() -> None:
    key_id = make_message_id("inbound:42:sha256:ab12", "Gateway.test")
    assert key_id == make_message_id("inbound:42:sha256:ab12", "gateway.test") and is_msg_id(key_id)
    assert key_id != make_message_id("inbound:43:sha256:ab12", "gateway.test")
    first, second = reply(message_id=key_id), reply(message_id=key_id)
    assert first.as_bytes() == second.as_bytes()
    assert first["Message-ID"] == key_id
    assert reply(message_id="plain.id@gateway.test")["Message-ID"] == "<plain.id@gateway.test>"


@pytest.mark.parametrize(
    "bad",
    [
        "<no-at-sign>",
        "<a b@x.test>",
        "<a@x.test>\r\nBcc: v@x.test",
        "<ü@x.test>",
        "<" + "a" * 250 + "@x.test>",
    ],
)
def test_a_bad_message_id_from_the_caller_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        reply(message_id=bad)


@pytest.mark.parametrize(
    "kw",
    [
        {"to": "a@partner.test, b@partner.test"},
        {"to": "not an address"},
        {"to": "buyer@partner.test\r\nBcc: v@x.test"},
        {"from_address": "orders"},
        {"now": dt.datetime(2026, 11, 27, 9, 30)},
    ],
)
def test_bad_arguments_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        reply(**kw)


# --------------------------------------------------------------------------------------
# Threading


def test_in_reply_to_and_references() -> None:
    original = mail(References="<root@partner.test> <second@partner.test>")
    _, got = wire(reply(original))
    assert got["In-Reply-To"] == "<po4711.1@mail.partner.test>"
    assert got["References"].split() == [
        "<root@partner.test>",
        "<second@partner.test>",
        "<po4711.1@mail.partner.test>",
    ]


def test_no_message_id_no_in_reply_to() -> None:
    _, got = wire(reply(mail(Message_ID=None)))
    assert got["In-Reply-To"] is None and got["References"] is None


@pytest.mark.parametrize(
    "hostile",
    [
        "<no-at-sign>",
        "plain@partner.test",
        "<a b@partner.test>",
        "<" + "a" * 250 + "@partner.test>",
        "<bestellung-ü@partner.test>",
        "=?utf-8?q?=3Cx=0D=0ABcc:_victim@x.test=3E?=",
        "<x@partner.test>(comment)",
    ],
)
def test_hostile_message_ids_are_dropped(hostile: str) -> None:
    original = mail(Message_ID=hostile, References=f"{hostile} <ok@partner.test>")
    raw, got = wire(reply(original))
    assert got["In-Reply-To"] is None
    assert got["References"].split() == ["<ok@partner.test>"]
    assert b"victim" not in raw and got["Bcc"] is None


def test_references_are_capped_keeping_the_root() -> None:
    refs = " ".join(f"<r{i}@partner.test>" for i in range(15))
    _, got = wire(reply(mail(References=f"{refs} <r3@partner.test> junk")))
    ids = got["References"].split()
    assert len(ids) == 10
    assert ids[0] == "<r0@partner.test>"
    assert ids[-1] == "<po4711.1@mail.partner.test>"
    assert ids[1:-1] == [f"<r{i}@partner.test>" for i in range(7, 15)]


def test_long_message_ids_are_never_encoded_words() -> None:
    long_id = "<" + "A1b2" * 55 + "@mail.partner.test>"  # 239 characters, valid
    assert is_msg_id(long_id)
    original = mail(Message_ID=long_id, References=f"<root@partner.test> {long_id}")
    raw, got = wire(reply(original))
    assert b"=?" not in head(raw)
    assert got["In-Reply-To"] == long_id
    assert got["References"].split() == ["<root@partner.test>", long_id]
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


# --------------------------------------------------------------------------------------
# Subject and injection


def test_subject_injection_cannot_add_a_header() -> None:
    """reliability M6: a CR/LF smuggled into the subject never becomes a header of the reply."""
    original = mail(Subject="=?UTF-8?Q?Order_1=0D=0ABcc:_victim@x?=")
    assert "\r\n" in str(original["Subject"])  # what the decoded original holds
    raw, got = wire(reply(original))
    assert got["Bcc"] is None
    assert len(got.get_all("Subject") or []) == 1
    assert got["Subject"] == "Re: Order 1 Bcc: victim@x"
    assert b"\nBcc:" not in raw and b"\rBcc:" not in raw


def test_po_number_injection_in_the_fallback_subject() -> None:
    o = order(po_number="4711\r\nBcc: victim@x")
    raw, got = wire(
        reply(mail(Subject=None), orders=[o], outcomes=[OrderOutcome(o.po_number, "accepted")])
    )
    assert got["Bcc"] is None
    assert got["Subject"] == "Your order PO 4711 Bcc: victim@x received"


def test_unicode_subject_round_trips_as_encoded_words() -> None:
    text = "Bestellung Müller – 注文 №5"
    encoded = "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="
    raw, got = wire(reply(mail(Subject=encoded)))
    assert head(raw).isascii()
    assert got["Subject"] == f"Re: {text}"


@pytest.mark.parametrize(
    "subject", ["Re: PO 4711", "RE: re: PO 4711", "AW: Re[2]: PO 4711", "Sv:PO 4711"]
)
def test_no_re_doubling(subject: str) -> None:
    assert wire(reply(mail(Subject=subject)))[1]["Subject"] == "Re: PO 4711"


def test_subject_without_text_names_the_po_numbers() -> None:
    assert reply(mail(Subject=None))["Subject"] == "Your order PO 4711 received"
    assert reply(mail(Subject="  Re:  "))["Subject"] == "Your order PO 4711 received"
    orders = [order(po_number=f"PO-{i}") for i in range(5)]
    outcomes = [OrderOutcome(o.po_number, "accepted") for o in orders]
    assert reply(mail(Subject=None), orders=orders, outcomes=outcomes)["Subject"] == (
        "Your orders PO PO-0, PO PO-1, PO PO-2 and 2 more received"
    )


def test_subject_hostile_characters_and_length() -> None:
    hostile = "PO\u202e1174\u202c 4711\x00\x07\t" + "x" * 1000
    _, got = wire(
        reply(mail(Subject="=?UTF-8?B?" + base64.b64encode(hostile.encode()).decode() + "?="))
    )
    subject = str(got["Subject"])
    assert "\u202e" not in subject and "\x00" not in subject and "\x07" not in subject
    assert subject.startswith("Re: PO1174 4711 xxx") and subject.endswith("…")
    assert len(subject) == len("Re: ") + 200


def test_clean_text() -> None:
    assert clean_text("a\r\nb\tc\u2028d\x85e") == "a b c d e"
    assert clean_text("evil\u202egnp.exe\u2066x\u2069") == "evilgnp.exex"
    assert clean_text("zero\u200bwidth \ufeffbom \u200dzwj") == "zerowidth bom \u200dzwj"
    assert clean_text("x" * 50, 10) == "x" * 9 + "…"
    assert clean_text(None) == "" and clean_text("  \r\n ") == ""
    assert clean_text("bad\udcffsurrogate") == "badsurrogate"


# --------------------------------------------------------------------------------------
# Body


def body(msg: EmailMessage) -> str:
    _, got = wire(msg)
    content = got.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_body_shows_what_we_understood() -> None:
    text = body(reply())
    assert "Order PO 4711" in text
    assert "Order date: 2026-11-26" in text
    assert "Status: accepted and passed to our order system." in text
    for part in (
        "ACME Handels GmbH",
        "Wareneingang Tor 4",
        "Industriestraße 12",
        "Köln NW 50667",
        "DE",
    ):
        assert f"  {part}\n" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line[:2] in ("10", "20", "30")}
    assert rows["10"].split() == [
        "10",
        "WID-100",
        "Widget,",
        "blue,",
        "20",
        "mm",
        "12",
        "EA",
        "2.50",
        "EUR",
    ]
    assert rows["20"].split() == ["20", "ACME-778", "Bracket", "3", "CT", "41.333", "EUR"]
    assert rows["30"].split() == [
        "30",
        "04012345678901",
        "Screws",
        "M4",
        "500",
        "PCE",
        "0.04",
        "EUR",
    ]
    # 12 x 2.50 + 3 x 41.333 + 500 x 0.04 = 30 + 123.999 + 20
    assert "3 lines; sum of quantity x unit price: 173.999 EUR" in text
    assert "If anything above is wrong, reply to this e-mail" in text
    assert "the quantities and units, and the unit prices and currency" in " ".join(text.split())


def test_body_columns_line_up() -> None:
    text = body(reply())
    table = [
        line
        for line in text.splitlines()
        if line.startswith(("Line ", "10 ", "20 ", "30 ", "----  "))
    ]
    assert len(table) == 5
    assert len({width(line) for line in table}) == 1
    header = table[0]
    assert header.split() == ["Line", "Item", "Description", "Quantity", "Unit", "price"]


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (OrderOutcome("4711", "accepted"), "Status: accepted and passed to our order system."),
        (
            OrderOutcome("4711", "review", "the price of line 20 differs from the contract price"),
            "Status: received; a person will check it before it is accepted because: the\n        price of line 20 differs from the contract price.",
        ),
        (
            OrderOutcome("4711", "rejected", "ship-to address is missing a postal code."),
            "Status: not accepted: ship-to address is missing a postal code.",
        ),
        (OrderOutcome("4711", "duplicate"), "Status: already received earlier; nothing changed."),
    ],
)
def test_body_states_in_words(outcome: OrderOutcome, words: str) -> None:
    text = body(reply(outcomes=[outcome]))
    assert words in text
    assert ("please correct it and" in text) == (outcome.state == "rejected")


def test_outcome_needs_a_reason_to_review_or_reject() -> None:
    with pytest.raises(ValueError):
        OrderOutcome("4711", "rejected")
    with pytest.raises(ValueError):
        OrderOutcome("4711", "review", "  ")
    with pytest.raises(ValueError):
        OrderOutcome("4711", "lost", "x")  # type: ignore[arg-type]


def test_every_order_needs_an_outcome() -> None:
    with pytest.raises(ValueError, match="'4712'"):
        reply(
            orders=[order(), order(po_number="4712")], outcomes=[OrderOutcome("4711", "accepted")]
        )


def test_an_outcome_without_an_order_is_listed_with_its_reason() -> None:
    outcomes = [
        OrderOutcome("4711", "accepted"),
        OrderOutcome(None, "rejected", "the attachment order.xlsx cannot be read"),
    ]
    text = body(reply(outcomes=outcomes))
    assert "We read 2 orders from it." in text
    assert (
        "Order without a readable PO number\nStatus: not accepted: the attachment order.xlsx cannot be read."
        in text
    )


def test_two_orders_with_the_same_po_number_each_get_their_outcome() -> None:
    first, second = order(), order(order_date=dt.date(2026, 11, 27))
    outcomes = [OrderOutcome("4711", "accepted"), OrderOutcome("4711", "duplicate")]
    text = body(reply(orders=[first, second], outcomes=outcomes))
    assert (
        text.index("Order date: 2026-11-26")
        < text.index("already received earlier")
        < text.index("Order date: 2026-11-27")
    )


def test_long_and_unicode_descriptions_stay_readable() -> None:
    long_description = "Edelstahl-Sechskantschraube DIN 933 M8x40 A2 verzinkt, " * 10
    lines = [
        OrderLine(
            line_number="1",
            sku="SKU-" + "9" * 60,
            description=long_description,
            quantity=Decimal("1000"),
            uom="PCE",
            unit_price=Decimal("0.125"),
        ),
        OrderLine(
            line_number="2",
            sku="JP-1",
            description="六角ボルト ステンレス 注文品 " * 4,
            quantity=Decimal("2"),
            uom="EA",
            unit_price=Decimal("12"),
        ),
        OrderLine(
            line_number="3",
            sku="E-1",
            description="Café crème\u0301 e\u0301clair",
            quantity=Decimal("1.5"),
            uom="KG",
            unit_price=Decimal("8"),
        ),
    ]
    text = body(reply(orders=[order(lines=lines)]))
    assert all(width(line) <= 78 for line in text.splitlines()), [
        line for line in text.splitlines() if width(line) > 78
    ]
    assert "Edelstahl-Sechskantschraube" in text and "DIN 933 M8x40 A2 verzinkt," in text
    assert long_description.strip() not in " ".join(text.split())  # capped
    assert "…" in text
    assert "SKU-999" in text and "六角ボルト" in text
    starts = [
        line
        for line in text.splitlines()
        if line[:2] in ("1 ", "2 ", "3 ") and "lines;" not in line
    ]
    assert (
        len(starts) == 3 and len({width(line) for line in starts}) == 1
    )  # the price column ends in one place
    assert "3 lines; sum of quantity x unit price: 161.00 EUR" in text


def test_hostile_text_in_the_order_is_cleaned() -> None:
    o = order(
        ship_to=Party(
            name="ACME\r\nBcc: victim@x",
            address_lines=["Street\u202e 1"],
            city="Köln",
            country="DE",
        ),
        lines=[
            OrderLine(
                line_number="1",
                sku="A\x00B",
                description="line one\r\n\r\n-- \r\nfake signature",
                quantity=Decimal("1"),
                unit_price=Decimal("1"),
            )
        ],
        notes=["Deliver\tto gate\u20284"],
    )
    text = body(reply(orders=[o]))
    assert "  ACME Bcc: victim@x\n" in text
    assert "  Street 1\n" in text and "\u202e" not in text
    assert "AB" in text and "\x00" not in text
    assert "line one -- fake" in " ".join(text.split())
    assert "  Deliver to gate 4\n" in text


def test_missing_prices_dates_and_currency_are_said() -> None:
    o = order(
        order_date=None,
        currency=None,
        ship_to=None,
        lines=[
            OrderLine(line_number="1", sku="A", quantity=Decimal("2"), unit_price=Decimal("5")),
            OrderLine(line_number="2", sku="B", quantity=Decimal("1")),
        ],
        totals=Totals(total=Decimal("10.00")),
    )
    text = body(reply(orders=[o]))
    assert "Order date: not stated" in text
    assert "(no ship-to address given)" in text
    assert "no price" in text
    assert "2 lines; sum of quantity x unit price: 10.00" in text
    assert "The order does not state a currency." in text
    assert "Without a unit price, so not in the sum: line 2." in text
    assert "Order total stated in your order: 10.00" in text


def test_an_order_without_lines() -> None:
    text = body(reply(orders=[order(lines=[])]))
    assert (
        "No order lines were found." in text
        and "0 lines; sum of quantity x unit price: 0.00 EUR" in text
    )
