"""Where acknowledgements go: one small class per channel, each with one `send`.

A channel takes one claimed document (an outbox row of an acknowledgement or confirmation
e-mail, `gateway.store.outbox.ClaimedDelivery` with its `body`) and delivers it, or raises;
claiming, retrying, dead letters and the history live in the core (`gateway.store.outbox`,
`gateway.dispatch.worker`), exactly as for orders. The row's `connector` column names its
channel:

    folder:<path>   FolderChannel        written atomically into the partner's outbound folder
    sftp:<partner>  SftpAckChannel       uploaded atomically (acks.sftp of that partner)
    mail:<address>  MailAckChannel       e-mailed as an attachment (acks.email; needs smtp:)
    smtp            ConfirmationChannel  a stored e-mail (a confirmation, a team notice), sent as it is (smtp:)
    webhook:<team>  WebhookChannel       a team notice POSTed as signed JSON (exceptions.teams[].notify)
    as2:<partner>   As2AckChannel        sent by AS2, the partner's MDN verified (gateway.as2.channel)
    as2mdn:<partner> As2MdnChannel       an asynchronous MDN we owe, posted to the partner's mdn_url

Capabilities (declared, not probed): `idempotent` says whether sending the same row twice
has one effect. A folder or SFTP write replaces the file of the same name, so an unknown
error there is retried; an e-mail cannot be taken back, so an unknown error dead-letters it
(it carries a stable Message-ID, but a second copy still arrives).

Errors, by what the caller should do::

    TransientError   retry per the retry policy (server busy, connection lost, disk full)
    PermanentError   dead letter now; a person fixes the cause and replays it
    ConfigError      the channel is not (or no longer) configured: dead letter, like permanent
    anything else    retried if the channel is idempotent, else a dead letter
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from gateway.errors import ConfigError
from gateway.store.outbox import ClaimedDelivery

__all__ = [
    "AckChannel",
    "ChannelSet",
    "ConfirmationChannel",
    "FolderChannel",
    "MailAckChannel",
    "SftpAckChannel",
    "WebhookChannel",
    "file_name",
]


class AckChannel(Protocol):
    idempotent: ClassVar[bool]

    def send(self, ack: ClaimedDelivery) -> str:
        """Deliver `ack`; return how, for the history ("written to ...")."""
        ...

    def close(self) -> None: ...


def file_name(ack: ClaimedDelivery) -> str:
    """The file name of an acknowledgement: kind, control number and row id (unique, stable)."""
    suffix = "edi" if ack.kind in ("CONTRL", "ORDRSP", "DESADV", "INVOIC", "INVRPT") else "x12"
    return f"{ack.kind}-{ack.control_number or ack.outbox_id}-{ack.outbox_id}.{suffix}"


class FolderChannel:
    idempotent: ClassVar[bool] = True

    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, ack: ClaimedDelivery) -> str:
        name = file_name(ack)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(ack.body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"written to {name}"

    def close(self) -> None:
        pass


class SftpAckChannel:
    idempotent: ClassVar[bool] = True

    def __init__(self, config: Any):
        from connectors.sources.sftp.channel import SftpChannel

        self._channel = SftpChannel(config)

    def send(self, ack: ClaimedDelivery) -> str:
        name = file_name(ack)
        self._channel.put(name, ack.body)
        return f"uploaded by SFTP as {name}"

    def close(self) -> None:
        self._channel.close()


class MailAckChannel:
    """An acknowledgement as the attachment of an e-mail (EDI over e-mail, as partners who
    send their orders by e-mail expect it back). The Message-ID is derived from the row, so
    a resend is recognisable as the same mail."""

    idempotent: ClassVar[bool] = False

    def __init__(self, to: str, smtp: Any):
        self.to = to
        self.smtp = smtp

    def send(self, ack: ClaimedDelivery) -> str:
        from email.message import EmailMessage
        from email.utils import format_datetime

        from gateway.email_reply import make_message_id
        from gateway.smtp import send
        from gateway.store import utcnow

        name = file_name(ack)
        msg = EmailMessage()
        msg["From"] = self.smtp.from_address
        msg["To"] = self.to
        msg["Subject"] = f"{ack.kind} acknowledgement {ack.control_number or ''}".strip()
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = make_message_id(f"ack-{ack.outbox_id}-{ack.created_at}", self.smtp.from_domain)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(f"{ack.kind} {ack.control_number or ''} for {ack.partner} is attached ({name}).\n")
        subtype = "edifact" if name.endswith(".edi") else "edi-x12"
        msg.add_attachment(ack.body, maintype="application", subtype=subtype, filename=name)
        send(msg, self.smtp, envelope_from=self.smtp.envelope_from)
        return f"sent as an e-mail to {self.to} ({name})"

    def close(self) -> None:
        pass


class ConfirmationChannel:
    """A confirmation e-mail (`gateway.email_reply`) stored whole by processing, sent as it is."""

    idempotent: ClassVar[bool] = False

    def __init__(self, smtp: Any):
        self.smtp = smtp

    def send(self, ack: ClaimedDelivery) -> str:
        from email import policy
        from email.parser import BytesParser

        from gateway.smtp import send

        msg: Any = BytesParser(policy=policy.default).parsebytes(ack.body)
        send(msg, self.smtp, envelope_from=self.smtp.envelope_from)
        return f"sent as an e-mail to {msg['To']}"

    def close(self) -> None:
        pass


class WebhookChannel:
    """A team notice (`gateway.processing.notify`) POSTed as JSON to the team's webhook, signed
    with ``X-Gateway-Signature: sha256=<hex HMAC-SHA256 of the body>``. A second POST is a
    second message to the receiver (its body's ``id`` lets it notice), so not idempotent."""

    idempotent: ClassVar[bool] = False

    def __init__(self, url: str, secret: bytes, timeout: float = 10.0):
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def send(self, ack: ClaimedDelivery) -> str:
        import hashlib
        import hmac

        import requests

        from gateway.errors import PermanentError, TransientError

        signature = "sha256=" + hmac.new(self.secret, ack.body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Gateway-Signature": signature, "User-Agent": "order-gateway"}
        try:
            res = requests.post(self.url, data=ack.body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransientError(f"webhook {self.url}: {type(exc).__name__}") from None
        if res.status_code in (408, 425, 429) or res.status_code >= 500:
            raise TransientError(f"webhook {self.url} answered {res.status_code}")
        if not 200 <= res.status_code < 300:
            raise PermanentError(f"webhook {self.url} answered {res.status_code}; check the URL and the receiver's signature check")
        return f"posted to the webhook of team {ack.partner} ({res.status_code})"

    def close(self) -> None:
        pass


class ChannelSet:
    """The channels of the dispatcher, built on first use from the configuration (partners'
    `acks` sections and `smtp:`), closed together (after each dispatch pass).

    Safe to share between the dispatcher's threads: a channel is built once, and one channel
    sends one document at a time (an SFTP session or an SMTP connection is not shared)."""

    def __init__(self, partners: Iterable[Any] = (), smtp: Any = None, teams: Iterable[Any] = (), as2: Any = None):
        partners = list(partners)
        self._sftp = {p.name: p.acks.sftp for p in partners if p.acks.sftp is not None}
        self._as2, self._partner_names = as2, [p.name for p in partners]  # as2: intake.as2
        self._webhooks = {t.name: t.notify for t in teams if t.notify.webhook is not None and t.notify.webhook_secret is not None}
        self._smtp = smtp
        self._open: dict[str, AckChannel] = {}
        self._busy: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, channel: str) -> AckChannel:
        """The channel named by a row's `connector`; ConfigError if it is not configured."""
        with self._lock:
            if channel not in self._open:
                self._open[channel] = self._build(channel)
                self._busy[channel] = threading.Lock()
            return self._open[channel]

    def send(self, document: ClaimedDelivery) -> str:
        """Send one document through its channel (one at a time per channel); how, for the history."""
        channel = self.get(document.connector)
        with self._busy[document.connector]:
            return channel.send(document)

    def idempotent(self, channel: str) -> bool:
        """Whether a repeat through `channel` has one effect (a file replaced, not a second
        e-mail), as the channel declares it; False for one that could not be built."""
        with self._lock:
            built = self._open.get(channel)
        return bool(built is not None and built.idempotent)

    def _build(self, channel: str) -> AckChannel:
        kind, _, arg = channel.partition(":")
        if kind == "folder" and arg:
            return FolderChannel(Path(arg))
        if kind == "sftp" and arg in self._sftp:
            return SftpAckChannel(self._sftp[arg])
        if kind == "webhook" and arg in self._webhooks:
            notify = self._webhooks[arg]
            return WebhookChannel(str(notify.webhook), notify.webhook_secret.get_secret_value().encode())
        if kind in ("as2", "as2mdn") and arg and self._as2 is not None:
            from gateway.as2.channel import As2AckChannel, As2MdnChannel

            return As2AckChannel(self._as2, arg, self._partner_names) if kind == "as2" else As2MdnChannel(self._as2, arg)
        if kind in ("mail", "smtp") and self._smtp is None:
            raise ConfigError(f"channel {channel!r} needs an smtp: section in the configuration")
        if kind == "mail" and arg:
            return MailAckChannel(arg, self._smtp)
        if kind == "smtp" and not arg:
            return ConfirmationChannel(self._smtp)
        raise ConfigError(f"channel {channel!r} is not configured any more")

    def close(self) -> None:
        with self._lock:
            for ch in self._open.values():
                ch.close()
            self._open.clear()
            self._busy.clear()
