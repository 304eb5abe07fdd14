"""Sending one e-mail through an SMTP server (the confirmation replies of `gateway.email_reply`).

    send(message, config)                       # envelope sender <> (an automatic reply)
    send(message, config, envelope_from="orders@us.example")

Config keys (`SmtpConfig`, ``smtp:`` in the gateway config): host, port, tls, ca_file,
username, password, from_address, timeout, helo_name.

- TLS: ``starttls`` (default, port 587) or ``ssl`` (implicit TLS, port 465) with
  `ssl.create_default_context` (the system's CAs, or ``ca_file``); the certificate and the
  host name are always checked. ``none`` sends in clear text and exists for tests and a
  relay on the same host only; it cannot be combined with a login.
- Login (AUTH) only when ``username`` is set, and only after TLS is up.
- The envelope sender is empty (``MAIL FROM:<>``) unless `envelope_from` is given: RFC 3834
  recommends a null return path for automatic responses, so a bounce or an out-of-office
  answer to the reply is never sent, and two robots cannot keep mailing each other. Some
  submission servers refuse ``<>`` from an authenticated account (a 5xx to MAIL FROM):
  then pass the account's own address as `envelope_from`.
- Recipients are given explicitly: the addresses in To, Cc and Bcc of the message (Bcc is
  not written into the message).
- Headers are written as they are stored: a message read back from storage keeps its
  In-Reply-To and References exactly (the stdlib would otherwise refold long msg-ids into
  RFC 2047 encoded-words).
- The connection is always closed. The password is never logged or put in an error.

Error mapping (what the caller should do)
    no valid recipient in To/Cc/Bcc, a bad envelope_from   PermanentError, before connecting
    connection refused or reset, timeout, DNS failure,     TransientError: retry later
    the server hung up, any 4xx reply (421, 450, 451, 452,
    454), a TLS failure other than the ones below
    5xx to the login                                       PermanentError: fix smtp.username
                                                           or the password
    5xx to MAIL FROM, RCPT TO or DATA                      PermanentError: the message, the
                                                           sender or the recipient is refused
    the server offers no STARTTLS / AUTH / SMTPUTF8,       PermanentError: fix smtp.tls,
    an untrusted certificate or wrong host name,           smtp.ca_file or smtp.host
    TLS spoken to a plain port, an unreadable ca_file
    some recipients refused, others accepted               PermanentError (a retry would send
                                                           the accepted ones a second copy)

A reply lost after the server took the message (the connection drops after the final
``.``) is a TransientError like any other drop, so the retry can deliver a second copy.
It carries the same Message-ID, by which mail systems and clients recognise it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import unicodedata
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PositiveFloat,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.errors import DeliveryError, PermanentError, TransientError

log = logging.getLogger(__name__)

__all__ = ["SmtpConfig", "send"]

_REPLY_MAX = 300


class SmtpConfig(BaseModel):
    """The SMTP server that sends the gateway's e-mails (``smtp:`` in the gateway config)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        min_length=1,
        max_length=255,
        description="Host name or IP address of the SMTP server (your mail relay or submission server).",
    )
    port: int = Field(
        587,
        ge=1,
        le=65535,
        description="TCP port: 587 for starttls (submission), 465 for ssl, 25 for a relay.",
    )
    tls: Literal["starttls", "ssl", "none"] = Field(
        "starttls",
        description="Transport security: 'starttls' (upgrade a plain connection, port 587), 'ssl' (implicit TLS, port 465) or 'none' (clear text: tests and a relay on the same host only; not allowed with a login).",
    )
    ca_file: FilePath | None = Field(
        None,
        description="PEM file of CA certificates to verify the server with; default: the system's CAs.",
    )
    username: str | None = Field(
        None,
        min_length=1,
        description="Account to log in as (AUTH); leave out for a relay that needs no login.",
    )
    password: SecretStr | None = Field(
        None, description="Password of the account, from the environment: ${env:NAME}."
    )
    from_address: str = Field(
        min_length=3,
        description="The From address of the e-mails the gateway sends, e.g. 'Orders <orders@example.com>'; replies from buyers come back to it.",
    )
    timeout: PositiveFloat = Field(
        30, description="Network timeout in seconds for connecting and for each SMTP command."
    )
    helo_name: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Name the gateway gives in EHLO; default: this machine's fully qualified host name.",
    )
    envelope_from: str = Field(
        "",
        description="Envelope sender (MAIL FROM) of automatic replies; empty sends the null sender <> (RFC 3834), set the account's address if the server refuses <>.",
    )

    @property
    def from_addr_spec(self) -> str:
        """The bare address of `from_address` (``orders@example.com``), e.g. for own_addresses."""
        return _addr_specs(self.from_address, "from_address", allow_many=False)[0]

    @property
    def from_domain(self) -> str:
        """The domain of `from_address`, e.g. for `gateway.email_reply.make_message_id`."""
        return self.from_addr_spec.rpartition("@")[2].lower()

    @field_validator("host", "helo_name")
    @classmethod
    def _no_spaces(cls, value: str | None) -> str | None:
        if value is not None and (
            value != value.strip()
            or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value)
        ):
            raise ValueError("must be a host name without spaces or control characters")
        return value

    @field_validator("from_address")
    @classmethod
    def _one_address(cls, value: str) -> str:
        _addr_specs(value, "from_address", allow_many=False)
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.username is not None and self.tls == "none":
            raise ValueError(
                "a login needs tls 'starttls' or 'ssl': with 'none' the password would cross the network in clear text"
            )
        return self


