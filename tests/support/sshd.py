"""A real OpenSSH server (Debian's openssh-server) on 127.0.0.1 for the SFTP tests.

    sshd = sshd_fixture()                      # in a test module (module scope)

    def test_x(sshd: SshServer) -> None:
        inbox = sshd.folder("t1/inbox")        # a local path the server serves as "t1/inbox"
        ... SftpSourceConfig(**sshd.login(), remote_path="t1/inbox") ...
        sshd.drop_sessions()                   # kill every open session server-side

The server runs as root with its own configuration file, its own ed25519 host key and pid
file in a temporary folder, on a free high port, in the foreground (``-D -e``). It logs in
the system user ``gwsftp`` (created if missing; its random password is kept in
~/.cache/order-gateway-tests, readable by root only) by password or by key, and confines it to ``internal-sftp`` started in a temporary login folder
(``ForceCommand internal-sftp -d``), so relative remote paths start there. A known_hosts
file for the client is written beside it.

Without /usr/sbin/sshd (``apt-get install openssh-server``) or without root the tests skip,
except when GATEWAY_REQUIRE_SERVICES is set (CI): then they fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

SSHD = Path("/usr/sbin/sshd")
USER = "gwsftp"
HOST = "127.0.0.1"

__all__ = ["SshServer", "running_sshd", "sshd_fixture"]


@dataclass
class SshServer:
    host: str
    port: int
    username: str
    password: str
    known_hosts: Path  # "[127.0.0.1]:port ssh-ed25519 ..." for the client
    host_fingerprint: str  # "SHA256:..." of the server's host key
    client_key: Path  # unencrypted ed25519 private key the server accepts
    client_key_encrypted: Path  # the same kind of key, encrypted with `client_key_passphrase`
    client_key_passphrase: str
    home: Path  # the login folder on the local disk: relative remote paths start here
    workdir: Path  # the temporary folder holding everything
    process: subprocess.Popen[bytes]
    log: Path

    def login(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for an SFTP config: host, port, username, password, known_hosts."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "known_hosts": self.known_hosts,
            "timeout": 5,
        }
        values.update(overrides)
        return values

    def folder(self, relative: str) -> Path:
        """Create `relative` (and its parents) under the login folder, owned by the user."""
        pw = pwd.getpwnam(self.username)
        path = self.home
        for part in Path(relative).parts:
            path = path / part
            path.mkdir(exist_ok=True)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    def drop_sessions(self) -> int:
        """Kill every session process of the server (not the listener); returns how many."""
        victims = _descendants(self.process.pid)
        for pid in reversed(victims):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in victims):
            time.sleep(0.01)
        return len(victims)

    def session_count(self) -> int:
        return len(_descendants(self.process.pid))

    def describe(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def _require_services() -> bool:
    return bool(os.environ.get("GATEWAY_REQUIRE_SERVICES"))


def _unavailable(reason: str) -> NoReturn:
    import pytest

    if _require_services():
        pytest.fail(
            f"{reason} (GATEWAY_REQUIRE_SERVICES is set, so this fails instead of skipping)"
        )
    pytest.skip(reason)


@contextlib.contextmanager
def running_sshd() -> Iterator[SshServer]:
    """Start sshd; stop it (and every session it has) afterwards."""
    if not SSHD.exists():
        _unavailable(
            f"OpenSSH server not installed ({SSHD} missing): apt-get install -y openssh-server"
        )
    if os.geteuid() != 0:
        _unavailable("the SFTP tests start sshd as root (to log in a test user); run them as root")
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        _unavailable("ssh-keygen not found (package openssh-client)")
        raise AssertionError  # unreachable: _unavailable raises
    password = _ensure_user()
    pw = pwd.getpwnam(USER)
    workdir = Path(tempfile.mkdtemp(prefix="gw-sshd-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        workdir.chmod(0o755)  # the user walks through it to its login folder
        home = workdir / "home"
        home.mkdir()
        os.chown(home, pw.pw_uid, pw.pw_gid)
        host_key = workdir / "host_ed25519"
        client_key = workdir / "client_ed25519"
        client_key_enc = workdir / "client_ed25519_enc"
        passphrase = "correct horse battery"
        for path, phrase in ((host_key, ""), (client_key, ""), (client_key_enc, passphrase)):
            subprocess.run(
                [
                    keygen,
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    phrase,
                    "-C",
                    "gateway-test",
                    "-f",
                    str(path),
                ],
                check=True,
                capture_output=True,
            )
        authorized = workdir / "authorized_keys"
        authorized.write_text(
            Path(f"{client_key}.pub").read_text() + Path(f"{client_key_enc}.pub").read_text()
        )
        authorized.chmod(0o644)
        fingerprint = subprocess.run(
            [keygen, "-l", "-E", "sha256", "-f", f"{host_key}.pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
        log = workdir / "sshd.log"
        for _attempt in range(5):
            port = _free_port()
            config = workdir / "sshd_config"
            config.write_text(
                f"""\
Port {port}
ListenAddress {HOST}
HostKey {host_key}
PidFile {workdir / "sshd.pid"}
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers {USER}
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile {authorized}
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d {home}
DisableForwarding yes
PermitTTY no
MaxStartups 50
LogLevel VERBOSE
"""
            )
            with open(log, "ab") as log_fh:
                process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(config)],
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if _wait_for_banner(port, process):
                break
            _stop(process)
            process = None
        if process is None:
            raise RuntimeError(
                f"sshd did not start; its log:\n{log.read_text(errors='replace')[-4000:]}"
            )
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{HOST}]:{port} {Path(f'{host_key}.pub').read_text().strip()}\n")
        yield SshServer(
            host=HOST,
            port=port,
            username=USER,
            password=password,
            known_hosts=known_hosts,
            host_fingerprint=fingerprint,
            client_key=client_key,
            client_key_encrypted=client_key_enc,
            client_key_passphrase=passphrase,
            home=home,
            workdir=workdir,
            process=process,
            log=log,
        )
    finally:
        if process is not None:
            for pid in reversed(_descendants(process.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def sshd_fixture(
    scope: Literal["session", "package", "module", "class", "function"] = "module",
) -> Any:
    """A pytest fixture yielding a running SshServer: ``sshd = sshd_fixture()``."""
    import pytest

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[SshServer]:
        with running_sshd() as server:
            yield server

    return _fixture


# -- helpers ---------------------------------------------------------------------------------


def _ensure_user() -> str:
    """Create the test user if missing and give it the machine's test password; return it.

    The password is random, made once per machine and kept in a root-only file, so that test
    runs going on at the same time (each with its own sshd) agree on it.
    """
    state = Path.home() / ".cache" / "order-gateway-tests"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secret = state / f"{USER}-password"
        if not secret.exists():
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(18))
        password = secret.read_text().strip()
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ],
                check=True,
                capture_output=True,
            )
        # UsePAM no: sshd checks the shadow password itself, and a locked account ("!") may not
        # log in at all, not even with a key.
        subprocess.run(
            ["chpasswd"], input=f"{USER}:{password}\n".encode(), check=True, capture_output=True
        )
    return password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _descendants(root: int) -> list[int]:
    """Process ids below `root`, parents before children (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"
