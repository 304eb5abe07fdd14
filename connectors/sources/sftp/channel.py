"""SFTP connections (host key always verified) and the delivery channel built on them.

`SftpServer` turns a configuration into authenticated `SftpSession`s; the SFTP source and
`SftpChannel` (which delivers files such as acknowledgements into a partner's outbound
folder) both use it.

Errors, by what the caller should do::

    HostKeyError (ConfigError)   the server's key is unknown or changed: a person checks it
                                 (possible man-in-the-middle); nothing was sent, no password
    LoginError (ConfigError)     the server refused our username, password or key
    ConfigError                  known_hosts or the private key cannot be read
    TransientError               the server cannot be reached, the connection dropped, timed
                                 out or a transfer failed on the server (disk full): retry
    PermanentError               SftpChannel.put: the folder is missing or not writable

A put is atomic: the data goes to ``.<name>.part`` in the same folder and is then renamed
over ``<name>`` (posix-rename@openssh.com), so the partner never picks up half a file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import posixpath
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from connectors.sources.sftp.config import SftpChannelConfig, SftpServerConfig
from gateway.errors import ConfigError, PermanentError, TransientError

log = logging.getLogger(__name__)

__all__ = [
    "HostKeyError",
    "LoginError",
    "SftpChannel",
    "SftpChannelConfig",
    "SftpServer",
    "SftpSession",
    "connection_lost",
]

# A file name we create on a partner's server: one path segment, printable, no leading dot.
_PUT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


class HostKeyError(ConfigError):
    """The server's host key is not the one configured: nothing was sent to it."""


class LoginError(ConfigError):
    """The server refused our credentials."""


@dataclass(slots=True)
class SftpSession:
    """One authenticated SSH connection with its SFTP channel."""

    client: paramiko.SSHClient
    sftp: paramiko.SFTPClient

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail in any way
            self.sftp.close()
        self.client.close()


def connection_lost(exc: BaseException, session: SftpSession | None) -> bool:
    """Whether `exc` (raised by an SFTP call) means the connection is gone, not just a file error."""
    if isinstance(exc, (EOFError, paramiko.SSHException, paramiko.SFTPError, TimeoutError)):
        return True
    return session is None or not session.alive()


class _VerifyHostKey(paramiko.MissingHostKeyPolicy):
    """Called by paramiko for a host not in known_hosts: accept only the configured fingerprint."""

    def __init__(self, config: SftpServerConfig):
        self.config = config

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        cfg = self.config
        if cfg.host_key is not None:
            if key.fingerprint == cfg.host_key:
                return
            raise HostKeyError(
                f"sftp {cfg.host}:{cfg.port}: the server's {key.get_name()} host key is {key.fingerprint}, "
                f"not the configured host_key {cfg.host_key}; nothing was sent. If the server's key changed "
                "on purpose, update host_key (ssh-keygen -lf on the server's key); otherwise this may be "
                "a man-in-the-middle"
            )
        raise HostKeyError(
            f"sftp {cfg.host}:{cfg.port}: the server is not in {cfg.known_hosts} (it offered a "
            f"{key.get_name()} key {key.fingerprint}); nothing was sent. Add its key after checking the "
            "fingerprint with the server's administrator (host keys are never added automatically)"
        )


