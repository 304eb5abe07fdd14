"""The SFTP source and channel against a real OpenSSH server (tests/support/sshd.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from pydantic import ValidationError

from connectors.sources.sftp.channel import HostKeyError, LoginError, SftpChannel, SftpServer
from connectors.sources.sftp.config import SftpChannelConfig, SftpSourceConfig
from connectors.sources.sftp.source import SftpSource
from gateway.app import Gateway
from gateway.config import load_config
from gateway.connector import RawMessage
from tests.support.sshd import SshServer, sshd_fixture

# paramiko may warn about algorithms cryptography deprecates (TripleDES, ...); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

sshd = sshd_fixture()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def area(sshd: SshServer, request: pytest.FixtureRequest) -> Path:
    """A fresh folder on the server for one test, with inbox/, archive/ and failed/."""
    name = "t-" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    root = sshd.folder(name)
    for sub in ("inbox", "archive", "failed"):
        sshd.folder(f"{name}/{sub}")
    return root


def source_config(sshd: SshServer, area: Path, **kw: Any) -> SftpSourceConfig:
    values: dict[str, Any] = {
        "name": "partner-sftp",
        "remote_path": f"{area.name}/inbox",
        "archive_path": f"{area.name}/archive",
        "stable_seconds": 0,
        **sshd.login(),
    }
    values.update(kw)
    return SftpSourceConfig(**values)


@pytest.fixture
def make_source(sshd: SshServer, area: Path) -> Iterator[Any]:
    made: list[SftpSource] = []

    def make(clock: Clock | None = None, **kw: Any) -> SftpSource:
        src = SftpSource(source_config(sshd, area, **kw), clock=clock or Clock())
        made.append(src)
        return src

    yield make
    for src in made:
        src.close()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every remote file the client opens."""
    calls: list[str] = []
    real = paramiko.SFTPClient.open

    def spy(self: paramiko.SFTPClient, filename: Any, mode: str = "r", bufsize: int = -1) -> Any:
        calls.append(str(filename))
        return real(self, filename, mode, bufsize)

    monkeypatch.setattr(paramiko.SFTPClient, "open", spy)
    return calls


def ls(path: Path) -> list[str]:
    return sorted(os.listdir(path))


# -- picking up ------------------------------------------------------------------------------


def test_file_is_claimed_only_once_stable_then_archived(make_source, area):
    clock = Clock()
    src = make_source(clock, stable_seconds=1)
    f = area / "inbox" / "po.edi"
    f.write_bytes(b"ISA first part")
    assert list(src.poll()) == []  # first sight
    clock.now += 2
    with open(f, "ab") as fh:  # still being written
        fh.write(b" more")
    assert list(src.poll()) == []
    clock.now += 0.5
    assert list(src.poll()) == []  # unchanged, but not for long enough
    clock.now += 1
    [msg] = list(src.poll())
    assert msg.body == b"ISA first part more"
    assert msg.display_name == "po.edi" and msg.rejected is None
    assert ls(area / "inbox") == ["po.edi"]  # nothing moves before the ack
    src.ack(msg, "stored", "abcdef12-3456")
    assert ls(area / "inbox") == []
    [archived] = ls(area / "archive")
    assert archived.endswith("-abcdef12-po.edi")
    assert (area / "archive" / archived).read_bytes() == b"ISA first part more"
    clock.now += 10
    assert list(src.poll()) == []
    src.ack(msg, "duplicate", "abcdef12-3456")  # moved already (by another poll): skipped, not an error
    assert ls(area / "archive") == [archived]


def test_done_marker_claims_and_is_removed(make_source, area):
    src = make_source(done_suffix=".done", stable_seconds=3600)
    (area / "inbox" / "po.edi").write_bytes(b"data")
    assert list(src.poll()) == []
    (area / "inbox" / "po.edi.done").write_bytes(b"")
    [msg] = list(src.poll())
    assert msg.body == b"data"
    src.ack(msg, "stored", "abcdef12-0000")
    assert ls(area / "inbox") == []
    [archived] = ls(area / "archive")
    assert archived.endswith("-abcdef12-po.edi")


def test_without_archive_path_the_file_is_deleted_after_commit(make_source, area):
    (area / "inbox" / "a.edi").write_bytes(b"A")
    (area / "inbox" / ".partial.edi").write_bytes(b"x")  # hidden: an upload in progress
    (area / "inbox" / "notes.txt").write_bytes(b"x")
    src = make_source(archive_path=None, pattern="*.edi")
    [msg] = list(src.poll())
    assert ls(area / "inbox") == [".partial.edi", "a.edi", "notes.txt"]
    src.ack(msg, "duplicate", "11111111")
    assert ls(area / "inbox") == [".partial.edi", "notes.txt"]
    assert ls(area / "archive") == []


