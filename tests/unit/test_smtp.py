"""gateway.smtp.send against a real SMTP server in the test process (tests/support/smtp_sink.py)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.email_reply import OrderOutcome, build_confirmation, make_message_id
from gateway.errors import PermanentError, TransientError
from gateway.smtp import SmtpConfig, send
from tests.support.smtp_sink import PASSWORD, SmtpSink, running_smtp_sink, smtp_sink_fixture
from tests.unit.test_email_reply import mail, order

smtp_sink = smtp_sink_fixture()
smtp_starttls = smtp_sink_fixture(starttls=True)
smtp_auth = smtp_sink_fixture(starttls=True, auth=True)
smtp_ssl_auth = smtp_sink_fixture(implicit_tls=True, auth=True)


def confirmation(**kw: object) -> EmailMessage:
    original = mail(**kw)  # type: ignore[arg-type]
    return build_confirmation(
        original,
        to="buyer@partner.test",
        orders=[order()],
        outcomes=[OrderOutcome("4711", "accepted")],
        from_address="Orders <orders@gateway.test>",
        message_id=make_message_id("inbound-1", "gateway.test"),
        now=dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC),
    )


def config(sink: SmtpSink, **overrides: object) -> SmtpConfig:
    return SmtpConfig(**sink.config(**overrides))


# --------------------------------------------------------------------------------------
# Delivery


def test_plain_send_arrives_as_built(smtp_sink: SmtpSink) -> None:
    msg = confirmation()
    send(msg, config(smtp_sink))
    (got,) = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ["buyer@partner.test"]
    assert not got.tls and got.login is None
    assert got.message["Message-ID"] == msg["Message-ID"]
    assert got.message["Subject"] == "Re: PO 4711"
    assert got.message["In-Reply-To"] == "<po4711.1@mail.partner.test>"
    assert got.message["Auto-Submitted"] == "auto-replied"
    content = got.message.get_content()
    assert "Order PO 4711" in content and "WID-100" in content and "Köln NW 50667" in content


def test_envelope_sender_is_null_by_default(smtp_sink: SmtpSink) -> None:
    send(confirmation(), config(smtp_sink))
    (got,) = smtp_sink.wait_for(1)
    assert got.mail_from == "<>"  # MAIL FROM:<>
    assert got.message["From"] == "Orders <orders@gateway.test>"  # the header is unchanged


def test_envelope_sender_when_given(smtp_sink: SmtpSink) -> None:
    send(confirmation(), config(smtp_sink), envelope_from="bounces@gateway.test")
    assert smtp_sink.wait_for(1)[0].mail_from == "bounces@gateway.test"


def test_recipients_come_from_the_headers_and_bcc_stays_off_the_wire(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"] = "orders@gateway.test"
    msg["To"] = "Buyer <buyer@partner.test>"
    msg["Cc"] = "boss@partner.test, BUYER@partner.test"
    msg["Bcc"] = "archive@gateway.test"
    msg["Subject"] = "x"
    msg.set_content("x")
    send(msg, config(smtp_sink))
    (got,) = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ["buyer@partner.test", "boss@partner.test", "archive@gateway.test"]
    assert got.message["Bcc"] is None and b"archive@" not in got.raw


def test_a_message_without_recipients_is_refused_before_connecting(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"] = "orders@gateway.test"
    msg.set_content("x")
    with pytest.raises(PermanentError, match="cannot be sent: the message has no recipient"):
        send(msg, config(smtp_sink))
    assert smtp_sink.attempts["MAIL"] == 0


@pytest.mark.parametrize(
    "bad",
    ["<bounces@gateway.test>", "a@x.test, b@x.test", "bounces", "b@x.test\r\nRCPT TO:<v@x.test>"],
)
def test_a_bad_envelope_sender_is_refused_before_connecting(smtp_sink: SmtpSink, bad: str) -> None:
    with pytest.raises(PermanentError, match="envelope_from"):
        send(confirmation(), config(smtp_sink), envelope_from=bad)
    assert smtp_sink.attempts["MAIL"] == 0


def test_a_stored_and_reloaded_reply_keeps_its_threading_headers(smtp_sink: SmtpSink) -> None:
    long_id = "<" + "A1b2" * 30 + "@mail.partner.test>"
    stored = confirmation(Message_ID=long_id, References="<root@partner.test>").as_bytes()
    reloaded = message_from_bytes(stored, policy=policy.default)  # as the outbox would read it back
    assert isinstance(reloaded, EmailMessage)
    send(reloaded, config(smtp_sink))
    (got,) = smtp_sink.wait_for(1)
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head
    assert got.message["In-Reply-To"] == long_id
    assert got.message["References"].split() == ["<root@partner.test>", long_id]
    assert got.message.get_content() == reloaded.get_content()


def test_starttls_with_the_sinks_ca(smtp_starttls: SmtpSink) -> None:
    assert smtp_starttls.ca_file is not None
    send(confirmation(), config(smtp_starttls))
    (got,) = smtp_starttls.wait_for(1)
    assert got.tls
    assert got.message["Subject"] == "Re: PO 4711"


def test_auth_login_over_starttls(smtp_auth: SmtpSink) -> None:
    send(confirmation(), config(smtp_auth))
    (got,) = smtp_auth.wait_for(1)
    assert got.tls and got.login == smtp_auth.username
    assert got.mail_from == "<>"


def test_auth_login_over_implicit_tls(smtp_ssl_auth: SmtpSink) -> None:
    send(confirmation(), config(smtp_ssl_auth))
    (got,) = smtp_ssl_auth.wait_for(1)
    assert got.tls and got.login == smtp_ssl_auth.username


# --------------------------------------------------------------------------------------
# Failures: what the caller should do


@pytest.mark.parametrize("stage", ["RCPT", "DATA", "MAIL"])
def test_4xx_is_transient(smtp_sink: SmtpSink, stage: str) -> None:
    smtp_sink.fail(stage, "451 4.3.0 Try again later")  # type: ignore[arg-type]
    with pytest.raises(TransientError, match=r"451 4\.3\.0 Try again later\)?; retry later"):
        send(confirmation(), config(smtp_sink))
    smtp_sink.fail(stage, None)  # type: ignore[arg-type]
    send(confirmation(), config(smtp_sink))  # the retry goes through
    assert len(smtp_sink.wait_for(1)) == 1


def test_550_recipient_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail(
        "RCPT", "550 5.1.1 <buyer@partner.test>: Recipient address rejected: User unknown"
    )
    with pytest.raises(
        PermanentError, match=r"refused the recipient .*550 5\.1\.1.*check the address"
    ):
        send(confirmation(), config(smtp_sink))
    assert smtp_sink.attempts["DATA"] == 0 and smtp_sink.messages == []


def test_5xx_data_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("DATA", "554 5.7.1 Message rejected as spam")
    with pytest.raises(PermanentError, match="refused the message <order-confirmation.*554 5.7.1"):
        send(confirmation(), config(smtp_sink))


def test_a_refused_null_sender_says_what_to_do(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("MAIL", "553 5.7.1 Sender address rejected: not owned by user")
    with pytest.raises(PermanentError, match="envelope sender <>.*envelope_from"):
        send(confirmation(), config(smtp_sink))


def test_server_down_is_transient(smtp_sink: SmtpSink) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        TransientError, match=f"cannot reach SMTP server 127.0.0.1:{port}: ConnectionRefusedError"
    ):
        send(confirmation(), config(smtp_sink, port=port))


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


def test_a_server_that_never_answers_is_transient(smtp_sink: SmtpSink, silent_server: int) -> None:
    with pytest.raises(TransientError, match="retry later"):
        send(confirmation(), config(smtp_sink, port=silent_server, timeout=0.3))


def test_wrong_password_is_permanent_and_never_shown(
    smtp_auth: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "Canary-Pa55word-7f3a"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentError) as info:
        send(confirmation(), config(smtp_auth, password=canary))
    text = str(info.value)
    assert "535" in text and "smtp.username" in text and repr(smtp_auth.username) in text
    assert (
        canary not in text
        and canary not in repr(info.value.__cause__)
        and canary not in caplog.text
    )
    assert canary not in repr(config(smtp_auth, password=canary))
    assert PASSWORD not in caplog.text


def test_login_without_tls_offered_is_permanent(smtp_auth: SmtpSink) -> None:
    # The sink offers AUTH only after STARTTLS; this config cannot skip TLS (validation)
    # but an 'ssl' config against the STARTTLS port shows the misconfiguration clearly.
    with pytest.raises(PermanentError, match="check smtp.tls"):
        send(confirmation(), config(smtp_auth, tls="ssl"))


def test_untrusted_certificate_is_permanent(smtp_starttls: SmtpSink) -> None:
    with pytest.raises(PermanentError, match="not trusted.*smtp.ca_file"):
        send(confirmation(), config(smtp_starttls, ca_file=None))


def test_a_certificate_for_another_host_is_permanent() -> None:
    with running_smtp_sink(starttls=True, cert_names=("mail.partner.test",)) as sink:
        with pytest.raises(PermanentError, match="not trusted .*mismatch.*smtp.host"):
            send(confirmation(), config(sink))
        assert sink.attempts["MAIL"] == 0


def test_no_starttls_offered_is_permanent(smtp_sink: SmtpSink) -> None:
    with pytest.raises(PermanentError, match="no STARTTLS"):
        send(confirmation(), config(smtp_sink, tls="starttls"))
    assert smtp_sink.attempts["MAIL"] == 0  # nothing was sent in clear text


def test_the_connection_is_closed_after_every_outcome(smtp_sink: SmtpSink) -> None:
    # filterwarnings=error turns an unclosed socket (ResourceWarning) into a failure; run
    # success and failure paths back to back to make such a leak show here.
    import gc

    send(confirmation(), config(smtp_sink))
    smtp_sink.fail("RCPT", "550 5.1.1 no")
    with pytest.raises(PermanentError):
        send(confirmation(), config(smtp_sink))
    gc.collect()


# --------------------------------------------------------------------------------------
# Config


def test_config_defaults_and_secret() -> None:
    c = SmtpConfig(
        host="mail.example.com", from_address="orders@example.com", username="gw", password="s3cret"
    )
    assert (c.port, c.tls, c.timeout, c.ca_file, c.helo_name) == (587, "starttls", 30, None, None)
    assert "s3cret" not in repr(c) and "s3cret" not in c.model_dump_json()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls": "none", "username": "gw", "password": "x"}, "clear text"),
        ({"username": "gw"}, "both username and password"),
        ({"password": "x"}, "both username and password"),
        ({"from_address": "a@x.test, b@x.test"}, "exactly one"),
        ({"from_address": "orders"}, "not a valid"),
        ({"host": "mail.example.com\r\nX: y"}, "host name"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"tls": "maybe"}, "starttls"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not point to a file"),
        ({"smtp_password": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_config_is_validated(values: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"host": "mail.example.com", "from_address": "orders@example.com"}
    with pytest.raises(ValidationError, match=message):
        SmtpConfig.model_validate({**base, **values})


def test_config_gives_the_bare_from_address_and_domain() -> None:
    c = SmtpConfig(host="mail.example.com", from_address="ACME Orders <Orders@Example.COM>")
    assert (c.from_addr_spec, c.from_domain) == ("Orders@Example.COM", "example.com")
    assert make_message_id("42", c.from_domain) == make_message_id("42", "example.com")


def test_every_config_field_is_described() -> None:
    for name, field in SmtpConfig.model_fields.items():
        assert field.description, name


def test_ca_file_is_a_path(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    c = SmtpConfig(host="127.0.0.1", port=1, from_address="orders@example.com", ca_file=ca)
    with pytest.raises(PermanentError, match="smtp.ca_file"):
        send(confirmation(), c)
