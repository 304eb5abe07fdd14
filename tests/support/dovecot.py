"""A real Dovecot IMAP server (Debian's dovecot-imapd) on 127.0.0.1 for the IMAP tests.

    dovecot = dovecot_fixture()                 # in a test module (module scope)

    def test_x(dovecot: DovecotServer) -> None:
        user = dovecot.new_user()               # any user name logs in: a fresh, empty mailbox
        dovecot.append(user, b"Subject: x\\r\\n\\r\\nbody")
        ... ImapSourceConfig(**dovecot.login(user), ...) ...
        dovecot.kick(user)                      # drop the user's sessions server-side (BYE)
        dovecot.kill_sessions(user)             # ... or with no BYE at all (EOF)
        dovecot.set_uidvalidity(user, "INBOX", 12345)
        dovecot.log_lines(user)                 # what the server logged for the user

    with running_dovecot(imap_capability="IMAP4rev1 MOVE") as server:  # a server without IDLE
        ...

Everything lives in a temporary folder: its own dovecot.conf (nothing from /etc/dovecot is
read), a self-signed certificate made by openssl, free ports for imap and imaps, mail as
maildir. A static passdb lets any user name log in with one password. The config syntax is
chosen from ``dovecot --version`` (2.3 for Debian 12, 2.4 for Debian 13).

Without dovecot (``apt-get install dovecot-imapd``) the tests skip, except when
GATEWAY_REQUIRE_SERVICES is set (CI): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

HOST = "127.0.0.1"
PASSWORD = "imap-test-secret"

__all__ = ["DovecotServer", "dovecot_fixture", "running_dovecot"]


@dataclass
class DovecotServer:
    host: str
    port: int  # plain IMAP (STARTTLS offered)
    ssl_port: int  # implicit TLS
    password: str
    ca_file: Path  # the self-signed server certificate
    workdir: Path
    conf: Path
    syntax: str  # "2.3" or "2.4"

    def new_user(self) -> str:
        """A fresh user name: its mailbox is empty."""
        return f"u{uuid.uuid4().hex[:12]}@example.test"

    def login(self, username: str, *, tls: str = "none", **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for an ImapSourceConfig: host, port, tls, ca_file, username, password."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.ssl_port if tls == "ssl" else self.port,
            "tls": tls,
            "ca_file": self.ca_file,
            "username": username,
            "password": self.password,
            "timeout": 5,
        }
        values.update(overrides)
        return values

    def client(self, username: str) -> Any:
        """A logged-in IMAPClient (implicit TLS) for setting up and checking a mailbox."""
        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=str(self.ca_file))
        c = IMAPClient(self.host, port=self.ssl_port, ssl=True, ssl_context=context, timeout=10)
        c.login(username, self.password)
        return c

    def append(self, username: str, body: bytes, folder: str = "INBOX") -> int:
        """APPEND one message; returns its UID."""
        with self.client(username) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            answer = c.append(folder, body)
        m = re.search(rb"APPENDUID \d+ (\d+)", answer if isinstance(answer, bytes) else b"")
        return int(m.group(1)) if m else 0

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["doveadm", "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=check,
        )

    def kick(self, username: str) -> None:
        """Drop every session of the user (``doveadm kick``; rc 68 on 2.3 when none is open)."""
        self.doveadm("kick", username, check=False)

    def kill_sessions(self, username: str) -> int:
        """SIGKILL the user's imap processes: their connections end with no BYE (bare EOF),
        as when a server crashes. Returns how many were killed."""
        out = self.doveadm("who", "-1", username, check=False).stdout
        pids = [
            int(f[2])
            for f in (line.split() for line in out.splitlines()[1:])
            if len(f) >= 3 and f[2].isdigit()
        ]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def set_uidvalidity(self, username: str, folder: str, value: int) -> None:
        self.doveadm("mailbox", "update", "-u", username, "--uid-validity", str(value), folder)

    def log_lines(self, username: str) -> list[str]:
        """Lines of the server log about the user: logins (``Login: user=<...>``) and the
        sessions' own lines (``imap(<user>)...: Disconnected: Logged out`` and the like)."""
        log = self.workdir / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        marks = (f"imap({username})", f"user=<{username}>")
        return [line for line in text.splitlines() if any(m in line for m in marks)]


def _require_services() -> bool:
    return bool(os.environ.get("GATEWAY_REQUIRE_SERVICES"))


def _unavailable(reason: str) -> NoReturn:
    import pytest

    if _require_services():
        pytest.fail(
            f"{reason} (GATEWAY_REQUIRE_SERVICES is set, so this fails instead of skipping)"
        )
    pytest.skip(reason)