def test_a_large_file_arrives_whole_and_a_missing_inbox_is_not_fatal(make_source, area, sshd):
    data = os.urandom(3 * 1024 * 1024 + 17)  # over the size fetched with pipelined requests
    (area / "inbox" / "big.edi").write_bytes(data)
    [msg] = list(make_source(max_bytes=len(data)).poll())
    assert msg.body == data
    assert list(make_source(remote_path=f"{area.name}/no-such-inbox").poll()) == []


# -- refusals ---------------------------------------------------------------------------------


def test_oversized_file_is_refused_without_download(make_source, area, opened):
    src = make_source(max_bytes=10)
    (area / "inbox" / "big.edi").write_bytes(b"x" * 11)
    (area / "inbox" / "big.edi").chmod(0)  # even a try to open it would fail
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("TOO_LARGE")
    assert b"x" * 11 not in msg.body
    assert opened == []
    src.ack(msg, "rejected", "22222222")
    assert ls(area / "inbox") == []
    [failed] = ls(area / "failed")
    assert failed.endswith("-22222222-big.edi")
    assert (area / "failed" / failed).stat().st_size == 11


def test_symlink_is_refused_never_followed(make_source, area, sshd, opened):
    secret = sshd.workdir / "secret.txt"
    secret.write_bytes(b"TOP SECRET")
    secret.chmod(0o644)  # readable by the SFTP user: only our refusal protects it
    os.symlink(secret, area / "inbox" / "link.edi")
    src = make_source()
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("SYMLINK")
    assert b"TOP SECRET" not in msg.body
    assert opened == []
    src.ack(msg, "rejected", "33333333")
    assert ls(area / "inbox") == []
    [failed] = ls(area / "failed")
    assert (area / "failed" / failed).is_symlink()
    assert secret.read_bytes() == b"TOP SECRET"


def test_hostile_file_name_never_becomes_a_path(make_source, area):
    name = "po..%2F..%2Fetc passwd;rm -rf $HOME\u202e.edi"
    (area / "inbox" / name).write_bytes(b"X")
    src = make_source()
    [msg] = list(src.poll())
    assert msg.display_name == name  # metadata only (the pipeline sanitizes it for display)
    src.ack(msg, "stored", "44444444")
    [archived] = ls(area / "archive")
    assert not set(archived) & set("/ $;\u202e%")
    assert (area / "archive" / archived).read_bytes() == b"X"


def test_names_with_path_components_from_the_server_are_left_alone(
    make_source, area, sshd, opened, monkeypatch
):
    outside = area / "outside.edi"
    outside.write_bytes(b"not in the inbox")
    (area / "inbox" / "ok.edi").write_bytes(b"OK")
    src = make_source()
    real = paramiko.SFTPClient.listdir_attr

    def hostile_listing(
        self: paramiko.SFTPClient, path: str = "."
    ) -> list[paramiko.SFTPAttributes]:
        entries = real(self, path)
        template = next(e for e in entries if e.filename == "ok.edi")
        for evil in ("../outside.edi", "sub/../../outside.edi", "..", ".", "a\x00b.edi"):
            fake = paramiko.SFTPAttributes()
            fake.filename, fake.st_mode, fake.st_size, fake.st_mtime = evil, template.st_mode, 16, 0
            entries.append(fake)
        return entries

    monkeypatch.setattr(paramiko.SFTPClient, "listdir_attr", hostile_listing)
    msgs = list(src.poll())
    assert [m.display_name for m in msgs] == ["ok.edi"]
    assert opened == [f"{area.name}/inbox/ok.edi"]
    src.ack(msgs[0], "stored", "55555555")
    assert outside.read_bytes() == b"not in the inbox"
    assert ls(area) == ["archive", "failed", "inbox", "outside.edi"]


# -- connection trouble and crashes -----------------------------------------------------------


def test_ack_after_the_server_dropped_the_connection_reconnects(make_source, area, sshd):
    (area / "inbox" / "po.edi").write_bytes(b"PO")
    src = make_source()
    [msg] = list(src.poll())
    assert sshd.drop_sessions() > 0
    src.ack(msg, "stored", "66666666")
    assert ls(area / "inbox") == []
    assert len(ls(area / "archive")) == 1


def test_a_drop_during_poll_ends_it_without_acknowledging(make_source, area, sshd):
    for n in ("a.edi", "b.edi"):
        (area / "inbox" / n).write_bytes(n.encode())
    src = make_source()
    polling = src.poll()
    first = next(polling)
    assert first.body == b"a.edi"
    sshd.drop_sessions()
    assert list(polling) == []  # the poll ends quietly; nothing was acknowledged
    assert ls(area / "inbox") == ["a.edi", "b.edi"]
    assert [m.body for m in src.poll()] == [b"a.edi", b"b.edi"]  # reconnected