_HEADERS = HeaderRegistry()


def _addr_specs(value: str, what: str, *, allow_many: bool = True) -> list[str]:
    """The addr-specs of an address header value; ValueError when it is malformed."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError(f"{what} contains control characters")
    header: Any = _HEADERS("To", value)
    specs = [str(a.addr_spec) for a in header.addresses]
    if (
        header.defects
        or not specs
        or any("@" not in s or s.startswith("@") or s.endswith("@") for s in specs)
    ):
        raise ValueError(f"{what} is not a valid e-mail address list: {value!r}")
    if not allow_many and len(specs) != 1:
        raise ValueError(f"{what} must be exactly one e-mail address, not {len(specs)}")
    return specs


def _recipients(message: EmailMessage) -> list[str]:
    found: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        for value in message.get_all(name) or []:
            for spec in _addr_specs(str(value), name):
                if spec.lower() not in (f.lower() for f in found):
                    found.append(spec)
    if not found:
        raise ValueError("the message has no recipient in To, Cc or Bcc")
    return found


def _wire_copy(message: EmailMessage) -> EmailMessage:
    """A shallow copy whose stored header text is written as is (never refolded)."""
    wire = copy.copy(message)
    if isinstance(wire.policy, EmailPolicy):
        wire.policy = wire.policy.clone(refold_source="none")
    return wire


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join("".join(ch if unicodedata.category(ch) != "Cc" else " " for ch in text).split())
    return text[:_REPLY_MAX]


def _by_code(code: int, text: str, *, permanent_fix: str) -> DeliveryError:
    """4xx (and anything unexpected) -> TransientError; 5xx -> PermanentError with the fix."""
    if 500 <= code < 600:
        return PermanentError(f"{text}; {permanent_fix}")
    return TransientError(f"{text}; retry later")


def send(message: EmailMessage, config: SmtpConfig, *, envelope_from: str = "") -> None:
    """Hand `message` to the SMTP server of `config`, or raise TransientError / PermanentError.

    `envelope_from` is the envelope sender (MAIL FROM); empty means ``<>``, right for
    automatic replies. A message that can never be sent (no valid recipient, a bad
    `envelope_from`) is a PermanentError before any connection is made.
    """
    import smtplib  # here, not at the top: loading the configuration stays light
    import ssl

    try:
        recipients = _recipients(message)
        if envelope_from:
            _addr_specs(envelope_from, "envelope_from", allow_many=False)
            if any(ch in envelope_from for ch in "<> \t"):
                raise ValueError(f"envelope_from must be a bare address, not {envelope_from!r}")
    except ValueError as exc:
        raise PermanentError(f"the message cannot be sent: {exc}") from exc
    where = f"SMTP server {config.host}:{config.port}"
    sender = envelope_from or "<>"
    message_id = _reply(str(message.get("Message-ID", "")))

    context: ssl.SSLContext | None = None
    if config.tls != "none":
        try:
            context = ssl.create_default_context(
                cafile=str(config.ca_file) if config.ca_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise PermanentError(
                f"cannot load the CA certificates of smtp.ca_file {config.ca_file}: {exc}; fix smtp.ca_file"
            ) from exc

    client: smtplib.SMTP | None = None
    try:
        if config.tls == "ssl":
            client = smtplib.SMTP_SSL(
                config.host, config.port, config.helo_name, timeout=config.timeout, context=context
            )
        else:
            client = smtplib.SMTP(
                config.host, config.port, config.helo_name, timeout=config.timeout
            )
        client.ehlo_or_helo_if_needed()
        if config.tls == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if config.username is not None and config.password is not None:
            client.login(config.username, config.password.get_secret_value())
        refused = client.send_message(
            _wire_copy(message), from_addr=envelope_from, to_addrs=recipients
        )
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()  # the message is accepted; a failed goodbye changes nothing
    except smtplib.SMTPAuthenticationError as exc:
        text = f"{where} refused the login of {config.username!r}: {exc.smtp_code} {_reply(exc.smtp_error)}"
        raise _by_code(
            exc.smtp_code,
            text,
            permanent_fix="check smtp.username and the password in its environment variable",
        ) from exc
    except smtplib.SMTPSenderRefused as exc:
        text = f"{where} refused the envelope sender {sender}: {exc.smtp_code} {_reply(exc.smtp_error)}"
        fix = "if it refuses the null sender <> of automatic replies, send with an envelope_from it accepts (the account's own address)"
        raise _by_code(exc.smtp_code, text, permanent_fix=fix) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise _recipients_refused(where, exc.recipients) from exc
    except smtplib.SMTPDataError as exc:
        text = f"{where} refused the message {message_id}: {exc.smtp_code} {_reply(exc.smtp_error)}"
        raise _by_code(
            exc.smtp_code, text, permanent_fix="its reply says why (size, content or spam policy)"
        ) from exc
    except smtplib.SMTPHeloError as exc:
        text = f"{where} refused our EHLO greeting: {exc.smtp_code} {_reply(exc.smtp_error)}"
        raise _by_code(
            exc.smtp_code, text, permanent_fix="set smtp.helo_name to a name it accepts"
        ) from exc
    except smtplib.SMTPConnectError as exc:
        text = f"{where} refused the connection: {exc.smtp_code} {_reply(exc.smtp_error)}"
        raise _by_code(
            exc.smtp_code,
            text,
            permanent_fix="ask its administrator to accept mail from the gateway",
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise TransientError(f"{where} closed the connection ({exc}); retry later") from exc
    except smtplib.SMTPResponseException as exc:  # e.g. 454 to STARTTLS
        text = f"{where} answered {exc.smtp_code} {_reply(exc.smtp_error)}"
        raise _by_code(exc.smtp_code, text, permanent_fix="check smtp.tls and the account") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentError(f"{where}: {exc}; {_unsupported_fix(str(exc))}") from exc
    except smtplib.SMTPException as exc:  # e.g. "No suitable authentication method found."
        raise PermanentError(
            f"{where}: {exc}; check smtp.tls, smtp.username and the server's settings"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(
            f"the certificate of {where} is not trusted ({exc.verify_message}); "
            "set smtp.ca_file to the CA that signed it, or make smtp.host the name in the certificate"
        ) from exc
    except ssl.SSLError as exc:
        if exc.reason == "WRONG_VERSION_NUMBER":
            raise PermanentError(
                f"{where} did not answer TLS ({exc.reason}); check smtp.tls: 'ssl' is for port 465, 'starttls' for 587 and 25"
            ) from exc
        raise TransientError(f"TLS with {where} failed ({exc.reason or exc}); retry later") from exc
    except OSError as exc:  # refused, reset, timeout, DNS failure
        raise TransientError(
            f"cannot reach {where}: {type(exc).__name__}: {exc}; retry later"
        ) from exc
    finally:
        if client is not None:
            client.close()
    if refused:
        accepted = len(recipients) - len(refused)
        detail = "; ".join(
            f"{rcpt}: {code} {_reply(text)}" for rcpt, (code, text) in refused.items()
        )
        raise PermanentError(
            f"{where} accepted the message {message_id} for {accepted} recipient(s) but refused {detail}; "
            "not retried, or the accepted ones would get it twice"
        )
    log.info("smtp: %s accepted message %s for %d recipient(s)", where, message_id, len(recipients))


def _recipients_refused(where: str, refused: dict[str, tuple[int, bytes]]) -> DeliveryError:
    detail = "; ".join(f"{rcpt}: {code} {_reply(text)}" for rcpt, (code, text) in refused.items())
    if refused and all(400 <= code < 500 for code, _ in refused.values()):
        return TransientError(f"{where} refused the recipient for now ({detail}); retry later")
    return PermanentError(f"{where} refused the recipient ({detail}); check the address")


def _unsupported_fix(text: str) -> str:
    lowered = text.lower()
    if "starttls" in lowered:
        return "the server offers no STARTTLS: use tls 'ssl' on port 465 if it speaks implicit TLS"
    if "auth" in lowered:
        return "the server offers no login (AUTH) here: leave out smtp.username for a relay, or check smtp.tls"
    if "smtputf8" in lowered:
        return "the server cannot take a non-ASCII address (SMTPUTF8); use an ASCII address"
    return "check smtp.tls and the server's settings"
