"""IMAP source: order mails are read from one folder of an IMAP mailbox.

Capabilities: poll + ack (move to a folder chosen by the outcome), and a watcher that waits
in IDLE (RFC 2177) for new mail. ``routes_by_outcome = True``: the gateway processes a mail
before acknowledging it, so the ack can say where the mail belongs. Config keys: see
ImapSourceConfig.

- The connection is kept between polls (checked with NOOP first). When it drops, the poll
  ends without acknowledging anything; the next poll reconnects. Failed connects in a row
  back off (0, 1, 3, 7, ... polls skipped, at most five minutes' worth). A refused login
  raises ImapLoginError (a ConfigError) from poll.
- Cursor per source: ``"<UIDVALIDITY>:<last committed UID>"`` in the ``source_cursors``
  table under the source's name. It is written by this module (forward only within one
  UIDVALIDITY, through ``gateway.store.cursors.write_cursor``), never with ``set_cursor``, whose values are timestamps.
  A poll searches ``UID last+1:*``. When the folder's UIDVALIDITY differs from the stored
  one, a warning is logged and the whole folder is offered again: the store recognises
  mails it already has by the SHA-256 of their bytes, and the ack moves them away.
- RFC822.SIZE is checked before anything is downloaded: a mail over ``max_message_bytes``
  is offered as a small refusal (``rejected="MAIL_TOO_LARGE: ..."``) and moved to the
  failed folder on ack. Mails are fetched with ``BODY.PEEK[]``, so \\Seen is never set.
- ``ack`` runs only after the commit and moves the mail by outcome: ``stored`` and
  ``duplicate`` to ``processed_folder``, ``review`` to ``review_folder`` (a person must look
  at it), ``rejected`` to ``failed_folder``. MOVE, or without the MOVE capability COPY +
  \\Deleted + UID EXPUNGE (plain EXPUNGE when the server lacks UIDPLUS). Target folders are
  created if missing. Then the cursor advances, but never past a mail of the same poll that
  is still unacknowledged. A crash between commit and move re-offers the mail on the next
  poll; the store answers "duplicate" and the move completes.
- IDLE (``idle: true``, the default): ``wait_for_mail(stop)`` runs on a second connection
  of its own (the poll connection stays free for polls and acks), opens the folder
  read-only (EXAMINE) and waits in IDLE. It returns ``"new_mail"`` when the server reports
  more messages (EXISTS or RECENT growing), ``"timeout"`` after ``idle_seconds`` (call again:
  the IDLE is re-issued on the same connection, as RFC 2177 asks at least every 29 minutes),
  ``"stopped"`` once the stop event is set (DONE + LOGOUT sent; seen within about a second),
  ``"unsupported"`` when the server does not advertise IDLE (logged once; the caller keeps
  to polling) and ``"disabled"`` with ``idle: false`` (nothing is opened). A dropped watcher
  connection (``doveadm kick``, a restart, a BYE, EOF) is reopened inside the call with
  back-off (1, 2, 4, ... seconds, at most five minutes); mail that arrived meanwhile (UIDNEXT
  grew) is reported at once. Network and server trouble is logged, never raised.
  ``gateway.service`` runs it on a daemon thread per source and, on ``"new_mail"``, runs the
  source's poll job at once; the poll every ``poll_seconds`` goes on as a safety net.

Error mapping
    server unreachable, connection dropped, timeout   logged; the poll yields nothing more
    login refused                                     ImapLoginError (a ConfigError) from poll
    folder cannot be selected                         logged; the poll yields nothing
    connection lost during ack, or UIDVALIDITY        TransientError from ack (the mail stays
    changed before the ack                            and is offered again)
    any trouble on the IDLE connection                logged; reconnected with back-off inside
    (incl. login refused)                             wait_for_mail, which never raises for it
"""

from __future__ import annotations

import contextlib
import email.header
import imaplib
import logging
import re
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from connectors.sources.imap.config import ImapSourceConfig
from gateway.connector import AckOutcome, RawMessage
from gateway.errors import ConfigError, TransientError
from gateway.redact import printable
from gateway.store.cursors import get_cursor, write_cursor
from gateway.store.db import Store

log = logging.getLogger(__name__)

__all__ = ["IdleOutcome", "ImapLoginError", "ImapSource", "parse_cursor"]