def test_unreachable_server_backs_off(sshd, area, monkeypatch):
    with socket_closed_port() as port:
        cfg = source_config(sshd, area, port=port, poll_seconds=1)
        src = SftpSource(cfg)
        attempts: list[int] = []
        real = SftpServer.connect

        def counting(self: SftpServer) -> Any:
            attempts.append(1)
            return real(self)

        monkeypatch.setattr(SftpServer, "connect", counting)
        results = [list(src.poll()) for _ in range(8)]
        assert results == [[]] * 8
        # failures in a row skip 0, 1, 3, ... polls before the next try
        assert len(attempts) == 4
        src.close()


def test_crash_before_ack_offers_the_same_bytes_again(sshd, area, tmp_path, monkeypatch):
    """Through Gateway.poll_source: stored, then a crash; the next source's copy is a duplicate."""
    cfg_file = tmp_path / "gateway.yaml"
    cfg_file.write_text(f'store: {{url: "sqlite:///{tmp_path / "gw.db"}"}}\n')
    gw = Gateway(load_config(cfg_file))
    sftp_cfg = source_config(sshd, area)
    monkeypatch.setattr(gw, "source_config", lambda name: sftp_cfg)
    body = b"ISA*00*not really an order~"
    (area / "inbox" / "po.edi").write_bytes(body)

    class Crash(Exception):
        pass

    def crash(message: RawMessage, outcome: str, message_id: str) -> None:
        raise Crash

    try:
        first = SftpSource(sftp_cfg)
        monkeypatch.setattr(first, "ack", crash)
        with pytest.raises(Crash):
            gw.poll_source(first)  # committed, then "killed" before the remote move
        first.close()
        assert ls(area / "inbox") == ["po.edi"]
        with SftpSource(sftp_cfg) as second:
            [again] = list(second.poll())
            assert again.body == body
            assert gw.pipeline.receive(again).duplicate
            assert gw.poll_source(second) == (0, 1)  # stored once; the copy is a duplicate, acked
        assert ls(area / "inbox") == []
        assert len(ls(area / "archive")) == 1
    finally:
        gw.close()


# -- host keys and login ----------------------------------------------------------------------


def test_wrong_host_key_is_refused_before_anything_is_sent(sshd, area, tmp_path, opened):
    (area / "inbox" / "po.edi").write_bytes(b"PO")
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{sshd.host}]:{sshd.port} {Path(f'{other}.pub').read_text()}")
    with (
        SftpSource(source_config(sshd, area, known_hosts=wrong)) as src,
        pytest.raises(HostKeyError, match="host key changed.*man-in-the-middle"),
    ):
        list(src.poll())
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with (
        SftpSource(source_config(sshd, area, known_hosts=empty)) as src,
        pytest.raises(HostKeyError, match="not in .*never added"),
    ):
        list(src.poll())
    assert empty.read_text() == ""  # never added
    bad_fingerprint = "SHA256:" + "A" * 43
    with (
        SftpSource(source_config(sshd, area, known_hosts=None, host_key=bad_fingerprint)) as src,
        pytest.raises(HostKeyError, match="not the configured host_key"),
    ):
        list(src.poll())
    assert opened == []
    assert ls(area / "inbox") == ["po.edi"]


def test_host_key_fingerprint_and_private_key_login(sshd, area):
    (area / "inbox" / "po.edi").write_bytes(b"PO")
    cfg = source_config(
        sshd,
        area,
        known_hosts=None,
        host_key=sshd.host_fingerprint,
        password=None,
        private_key_file=sshd.client_key_encrypted,
        passphrase=sshd.client_key_passphrase,
    )
    with SftpSource(cfg) as src:
        assert [m.body for m in src.poll()] == [b"PO"]


def test_wrong_password_is_a_login_error(sshd, area):
    with (
        SftpSource(source_config(sshd, area, password="wrong")) as src,
        pytest.raises(LoginError, match="login refused"),
    ):
        list(src.poll())


def test_unreadable_key_or_known_hosts_stop_start_up(sshd, area, tmp_path):
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match="known_hosts"):
        SftpSource(source_config(sshd, area, known_hosts=tmp_path / "missing"))
    with pytest.raises(ConfigError, match="encrypted; set passphrase"):
        SftpSource(source_config(sshd, area, private_key_file=sshd.client_key_encrypted))
    with pytest.raises(ConfigError, match="wrong passphrase"):
        SftpSource(
            source_config(sshd, area, private_key_file=sshd.client_key_encrypted, passphrase="nope")
        )


# -- the channel -------------------------------------------------------------------------------


