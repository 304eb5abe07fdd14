"""IMAP source: order mails are read from one folder of an IMAP mailbox.

Capabilities: poll + ack (move to another folder). Config keys: see ImapSourceConfig.

- The connection is kept between polls (checked with NOOP first). When it drops, the poll
  ends without acknowledging anything; the next poll reconnects. Failed connects in a row
  back off (0, 1, 3, 7, ... polls skipped, at most five minutes' worth). A refused login
  raises ImapLoginError (a ConfigError) from poll.
- Cursor per source: ``"<UIDVALIDITY>:<last committed UID>"`` in the ``source_cursors``
  table under the source's name. It is written by this module (forward only within one
  UIDVALIDITY), never with ``gateway.store.cursors.set_cursor``, whose values are timestamps.
  A poll searches ``UID last+1:*``. When the folder's UIDVALIDITY differs from the stored
  one, a warning is logged and the whole folder is offered again: the store recognises
  mails it already has by the SHA-256 of their bytes, and the ack moves them away.
- RFC822.SIZE is checked before anything is downloaded: a mail over ``max_message_bytes``
  is offered as a small refusal (``rejected="MAIL_TOO_LARGE: ..."``) and moved to the
  failed folder on ack. Mails are fetched with ``BODY.PEEK[]``, so \\Seen is never set.
- ``ack`` runs only after the commit: MOVE to ``processed_folder`` (stored/duplicate) or
  ``failed_folder`` (rejected); without the MOVE capability COPY + \\Deleted + UID EXPUNGE
  (plain EXPUNGE when the server lacks UIDPLUS). Target folders are created if missing.
  Then the cursor advances, but never past a mail of the same poll that is still
  unacknowledged. A crash between commit and move re-offers the mail on the next poll;
  the store answers "duplicate" and the move completes.
- IDLE is not used: the folder is polled every ``poll_seconds``.

Error mapping
    server unreachable, connection dropped, timeout   logged; the poll yields nothing more
    login refused                                     ImapLoginError (a ConfigError) from poll
    folder cannot be selected                         logged; the poll yields nothing
    connection lost during ack, or UIDVALIDITY        TransientError from ack (the mail stays
    changed before the ack                            and is offered again)
"""

from __future__ import annotations

import contextlib
import email.header
import imaplib
import logging
import re
import socket
import ssl
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from sqlalchemy import insert, select, update

from connectors.sources.imap.config import ImapSourceConfig
from gateway import crashpoints
from gateway.connector import AckOutcome, RawMessage
from gateway.errors import ConfigError, TransientError
from gateway.store.cursors import source_cursors
from gateway.store.db import Store, utcnow

log = logging.getLogger(__name__)

__all__ = ["ImapLoginError", "ImapSource", "parse_cursor"]

_MAX_BACKOFF_SECONDS = 300.0
_LOST = (imaplib.IMAP4.abort, OSError, EOFError, socket.timeout)
_CURSOR = re.compile(r"^(\d+):(\d+)$")
# imapclient ships partial type hints only (many methods unannotated): use it untyped.
_Client = Any


class ImapLoginError(ConfigError):
    """The IMAP server refused the login (wrong user name, password or token)."""


class _ConnectionLost(Exception):
    """Internal: the connection dropped in the middle of a poll."""


@dataclass(slots=True)
class _Claim:
    uidvalidity: int
    uid: int
    acked: bool = False


def parse_cursor(value: str | None) -> tuple[int, int] | None:
    """``"uidvalidity:uid"`` as a pair of ints; None when absent or unreadable."""
    if value is None:
        return None
    m = _CURSOR.match(value.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _header_text(value: Any) -> str:
    """An ENVELOPE field (bytes, maybe RFC 2047 encoded) as printable text."""
    if value is None:
        return ""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    try:
        text = str(email.header.make_header(email.header.decode_header(raw)))
    except Exception:  # malformed encoded words: show them as they are
        text = raw
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.replace("/", "-").replace("\\", "-").split())[:200]