IdleOutcome = Literal["new_mail", "timeout", "stopped", "unsupported", "disabled"]

_MAX_BACKOFF_SECONDS = 300.0
_IDLE_STEP_SECONDS = 1.0  # an IDLE wait looks at the stop event this often
_IDLE_STABLE_SECONDS = 60.0  # a watcher connection that lived this long restarts the back-off
_LOST = (imaplib.IMAP4.abort, OSError, EOFError, socket.timeout)
_CURSOR = re.compile(r"^(\d+):(\d+)$")
# imapclient ships partial type hints only (many methods unannotated): use it untyped.
_Client = Any


class ImapLoginError(ConfigError):
    """The IMAP server refused the login (wrong user name, password or token)."""


class _ConnectionLost(Exception):
    """Internal: the connection dropped in the middle of a poll."""


class _IdleUnsupported(Exception):
    """Internal: the server does not advertise IDLE."""


@dataclass(slots=True)
class _Claim:
    uidvalidity: int
    uid: int


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
    text = printable(text, replacement=" ")
    return " ".join(text.replace("/", "-").replace("\\", "-").split())[:200]


class ImapSource:
    """Polls one folder of an IMAP mailbox; see the module docstring for the behaviour."""

    # The gateway processes each mail before acknowledging it, so that ack() can move it to
    # the processed, review or failed folder by the result.
    routes_by_outcome = True

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
        self._moved: set[int] = set()  # UIDs moved since the current poll started (for the cursor)
        # The IDLE watcher's own connection and what it knows of the folder; used only by
        # the thread that calls wait_for_mail.
        self._idle_client: _Client | None = None
        self._idle_failures = 0
        self._idle_unsupported = False
        self._idle_exists = 0
        self._idle_recent = 0
        self._idle_seen: tuple[int, int] | None = None  # (UIDVALIDITY, UIDNEXT) last seen
        self._idle_opened = 0.0  # time.monotonic() when the watcher connection was opened
        self._idling = False

    # -- the Source protocol ------------------------------------------------------------------

    def poll(self) -> Iterator[RawMessage]:
        """Yield each new mail (or refusal) in the folder; acknowledges nothing."""
        client = self._connected()
        if client is None:
            return
        self._pending.clear()
        self._moved.clear()
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
                body=body,
                source=self.name,
                source_ref=ref,
                display_name=shown,
                ack_token=claim,
                dedupe_key=_dedupe_key(getattr(envelope, "message_id", None)),
            )
            if self._client is None:
                return  # an ack in between lost the connection

    def ack(self, message: RawMessage, outcome: AckOutcome, message_id: str) -> None:
        """Move the committed mail to the folder for its outcome; advance the cursor."""
        claim = message.ack_token
        if not isinstance(claim, _Claim):
            raise TypeError(f"message {message.source_ref} did not come from this source")
        target = self._folder_for(outcome)
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
        self._moved.add(claim.uid)
        below = min(self._pending, default=None)
        done = [u for u in self._moved if below is None or u < below]
        if done:
            self._advance(claim.uidvalidity, max(done))

    def close(self) -> None:
        """Log out of both connections (the next poll opens a new one).

        Call it once the thread in wait_for_mail has returned (the service joins it first).
        """
        self._drop(logout=True)
        self._close_idle()

    # -- IDLE ---------------------------------------------------------------------------------

    @property
    def idling(self) -> bool:
        """True while an IDLE command is open on the watcher connection."""
        return self._idling

    def wait_for_mail(self, stop: threading.Event) -> IdleOutcome:
        """Wait in IDLE on a second connection until new mail, ``idle_seconds`` or ``stop``.

        Returns "new_mail", "timeout" (call again to re-issue the IDLE), "stopped" (logged
        out), "unsupported" (the server lacks IDLE; logged once) or "disabled" (idle: false).
        A lost connection is reopened inside the call with back-off; nothing is raised for
        network or server trouble. Call it from one thread at a time.
        """
        if not self.config.idle:
            return "disabled"
        if self._idle_unsupported:
            return "unsupported"
        delay = 0.0
        while True:
            if stop.wait(delay):
                self._close_idle()
                return "stopped"
            client = self._idle_client
            if client is None:
                try:
                    client, missed = self._open_idle()
                except _IdleUnsupported:
                    return "unsupported"
                except ConfigError as exc:
                    delay = self._idle_failed(str(exc), logging.ERROR)
                    continue
                except TransientError as exc:
                    delay = self._idle_failed(str(exc))
                    continue
                except Exception:  # a watcher must outlive surprises: log, try again later
                    log.exception("imap source %s: unexpected error opening IDLE", self.name)
                    delay = self._idle_failed("unexpected error opening IDLE (logged above)")
                    continue
                if missed:
                    return "new_mail"
            try:
                outcome = self._idle_once(client, stop)
            except (*_LOST, IMAPClientError) as exc:
                self._drop_idle()
                delay = self._idle_failed(f"the IDLE connection was lost ({_describe(exc)})")
                continue
            except Exception:  # a watcher must outlive surprises: log, reconnect later
                log.exception("imap source %s: unexpected error in IDLE", self.name)
                self._drop_idle()
                delay = self._idle_failed("unexpected error in IDLE (logged above)")
                continue
            self._idle_failures = 0
            if outcome == "stopped":
                self._close_idle()
            return outcome

    def _open_idle(self) -> tuple[_Client, bool]:
        """Open the watcher connection and EXAMINE the folder; True if mail came meanwhile."""
        c = self.config
        client = self._open()
        try:
            if not client.has_capability("IDLE"):
                self._idle_unsupported = True
                log.warning(
                    "imap source %s: the server %s:%d does not offer IDLE; new mail is found by "
                    "polling every %g s",
                    self.name,
                    c.host,
                    c.port,
                    c.poll_seconds,
                )
                _logout(client)
                raise _IdleUnsupported
            info = client.select_folder(c.folder, readonly=True)
        except (*_LOST, IMAPClientError) as exc:
            _shutdown(client)
            raise TransientError(f"cannot open {c.folder} for IDLE: {_describe(exc)}") from exc
        except BaseException:
            _shutdown(client)
            raise
        self._idle_client = client
        self._idle_opened = time.monotonic()
        self._idle_exists = int(info.get(b"EXISTS", 0))
        self._idle_recent = int(info.get(b"RECENT", 0))
        seen = (int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"UIDNEXT", 0)))
        before, self._idle_seen = self._idle_seen, seen
        # Mail that arrived while no IDLE was open (first start, reconnect) is reported at
        # once: on the first connection any mail in the folder, later a grown UIDNEXT.
        missed = self._idle_exists > 0 and (
            before is None or seen[0] != before[0] or seen[1] > before[1]
        )
        log.info(
            "imap source %s: watching %s with IDLE%s (re-issued every %g s)",
            self.name,
            c.folder,
            " again" if self._idle_failures else "",
            c.idle_seconds,
        )
        return client, missed

    def _idle_once(self, client: _Client, stop: threading.Event) -> IdleOutcome:
        """One IDLE command: "new_mail", "timeout" or "stopped" (DONE sent in each case)."""
        client.idle()
        self._idling = True
        try:
            deadline = time.monotonic() + self.config.idle_seconds
            while True:
                if stop.is_set():
                    self._idle_done(client)
                    return "stopped"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "new_mail" if self._idle_done(client) else "timeout"
                step = min(remaining, _IDLE_STEP_SECONDS)
                started = time.monotonic()
                responses = client.idle_check(timeout=step)
                if self._new_mail_in(responses):
                    self._idle_done(client)
                    return "new_mail"
                if not responses and time.monotonic() - started < step / 2:
                    # Readable, yet no whole line: the server closed the connection (EOF;
                    # imapclient then returns nothing, at once, forever) or a line is on its
                    # way. Ending the IDLE tells which: on EOF it raises.
                    if self._idle_done(client):
                        return "new_mail"
                    client.idle()
                    self._idling = True
        finally:
            self._idling = False

    def _idle_done(self, client: _Client) -> bool:
        """Send DONE; True if the responses that came with it report new mail."""
        self._idling = False
        _text, responses = client.idle_done()
        return self._new_mail_in(responses)

    def _new_mail_in(self, responses: list[Any]) -> bool:
        """Follow EXISTS/RECENT/EXPUNGE; True when the folder holds more mail than before."""
        new = False
        for resp in responses:
            if not isinstance(resp, tuple) or not resp:
                continue
            if isinstance(resp[0], int) and len(resp) > 1:
                count, kind = resp[0], resp[1]
                if kind == b"EXISTS":
                    new = new or count > self._idle_exists
                    self._idle_exists = count
                elif kind == b"RECENT":
                    new = new or count > self._idle_recent
                    self._idle_recent = count
                elif kind == b"EXPUNGE":
                    self._idle_exists = max(0, self._idle_exists - 1)
            elif resp[0] == b"BYE":
                said = b" ".join(x for x in resp[1:] if isinstance(x, bytes))
                raise imaplib.IMAP4.abort(f"the server said BYE: {said.decode('ascii', 'replace')}")
        return new

    def _idle_failed(self, reason: str, level: int = logging.WARNING) -> float:
        """Count a failure; the back-off before the next try (1, 2, 4, ... s, at most 300).

        A connection that worked for a while before it dropped (a NAT that forgets quiet
        connections, a server restart) starts the back-off again from 1 s.
        """
        if self._idle_opened and time.monotonic() - self._idle_opened >= _IDLE_STABLE_SECONDS:
            self._idle_failures = 0
        self._idle_opened = 0.0
        self._idle_failures += 1
        delay = min(2.0 ** (self._idle_failures - 1), _MAX_BACKOFF_SECONDS)
        log.log(
            level,
            "imap source %s: %s; IDLE reconnects in %g s (polling goes on meanwhile)",
            self.name,
            reason,
            delay,
        )
        return delay

    def _drop_idle(self) -> None:
        client, self._idle_client = self._idle_client, None
        self._idling = False
        if client is not None:
            _shutdown(client)

    def _close_idle(self) -> None:
        """LOGOUT on the watcher connection (DONE was sent before), or just close it."""
        client, self._idle_client = self._idle_client, None
        self._idling = False
        if client is not None:
            _logout(client)

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
        client = self._open()
        self._client = client
        self._uidvalidity = None
        self._ready_folders.clear()
        return client

    def _open(self) -> _Client:
        """Open, secure and log in a new connection."""
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

    def _folder_for(self, outcome: AckOutcome) -> str:
        c = self.config
        if outcome == "review":
            return c.review_folder
        if outcome == "rejected":
            return c.failed_folder
        return c.processed_folder  # stored, duplicate

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
        try:
            self._move_one(client, uid, target)
        except _LOST:
            raise
        except IMAPClientError:
            # Another poll (or node) that read the same mail moved it first: not an error.
            if client.search(["UID", str(uid)]):
                raise
            log.info("imap source %s: UID %d was already moved by another poll", self.name, uid)

    @staticmethod
    def _move_one(client: _Client, uid: int, target: str) -> None:
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
                _logout(client)
            else:
                _shutdown(client)

    # -- cursor -------------------------------------------------------------------------------

    def _read_cursor(self) -> str | None:
        return get_cursor(self.store, self.name)

    def _advance(self, uidvalidity: int, uid: int) -> None:
        """Store (uidvalidity, uid): forward only within one UIDVALIDITY; a new UIDVALIDITY replaces."""

        def replaces(current: str) -> bool:
            old = parse_cursor(current)
            return not (old is not None and old[0] == uidvalidity and old[1] >= uid)

        write_cursor(self.store, self.name, f"{uidvalidity}:{uid}", replaces=replaces)


_MSG_ID = re.compile(r"^<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>$")


def _dedupe_key(message_id: Any) -> str | None:
    """The mail's identity for the store: its Message-ID when it is a well-formed one.

    A mailbox rescan (UIDVALIDITY changed) or a second delivery of the same mail with other
    Received headers is then recognised though the bytes differ (RFC 5322 3.6.4: the id is
    unique per message). A mail without a usable id is recognised by its bytes only."""
    if not isinstance(message_id, bytes):
        return None
    value = message_id.decode("ascii", "replace").strip()
    return f"message-id:{value}" if _MSG_ID.match(value) and len(value) <= 250 else None


def _shutdown(client: _Client) -> None:
    with contextlib.suppress(Exception):  # the socket is gone already
        client.shutdown()


def _logout(client: _Client) -> None:
    try:
        client.logout()
    except Exception:  # already gone: just close the socket
        _shutdown(client)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