def channel(sshd: SshServer, area: Path, **kw: Any) -> SftpChannel:
    values = {
        **sshd.login(password=None, private_key_file=sshd.client_key),
        "remote_path": f"{area.name}/out",
    }
    values.update(kw)
    sshd.folder(f"{area.name}/out")
    return SftpChannel(SftpChannelConfig(**values))


def test_channel_put_is_atomic(sshd, area, monkeypatch):
    out = area / "out"
    data = os.urandom(300_000)  # several SFTP write requests
    seen: list[tuple[list[str], bytes]] = []
    real_write = paramiko.SFTPFile.write

    def watching(self: paramiko.SFTPFile, chunk: Any) -> None:
        seen.append((ls(out), (out / "997.edi").read_bytes()))
        real_write(self, chunk)

    with channel(sshd, area) as ch:
        (out / "997.edi").write_bytes(b"old, complete")
        monkeypatch.setattr(paramiko.SFTPFile, "write", watching)
        assert ch.put("997.edi", data) == f"{area.name}/out/997.edi"
    assert seen, "the upload was not observed"
    for listing, current in seen:
        assert listing == [".997.edi.part", "997.edi"]
        assert current == b"old, complete"  # the final name never shows a partial file
    assert ls(out) == ["997.edi"]
    assert (out / "997.edi").read_bytes() == data


def test_channel_put_reconnects_after_a_drop_and_refuses_unsafe_names(sshd, area, monkeypatch):
    real_write = paramiko.SFTPFile.write
    dropped: list[int] = []

    def drop_once(self: paramiko.SFTPFile, chunk: Any) -> None:
        if not dropped:
            dropped.append(sshd.drop_sessions())
        real_write(self, chunk)

    with channel(sshd, area) as ch:
        ch.put("first.edi", b"warm up")  # the connection is open and kept
        monkeypatch.setattr(paramiko.SFTPFile, "write", drop_once)
        ch.put("ack.edi", b"ACK")
        assert dropped and dropped[0] > 0
        for bad in ("../x.edi", "a/b.edi", ".hidden", "", "..", "x\x00"):
            with pytest.raises(ValueError, match="not a safe remote file name"):
                ch.put(bad, b"x")
    assert ls(area / "out") == ["ack.edi", "first.edi"]
    assert (area / "out" / "ack.edi").read_bytes() == b"ACK"


# -- configuration ----------------------------------------------------------------------------


def test_config_requires_a_verified_host_and_a_credential(tmp_path):
    base = {"name": "s", "host": "h", "username": "u", "remote_path": "in"}
    with pytest.raises(ValidationError, match="exactly one of known_hosts or host_key"):
        SftpSourceConfig(**base, password="p")
    with pytest.raises(ValidationError, match="password or private_key_file"):
        SftpSourceConfig(**base, known_hosts=tmp_path / "kh")
    with pytest.raises(ValidationError, match="SHA256 fingerprint"):
        SftpSourceConfig(**base, password="p", host_key="MD5:aa:bb")
    with pytest.raises(ValidationError, match="Extra inputs"):
        SftpSourceConfig(**base, password="p", known_hosts=tmp_path / "kh", auto_add=True)
    cfg = SftpSourceConfig(**base, password="s3cr3t-pw", known_hosts=tmp_path / "kh")
    assert cfg.failed_folder == "failed"
    assert "s3cr3t-pw" not in repr(cfg) and "s3cr3t-pw" not in cfg.model_dump_json()
    assert (
        SftpSourceConfig(
            **{**base, "remote_path": "/srv/in/"}, password="p", known_hosts=tmp_path / "kh"
        ).failed_folder
        == "/srv/failed"
    )
    missing = [
        n for n, f in SftpSourceConfig.model_fields.items() if n != "type" and not f.description
    ]
    assert missing == []


def test_config_module_does_not_import_paramiko():
    code = "import sys, connectors.sources.sftp.config; assert 'paramiko' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2]
    )


# -- helpers -----------------------------------------------------------------------------------


class socket_closed_port:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *_: object) -> None:
        self.sock.close()


def test_empty_file_is_refused_once_stable(make_source, area):
    """issue 14 #21, reliability E7: a 0-byte file does not wait in the inbox forever."""
    clock = Clock()
    src = make_source(clock, stable_seconds=2)
    (area / "inbox" / "empty.edi").write_bytes(b"")
    assert list(src.poll()) == []  # first sight: the writer may not have written yet
    clock.now += 1
    assert list(src.poll()) == []
    clock.now += 1.5
    [msg] = list(src.poll())
    assert msg.rejected and msg.rejected.startswith("EMPTY:")
    src.ack(msg, "rejected", "77777777")
    assert ls(area / "inbox") == []
    assert [n.rsplit("-", 1)[1] for n in ls(area / "failed")] == ["empty.edi"]