def _syntax() -> str:
    out = subprocess.run(
        ["dovecot", "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    m = re.match(r"\s*(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot parse 'dovecot --version': {out!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    return "2.3" if (major, minor) <= (2, 3) else "2.4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _conf(
    syntax: str,
    d: Path,
    port: int,
    sport: int,
    owner: tuple[str, str],
    imap_capability: str | None = None,
) -> str:
    uid, gid = owner
    # The whole CAPABILITY list after login (2.3 syntax; checked on Dovecot 2.3.19 only).
    capability = f"  imap_capability = {imap_capability}\n" if imap_capability else ""
    common_tail = f"""
namespace inbox {{
  inbox = yes
  separator = /
}}
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
{capability}}}
"""
    if syntax == "2.3":
        return (
            f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = gateway-test-{port}
protocols = imap
listen = {HOST}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mail_fsync = never
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
ssl = yes
ssl_cert = <{d}/ssl/cert.pem
ssl_key = <{d}/ssl/key.pem
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {sport}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0
  }}
}}
"""
            + common_tail
        )
    return (
        f"""dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {d}/run
state_dir = {d}/state
instance_name = gateway-test-{port}
protocols = imap
listen = {HOST}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
first_valid_uid = 1
mail_driver = maildir
mail_path = {d}/mail/%{{user}}
mail_fsync = never
auth_allow_cleartext = yes
auth_mechanisms = plain login
passdb static {{
  password = {PASSWORD}
}}
userdb static {{
  fields {{
    uid = {uid}
    gid = {gid}
    home = {d}/mail/%{{user}}
  }}
}}
ssl = yes
ssl_server_cert_file = {d}/ssl/cert.pem
ssl_server_key_file = {d}/ssl/key.pem
service imap-login {{
  inet_listener imap {{
    listen = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    listen = {HOST}
    port = {sport}
    ssl = yes
  }}
}}
"""
        + common_tail
    )


def _wait_ready(port: int, log: Path, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1) as s:
            if s.recv(200).startswith(b"* OK"):
                return
        time.sleep(0.05)
    text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"dovecot did not answer on port {port}; log:\n{text}")


def _stop(pidfile: Path) -> None:
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
    except ValueError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_dovecot(*, imap_capability: str | None = None) -> Iterator[DovecotServer]:
    """Start a private Dovecot; stop it and remove its folder afterwards.

    ``imap_capability`` replaces the CAPABILITY list the server sends after login (to test
    a server without IDLE, say). It is set up for Dovecot 2.3 only: on 2.4 the test skips.
    """
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        _unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
    if shutil.which("openssl") is None:
        _unavailable("openssl is not installed")
    syntax = _syntax()
    if imap_capability is not None and syntax != "2.3":
        import pytest

        pytest.skip("imap_capability is written and checked for Dovecot 2.3 only")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-dovecot-"))
    os.chmod(workdir, 0o755)
    pidfile = workdir / "run" / "master.pid"
    try:
        for sub in ("run", "state", "mail", "ssl"):
            (workdir / sub).mkdir()
        if os.geteuid() == 0:
            # dovecot refuses to deliver mail as root: use its own system user
            owner = ("dovecot", "dovecot")
            shutil.chown(workdir / "mail", "dovecot", "dovecot")
        else:
            import grp
            import pwd

            owner = (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", f"subjectAltName=DNS:localhost,IP:{HOST}",
                "-keyout", str(workdir / "ssl" / "key.pem"), "-out", str(workdir / "ssl" / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        port, sport = _free_port(), _free_port()
        conf = workdir / "dovecot.conf"
        conf.write_text(_conf(syntax, workdir, port, sport, owner, imap_capability))
        # The master keeps fd 2 open: never capture its output (the call would wait forever).
        err = workdir / "startup.err"
        with open(err, "wb") as errf:
            rc = subprocess.call(
                ["dovecot", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errf,
            )
        if rc != 0:
            raise RuntimeError(
                f"dovecot did not start (rc {rc}): {err.read_text(errors='replace')}"
            )
        _wait_ready(port, workdir / "dovecot.log")
        yield DovecotServer(
            HOST, port, sport, PASSWORD, workdir / "ssl" / "cert.pem", workdir, conf, syntax
        )
    finally:
        _stop(pidfile)
        shutil.rmtree(workdir, ignore_errors=True)


def dovecot_fixture(
    scope: Literal["session", "package", "module", "class", "function"] = "module",
) -> Any:
    """A pytest fixture yielding a running DovecotServer: ``dovecot = dovecot_fixture()``."""
    import pytest

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[DovecotServer]:
        with running_dovecot() as server:
            yield server

    return _fixture