class SftpServer:
    """Opens sessions to one configured server.

    The private key and known_hosts are read here, so a missing or unreadable file stops
    start-up (ConfigError) instead of failing at the first poll.
    """

    def __init__(self, config: SftpServerConfig):
        self.config = config
        self._pkey = _load_key(config)
        if config.known_hosts is not None:
            _check_known_hosts(config.known_hosts)

    @property
    def address(self) -> str:
        return f"{self.config.username}@{self.config.host}:{self.config.port}"

    def connect(self) -> SftpSession:
        """A new authenticated session. Raises HostKeyError, LoginError or TransientError."""
        cfg = self.config
        client = paramiko.SSHClient()
        try:
            if cfg.known_hosts is not None:
                # "System" host keys are only read, never written back.
                client.load_system_host_keys(str(cfg.known_hosts))
            client.set_missing_host_key_policy(_VerifyHostKey(cfg))
            client.connect(
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password.get_secret_value() if cfg.password is not None else None,
                pkey=self._pkey,
                timeout=cfg.timeout,
                banner_timeout=cfg.timeout,
                auth_timeout=cfg.timeout,
                channel_timeout=cfg.timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(cfg.timeout)
        except ConfigError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                f"sftp {cfg.host}:{cfg.port}: the server's host key changed: {cfg.known_hosts} has "
                f"{exc.expected_key.get_name()} {exc.expected_key.fingerprint}, the server offered "
                f"{exc.key.get_name()} {exc.key.fingerprint}; nothing was sent. This may be a "
                "man-in-the-middle; if the key changed on purpose, update known_hosts"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise LoginError(
                f"sftp {self.address}: login refused ({exc}); check username, password or key"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise TransientError(f"sftp {self.address}: cannot connect: {_describe(exc)}") from exc
        except BaseException:
            client.close()
            raise
        log.info("sftp %s: connected", self.address)
        return SftpSession(client, sftp)


class SftpChannel:
    """Delivers files into one folder on an SFTP server, atomically (``put``).

    The connection is opened on the first put and kept; a dropped connection is reopened
    once per put before it gives up with TransientError.
    """

    def __init__(self, config: SftpChannelConfig, *, server: SftpServer | None = None):
        self.config = config
        self._server = server or SftpServer(config)
        self._session: SftpSession | None = None

    def put(self, name: str, data: bytes) -> str:
        """Write `data` as `name` in the remote folder; return the remote path written.

        `name` must be one plain file name (letters, digits, ``._-``, no leading dot). An
        existing file of that name is replaced atomically.
        """
        if not _PUT_NAME.match(name):
            raise ValueError(f"not a safe remote file name: {name!r}")
        final = posixpath.join(self.config.remote_path, name)
        part = posixpath.join(self.config.remote_path, f".{name}.part")
        for attempt in (1, 2):
            session = self._connected()
            try:
                _upload(session.sftp, part, final, data)
            except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as exc:
                if connection_lost(exc, session):
                    self._drop()
                    if attempt == 1:
                        log.info(
                            "sftp %s: connection lost during put (%s); reconnecting",
                            self._server.address,
                            _describe(exc),
                        )
                        continue
                    raise TransientError(
                        f"sftp {self._server.address}: connection lost during put: {_describe(exc)}"
                    ) from exc
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    session.sftp.remove(part)
                if isinstance(exc, (FileNotFoundError, PermissionError)):
                    raise PermanentError(
                        f"sftp {self._server.address}: cannot write into {self.config.remote_path}: {_describe(exc)}"
                    ) from exc
                raise TransientError(
                    f"sftp {self._server.address}: put {name} failed: {_describe(exc)}"
                ) from exc
            return final
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> SftpChannel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _connected(self) -> SftpSession:
        if self._session is not None and not self._session.alive():
            self._drop()
        if self._session is None:
            self._session = self._server.connect()
        return self._session

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _upload(sftp: paramiko.SFTPClient, part: str, final: str, data: bytes) -> None:
    with sftp.open(part, "wb") as fh:
        fh.set_pipelined(True)
        fh.write(data)
    written = sftp.stat(part).st_size
    if written != len(data):
        raise OSError(errno.EIO, f"{written} of {len(data)} bytes arrived")
    try:
        sftp.posix_rename(part, final)  # replaces an existing file atomically
    except OSError:
        # A server without the posix-rename extension: a plain rename works when the name is free.
        sftp.rename(part, final)


def _load_key(config: SftpServerConfig) -> paramiko.PKey | None:
    path = config.private_key_file
    if path is None:
        return None
    passphrase = (
        config.passphrase.get_secret_value().encode() if config.passphrase is not None else None
    )
    try:
        return paramiko.PKey.from_path(path, passphrase)  # type: ignore[arg-type]  # bytes work, and are needed
    except OSError as exc:
        raise ConfigError(
            f"private_key_file {path}: cannot be read: {exc.strerror or exc}"
        ) from None
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if passphrase is None:
            raise ConfigError(
                f"private_key_file {path}: the key is encrypted; set passphrase"
            ) from None
        raise ConfigError(f"private_key_file {path}: not a usable private key ({exc})") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(
            f"private_key_file {path}: not a usable private key or wrong passphrase ({exc})"
        ) from None


def _check_known_hosts(path: Path) -> None:
    try:
        paramiko.HostKeys(str(path))
    except OSError as exc:
        raise ConfigError(f"known_hosts {path}: cannot be read: {exc.strerror or exc}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
