"""End to end over SFTP: a partner's file on a real OpenSSH server reaches the HTTP ERP, the
remote file moves to the archive folder, and the 997 is uploaded to the partner's folder."""

from __future__ import annotations

import os

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from tests.support.fake_erp import FakeERP
from tests.support.sshd import sshd_fixture
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow
sshd = sshd_fixture()


def test_sftp_pickup_to_erp_with_997_uploaded(tmp_path, sshd):
    inbox = sshd.folder("e2e/in")
    archive = sshd.folder("e2e/archive")
    acks = sshd.folder("e2e/acks")
    (inbox / "po.edi").write_bytes(file_with_orders(["PO-S1", "PO-S2"]))
    os.environ["GW_TEST_SFTP_PASSWORD"] = sshd.password
    try:
        with FakeERP() as erp:
            cfg = tmp_path / "gateway.yaml"
            cfg.write_text(
                f"""\
store: {{url: "sqlite:///{tmp_path / 'gw.db'}"}}
sources:
  - type: sftp
    name: acme-sftp
    host: {sshd.host}
    port: {sshd.port}
    username: {sshd.username}
    password: ${{env:GW_TEST_SFTP_PASSWORD}}
    known_hosts: {sshd.known_hosts}
    remote_path: e2e/in
    archive_path: e2e/archive
    poll_seconds: 0.2
    stable_seconds: 0
connectors:
  - {{type: http_json, name: erp, url: "{erp.url}", allow_private_targets: true}}
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    acks:
      sftp:
        type: sftp
        host: {sshd.host}
        port: {sshd.port}
        username: {sshd.username}
        password: ${{env:GW_TEST_SFTP_PASSWORD}}
        known_hosts: {sshd.known_hosts}
        remote_path: e2e/acks
"""
            )
            gw = Gateway(load_config(cfg))
            try:
                gw.run_until_idle(20)
                gw.run_until_idle(5)  # the remote file becomes stable on the second look
            finally:
                gw.close()
            assert sorted(o["body"]["po_number"] for o in erp.orders) == ["PO-S1", "PO-S2"]
    finally:
        del os.environ["GW_TEST_SFTP_PASSWORD"]
    assert os.listdir(inbox) == []
    assert [n.endswith("-po.edi") for n in os.listdir(archive)] == [True]
    [ack] = os.listdir(acks)
    assert ack.startswith("997-") and "AK9*A*2*2*2" in (acks / ack).read_text()


def test_password_written_in_the_file_is_refused(tmp_path):
    from gateway.errors import ConfigError

    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        "sources:\n  - {type: sftp, name: s, host: h, username: u, password: hunter2, host_key: 'SHA256:x', remote_path: in}\n"
    )
    with pytest.raises(ConfigError, match="secrets may not be written"):
        load_config(cfg)