class ImapSource:
    """Polls one folder of an IMAP mailbox; see the module docstring for the behaviour."""

    def __init__(self, config: ImapSourceConfig, *, store: Store):
        self.config = config
        self.name = config.name
        self.store = store
        self._client: _Client | None = None
        self._uidvalidity: int | None = None  # of the folder as selected on this connection
        self._ready_folders: set[str] = set()
        self._failures = 0
        self._skip_polls = 0
        self._pending: set[int] = set()  # UIDs offered in the current poll, not yet acknowledged
        self._acked: set[int] = set()  # UIDs acknowledged since the current poll started

    # -- the Source protocol ------------------------------------------------------------------

    def poll(self) -> Iterator[RawMessage]:
        """Yield each new mail (or refusal) in the folder; acknowledges nothing."""
        client = self._connected()
        if client is None:
            return
        self._pending.clear()
        self._acked.clear()
        try:
            uidvalidity = self._select(client)
            stored = parse_cursor(self._read_cursor())
            last = 0
            if stored is not None:
                if stored[0] == uidvalidity:
                    last = stored[1]
                else:
                    log.warning(
                        "imap source %s: UIDVALIDITY of %s changed from %d to %d; rescanning the whole folder "
                        "(mails already stored are recognised by their content)",
                        self.name,
                        self.config.folder,
                        stored[0],
                        uidvalidity,
                    )
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            if not uids:
                return
            info = client.fetch(uids, ["RFC822.SIZE", "ENVELOPE"])
        except _LOST as exc:
            self._lost("searching the folder", exc)
            return
        except IMAPClientError as exc:
            log.warning("imap source %s: cannot read %s: %s", self.name, self.config.folder, exc)
            return
        for uid in uids:
            data = info.get(uid)
            if data is None:
                continue  # expunged meanwhile
            size = int(data.get(b"RFC822.SIZE", 0))
            envelope = data.get(b"ENVELOPE")
            subject = _header_text(getattr(envelope, "subject", None))
            msgid = _header_text(getattr(envelope, "message_id", None))
            shown = subject or msgid or f"UID {uid}"
            claim = _Claim(uidvalidity, uid)
            ref = self._ref(uidvalidity, uid)
            if size > self.config.max_message_bytes:
                reason = (
                    f"MAIL_TOO_LARGE: {size} bytes, over the limit of {self.config.max_message_bytes} "
                    "(max_message_bytes); not downloaded"
                )
                self._pending.add(uid)
                yield RawMessage(
                    body=f"{ref}\n{reason}\n".encode(),
                    source=self.name,
                    source_ref=ref,
                    display_name=shown,
                    ack_token=claim,
                    rejected=reason,
                )
                continue
            try:
                body = self._download(uid)
            except _ConnectionLost:
                return
            if body is None:
                continue
            self._pending.add(uid)
            yield RawMessage(
                body=body, source=self.name, source_ref=ref, display_name=shown, ack_token=claim
            )
            if self._client is None:
                return  # an ack in between lost the connection

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        """Move the committed mail to the processed folder (a refused one to failed); advance the cursor."""
        claim = message.ack_token
        if not isinstance(claim, _Claim):
            raise TypeError(f"message {message.source_ref} did not come from this source")
        if claim.acked:
            raise RuntimeError(f"message {message.source_ref} was acknowledged twice")
        claim.acked = True
        crashpoints.hit("before_ack")
        target = (
            self.config.failed_folder if outcome == "rejected" else self.config.processed_folder
        )
        for attempt in (1, 2):
            try:
                client = self._client
                if client is None:
                    client = self._connect()
                    self._select(client)
                if self._uidvalidity != claim.uidvalidity:
                    raise TransientError(
                        f"imap source {self.name}: UIDVALIDITY of {self.config.folder} changed before "
                        f"{message.source_ref} was moved; it is offered again"
                    )
                self._move(client, claim.uid, target)
                break
            except _LOST as exc:
                self._drop()
                if attempt == 2:
                    raise TransientError(
                        f"imap source {self.name}: connection lost while moving {message.source_ref}; "
                        "it stays in the folder and is offered again"
                    ) from exc
                log.info("imap source %s: connection lost before the move; reconnecting", self.name)
        self._pending.discard(claim.uid)
        self._acked.add(claim.uid)
        below = min(self._pending, default=None)
        done = [u for u in self._acked if below is None or u < below]
        if done:
            self._advance(claim.uidvalidity, max(done))

    def close(self) -> None:
        """Log out (the next poll opens a new connection)."""
        self._drop(logout=True)

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- connection ---------------------------------------------------------------------------

    def _ref(self, uidvalidity: int, uid: int) -> str:
        c = self.config
        return f"imap:{c.username}@{c.host}/{c.folder};UIDVALIDITY={uidvalidity};UID={uid}"

    def _connected(self) -> _Client | None:
        if self._client is not None:
            try:
                self._client.noop()
                return self._client
            except (*_LOST, IMAPClientError):
                log.info(
                    "imap source %s: the server closed the connection; reconnecting", self.name
                )
                self._drop()
        if self._skip_polls > 0:
            self._skip_polls -= 1
            return None
        try:
            client = self._connect()
        except (TransientError, ConfigError) as exc:
            self._failures += 1
            self._skip_polls = min(
                2 ** min(self._failures - 1, 16) - 1,
                int(_MAX_BACKOFF_SECONDS / self.config.poll_seconds),
            )
            if isinstance(exc, ConfigError):
                raise
            log.warning(
                "imap source %s: %s; next try in %d poll(s)", self.name, exc, self._skip_polls + 1
            )
            return None
        self._failures = 0
        return client

    def _connect(self) -> _Client:
        """Open, secure and log in a new connection (it becomes the current one)."""
        c = self.config
        context: ssl.SSLContext | None = None
        if c.tls != "none":
            context = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
        where = f"{c.host}:{c.port}"
        try:
            client: _Client = IMAPClient(
                c.host, port=c.port, ssl=c.tls == "ssl", ssl_context=context, timeout=c.timeout
            )
        except (*_LOST, IMAPClientError) as exc:
            raise TransientError(f"cannot connect to IMAP server {where}: {exc}") from exc
        try:
            if c.tls == "starttls":
                client.starttls(context)
            if c.oauth2_token is not None:
                client.oauth2_login(c.username, c.oauth2_token.get_secret_value())
            else:
                assert c.password is not None  # the config requires one of the two
                client.login(c.username, c.password.get_secret_value())
        except LoginError as exc:
            _shutdown(client)
            raise ImapLoginError(
                f"imap source {self.name}: the server {where} refused the login of {c.username!r}: {exc}"
            ) from exc
        except (*_LOST, IMAPClientError) as exc:
            _shutdown(client)
            raise TransientError(f"cannot log in to IMAP server {where}: {exc}") from exc
        self._client = client
        self._uidvalidity = None
        self._ready_folders.clear()
        return client

    def _select(self, client: _Client) -> int:
        info = client.select_folder(self.config.folder)
        self._uidvalidity = int(info[b"UIDVALIDITY"])
        return self._uidvalidity

    def _download(self, uid: int) -> bytes | None:
        client = self._client
        if client is None:
            raise _ConnectionLost
        try:
            data = client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
        except _LOST as exc:
            self._lost(f"fetching UID {uid}", exc)
            raise _ConnectionLost from exc
        except IMAPClientError as exc:
            log.warning("imap source %s: cannot fetch UID %d: %s", self.name, uid, exc)
            return None
        if data is None:
            return None  # expunged meanwhile
        body = data.get(b"BODY[]")
        return bytes(body) if body is not None else None

    def _move(self, client: _Client, uid: int, target: str) -> None:
        if target not in self._ready_folders:
            if not client.folder_exists(target):
                try:
                    client.create_folder(target)
                except IMAPClientError:
                    # created by someone else meanwhile is fine
                    if not client.folder_exists(target):
                        raise
            self._ready_folders.add(target)
        if client.has_capability("MOVE"):
            client.move([uid], target)
            return
        client.copy([uid], target)
        client.add_flags([uid], [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()

    def _lost(self, doing: str, exc: BaseException) -> None:
        log.warning("imap source %s: connection lost while %s: %s", self.name, doing, exc)
        self._drop()

    def _drop(self, *, logout: bool = False) -> None:
        client, self._client = self._client, None
        self._uidvalidity = None
        if client is not None:
            if logout:
                with contextlib.suppress(Exception):  # already gone: just close the socket
                    client.logout()
                    return
            _shutdown(client)

    # -- cursor -------------------------------------------------------------------------------

    def _read_cursor(self) -> str | None:
        with self.store.engine.connect() as conn:
            value = conn.execute(
                select(source_cursors.c.value).where(source_cursors.c.source == self.name)
            ).scalar()
        return None if value is None else str(value)

    def _advance(self, uidvalidity: int, uid: int) -> None:
        """Store (uidvalidity, uid): forward only within one UIDVALIDITY; a new UIDVALIDITY replaces."""
        value = f"{uidvalidity}:{uid}"
        with self.store.begin() as conn:
            current = conn.execute(
                select(source_cursors.c.value)
                .where(source_cursors.c.source == self.name)
                .with_for_update()
            ).scalar()
            if current is None:
                conn.execute(
                    insert(source_cursors).values(
                        source=self.name, value=value, updated_at=utcnow()
                    )
                )
                return
            old = parse_cursor(str(current))
            if old is not None and old[0] == uidvalidity and old[1] >= uid:
                return
            conn.execute(
                update(source_cursors)
                .where(source_cursors.c.source == self.name)
                .values(value=value, updated_at=utcnow())
            )


def _shutdown(client: _Client) -> None:
    with contextlib.suppress(Exception):  # the socket is gone already
        client.shutdown()
