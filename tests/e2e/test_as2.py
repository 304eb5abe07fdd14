"""End to end: pyas2lib acting as the partner sends AS2 messages over real HTTP to the intake
on 127.0.0.1; the gateway answers with signed MDNs the partner verifies (MIC included), and
each order reaches the ERP once. Also: a bad signature, a wrong certificate, an unknown
partner, a repeated Message-ID and an asynchronous MDN. Keys are generated here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from sqlalchemy import select

from gateway.app import Gateway
from gateway.as2 import _oscrypto
from gateway.config import load_config
from gateway.intake import IntakeServer
from gateway.store import tables as t
from tests.e2e.helpers import run_cli, write_config
from tests.support.as2 import Pair, make_pair
from tests.support.documents import documents
from tests.support.fake_erp import FakeERP
from tests.support.x12gen import file_with_orders

pytestmark = pytest.mark.slow

_oscrypto.load()
from pyas2lib import Mdn, Message, Organization, Partner  # noqa: E402


@pytest.fixture(scope="module")
def pairs() -> dict[str, Pair]:
    return {name: make_pair(name) for name in ("widgetco", "acme", "stranger")}


class MdnSink:
    """A partner's asynchronous-MDN endpoint: records each POST, sets `got`."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.got = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()).encode()
                sink.received.append(head + b"\r\n" + body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                sink.got.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mdn"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PartnerServer:
    """The partner's AS2 endpoint: pyas2lib parses each message with the partner's key and the
    certificate it holds for us (`our_cert`), and answers the signed MDN synchronously."""

    def __init__(self, pairs: dict[str, Pair], our_cert: bytes) -> None:
        self.payloads: list[bytes] = []
        me = Organization(as2_name="ACMEAS2", sign_key=pairs["acme"].cert + pairs["acme"].key, decrypt_key=pairs["acme"].cert + pairs["acme"].key)
        us = Partner(as2_name="WIDGETCO", verify_cert=our_cert, encrypt_cert=our_cert, sign=True, encrypt=True)
        seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()).encode()
                message = Message()
                status, _exc, mdn = message.parse(
                    head + b"\r\n" + body,
                    find_org_cb=lambda i: me if i == "ACMEAS2" else None,
                    find_partner_cb=lambda i: us if i == "WIDGETCO" else None,
                    find_message_cb=lambda mid, _p: mid in seen,
                )
                if status == "processed":
                    seen.add(message.message_id)
                    server.payloads.append(message.content)
                self.send_response(200)
                for k, v in mdn.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(mdn.content)))
                self.end_headers()
                self.wfile.write(mdn.content)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/as2"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@dataclass
class World:
    gw: Gateway
    url: str
    erp: FakeERP
    sink: MdnSink
    pairs: dict[str, Pair]
    server: IntakeServer
    partner: PartnerServer


@pytest.fixture
def world(tmp_path: Path, pairs: dict[str, Pair]) -> Iterator[World]:
    for name, pair in pairs.items():
        (tmp_path / f"{name}.crt").write_bytes(pair.cert)
        (tmp_path / f"{name}.key").write_bytes(pair.key)
    sink = MdnSink()
    partner = PartnerServer(pairs, pairs["widgetco"].cert)  # where acme's acknowledgements go
    with FakeERP() as erp:
        extra = (
            "partners:\n  - name: acme\n    x12_ids: [ACMERETAIL]\n    acks: {as2: true}\n"
            "  - name: beta\n    x12_ids: [BETACO]\n"
            "intake:\n  port: 0\n  as2:\n    our_id: WIDGETCO\n"
            f"    our_certificate: {tmp_path / 'widgetco.crt'}\n    our_key: {tmp_path / 'widgetco.key'}\n"
            "    partners:\n"
            f"      - {{partner: acme, as2_id: ACMEAS2, certificate: {tmp_path / 'acme.crt'}, url: '{partner.url}'}}\n"
            f"      - {{partner: beta, as2_id: BETAAS2, certificate: {tmp_path / 'acme.crt'}, mdn_url: '{sink.url}'}}\n"
        )
        gw = Gateway(load_config(write_config(tmp_path, erp.url, extra=extra)))
        server = IntakeServer(gw, gw.config.intake)
        server.start()
        try:
            yield World(gw, server.url, erp, sink, pairs, server, partner)
        finally:
            server.stop()
            gw.close()
            sink.close()
            partner.close()


def partner_side(pairs: dict[str, Pair], as2_id: str = "ACMEAS2", *, signer: str = "acme", encrypt_to: str = "widgetco", mdn: str = "SYNC", mdn_url: str | None = None) -> tuple[Organization, Partner]:
    """pyas2lib as the partner: its organization, and us as its partner."""
    me = Organization(as2_name=as2_id, sign_key=pairs[signer].cert + pairs[signer].key, domain="acme.example", mdn_url=mdn_url)
    us = Partner(
        as2_name="WIDGETCO", encrypt_cert=pairs[encrypt_to].cert, verify_cert=pairs["widgetco"].cert,
        sign=True, encrypt=True, compress=True, enc_alg="aes_256_cbc", mdn_mode=mdn, mdn_digest_alg="sha256",
    )
    return me, us


def send(session: requests.Session, url: str, me: Organization, us: Partner, payload: bytes, message_id: str | None = None) -> tuple[Message, requests.Response]:
    message = Message(me, us)
    message.build(payload, filename="po.x12", content_type="application/edi-x12", message_id=message_id)
    answer = session.post(f"{url}/intake/as2", data=message.content, headers=message.headers, timeout=10)
    return message, answer


def check_mdn(raw: bytes, message: Message) -> tuple[str, str | None]:
    return Mdn().parse(raw, find_message_cb=lambda mid, rcpt: message if mid == message.message_id else None)


def http_mdn(answer: requests.Response) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items()).encode()
    return head + b"\r\n" + answer.content


def messages(gw: Gateway) -> list[tuple[str, str | None, str | None, str | None]]:
    with gw.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t.messages.c.id, t.messages.c.state, t.messages.c.reason, t.messages.c.partner))]


def events(gw: Gateway, kind: str) -> list[str]:
    with gw.store.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.events.c.detail).where(t.events.c.kind == kind))]


def test_a_hundred_signed_encrypted_compressed_orders_arrive_once_each_and_their_997s_go_back_by_as2(world: World) -> None:
    me, us = partner_side(world.pairs)
    sent: list[Message] = []
    with requests.Session() as session:
        for n in range(100):
            payload = file_with_orders([f"AS2-{n:03d}"], icn=f"{n + 1:09d}")
            message, answer = send(session, world.url, me, us, payload)
            assert answer.status_code == 200, answer.text
            assert answer.headers["Content-Type"].startswith("multipart/signed")
            assert check_mdn(http_mdn(answer), message) == ("processed", None)  # signature and MIC checked
            sent.append(message)
        # The partner lost our MDN and sends again: the same Message-ID, the same bytes and a
        # fresh encryption of the same payload. The same positive MDN, nothing new stored.
        first = sent[0]
        again = session.post(f"{world.url}/intake/as2", data=first.content, headers=first.headers, timeout=10)
        assert check_mdn(http_mdn(again), first) == ("processed", None)
        rebuilt, answer = send(session, world.url, me, us, file_with_orders(["AS2-000"], icn="000000001"), message_id=first.message_id.split("@")[0])
        assert rebuilt.message_id == first.message_id
        assert check_mdn(http_mdn(answer), rebuilt) == ("processed", None)
        # A different payload under a Message-ID already used is the same message too: no order.
        reused, answer = send(session, world.url, me, us, file_with_orders(["AS2-NEW"], icn="000000999"), message_id=sent[1].message_id.split("@")[0])
        assert answer.status_code == 200
    stored = messages(world.gw)
    assert len(stored) == 100 and {p for *_, p in stored} == {"acme"}
    metrics = requests.get(f"{world.url}/metrics", timeout=10).text
    assert 'gateway_intake_requests_total{outcome="as2_accepted"} 100' in metrics
    assert 'gateway_intake_requests_total{outcome="as2_duplicate"} 3' in metrics
    world.gw.run_until_idle(60)
    pos = sorted(o["body"]["po_number"] for o in world.erp.orders)
    assert pos == [f"AS2-{n:03d}" for n in range(100)]
    mdns = events(world.gw, "as2_mdn")
    assert len(mdns) == 103 and all("processed" in d and "MIC" in d for d in mdns)
    # Each interchange's 997 went back by AS2; the partner's signed MDN is kept with the row.
    acks = documents(world.gw.store, "997")
    assert len(acks) == 100 and {a["state"] for a in acks} == {"sent"} and {a["channel"] for a in acks} == {"as2:acme"}
    assert sorted(p.replace(b"\r\n", b"\n") for p in world.partner.payloads) == sorted(bytes(a["body"]).replace(b"\r\n", b"\n") for a in acks)
    with world.gw.store.engine.connect() as conn:
        receipts = [r[0] for r in conn.execute(select(t.outbox.c.receipt).where(t.outbox.c.kind == "997"))]
    assert all("MIC" in r["detail"]["sent"] and "multipart/signed" in r["detail"]["sent"] for r in receipts)


def test_bad_signature_wrong_certificate_and_unknown_partner_get_negative_mdns(world: World) -> None:
    payload = file_with_orders(["BAD-1"])
    with requests.Session() as session:
        # Signed with a key that is not the one whose certificate we hold for ACMEAS2.
        me, us = partner_side(world.pairs, signer="stranger")
        message, answer = send(session, world.url, me, us, payload)
        assert answer.status_code == 200
        assert check_mdn(http_mdn(answer), message) == ("processed/Error", "authentication-failed")
        # Encrypted to a certificate that is not ours: we cannot decrypt it.
        me, us = partner_side(world.pairs, encrypt_to="stranger")
        message, answer = send(session, world.url, me, us, payload)
        assert check_mdn(http_mdn(answer), message) == ("processed/Error", "decryption-failed")
        # An AS2 id nobody configured: refused with an unsigned MDN (we sign for partners only).
        me, us = partner_side(world.pairs, as2_id="NOBODY")
        message, answer = send(session, world.url, me, us, payload)
        assert answer.headers["Content-Type"].startswith("multipart/report")
        assert b"processed/Error: unknown-trading-partner" in answer.content
        # Not AS2 at all.
        assert session.post(f"{world.url}/intake/as2", data=b"hello", timeout=10).status_code == 400
    stored = sorted((state, reason, partner) for _, state, reason, partner in messages(world.gw))
    assert stored == [
        ("quarantined", "AS2_AUTHENTICATION_FAILED", "acme"),
        ("quarantined", "AS2_DECRYPTION_FAILED", "acme"),
    ]
    world.gw.run_until_idle(20)
    assert world.erp.orders == []


def test_an_asynchronous_mdn_is_posted_to_the_configured_url(world: World) -> None:
    # The message asks for its MDN at another address: it goes to beta's configured mdn_url.
    me, us = partner_side(world.pairs, "BETAAS2", mdn="ASYNC", mdn_url="http://attacker.invalid/mdn")
    with requests.Session() as session:
        message, answer = send(session, world.url, me, us, file_with_orders(["ASYNC-1"], sender="BETACO"))
    assert answer.status_code == 200 and answer.content == b""
    [queued] = documents(world.gw.store, "MDN")  # committed before the 200, sent by the dispatcher
    assert queued["channel"] == "as2mdn:beta"
    world.gw.run_until_idle(20)
    assert world.sink.got.wait(20), "no asynchronous MDN arrived"
    [raw] = world.sink.received
    assert check_mdn(raw, message) == ("processed", None)
    [sent] = documents(world.gw.store, "MDN")
    assert sent["state"] == "sent"
    assert [o["body"]["po_number"] for o in world.erp.orders] == ["ASYNC-1"]


def test_as2_check_lists_partners_with_certificate_expiry_and_fails_on_a_problem(tmp_path: Path, pairs: dict[str, Pair]) -> None:
    for name, pair in {**pairs, "soon": make_pair("soon", days=10), "old": make_pair("old", days=-1)}.items():
        (tmp_path / f"{name}.crt").write_bytes(pair.cert)
        (tmp_path / f"{name}.key").write_bytes(pair.key)
    extra = (
        "partners:\n  - name: acme\n  - name: beta\n    acks: {as2: true}\n  - name: gamma\n"
        "intake:\n  as2:\n    our_id: WIDGETCO\n"  # paths relative to the configuration file
        "    our_certificate: widgetco.crt\n    our_key: widgetco.key\n"
        "    partners:\n"
        "      - {partner: acme, as2_id: ACMEAS2, certificate: acme.crt}\n"
        "      - {partner: beta, as2_id: BETAAS2, certificate: soon.crt, mdn_mode: async}\n"
        "      - {partner: gamma, as2_id: GAMMAAS2, certificate: old.crt}\n"
    )
    cfg = write_config(tmp_path, "http://127.0.0.1:9/", extra=extra)
    result = run_cli("as2", "check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout + result.stderr
    expires = x509.load_pem_x509_certificate(pairs["acme"].cert).not_valid_after_utc.strftime("%Y-%m-%d")
    lines = result.stdout.splitlines()
    assert any("ACMEAS2" in line and expires in line and "ok" in line for line in lines), result.stdout
    assert any("BETAAS2" in line and "expires in" in line for line in lines), result.stdout
    assert "problem: gamma (GAMMAAS2): expired on" in result.stderr
    assert "problem: beta: acks.as2 is set but its intake.as2.partners entry has no url" in result.stderr
    assert "ours" in result.stdout and "WIDGETCO" in result.stdout


# -- sending: pyas2lib as the partner's AS2 server -------------------------------------------


def sending_config(tmp_path: Path, pairs: dict[str, Pair], url: str) -> Path:
    for name, pair in pairs.items():
        (tmp_path / f"{name}.crt").write_bytes(pair.cert)
        (tmp_path / f"{name}.key").write_bytes(pair.key)
    extra = (
        "partners:\n  - name: acme\n"
        "intake:\n  as2:\n    our_id: WIDGETCO\n"
        f"    our_certificate: {tmp_path / 'widgetco.crt'}\n    our_key: {tmp_path / 'widgetco.key'}\n"
        f"    partners:\n      - {{partner: acme, as2_id: ACMEAS2, certificate: {tmp_path / 'acme.crt'}, url: '{url}', compress: true}}\n"
    )
    return write_config(tmp_path, "http://127.0.0.1:9/", extra=extra)


def test_as2_send_delivers_documents_and_stores_each_verified_mdn(tmp_path: Path, pairs: dict[str, Pair]) -> None:
    partner = PartnerServer(pairs, pairs["widgetco"].cert)
    try:
        cfg = sending_config(tmp_path, pairs, partner.url)
        docs = tmp_path / "out"
        docs.mkdir()
        files = []
        for n in range(5):  # the volume runs through the dispatcher's channel (the first test)
            (docs / f"855-{n:03d}.x12").write_bytes(file_with_orders([f"ACK-{n:03d}"], icn=f"{n + 1:09d}"))
            files.append(str(docs / f"855-{n:03d}.x12"))
        files.append(files[0])  # the same document twice: the partner sees a resend, not a new one
        result = run_cli("as2", "send", "acme", *files, "-c", str(cfg), timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        sent = [line for line in result.stdout.splitlines() if line.startswith("sent ")]
        assert len(sent) == 6 and all("MIC" in line and "confirmed" in line for line in sent[:5])
        assert "duplicate-document" in sent[-1] and "@" in sent[-1] and "@None" not in sent[-1]
        # MIME canonical form: a text document's line ends arrive as CRLF (X12 ignores them).
        got = sorted(p.replace(b"\r\n", b"\n") for p in partner.payloads)
        assert got == sorted((docs / f"855-{n:03d}.x12").read_bytes() for n in range(5))
        gw = Gateway(load_config(cfg))
        try:
            stored = events(gw, "as2_sent")
        finally:
            gw.close()
        assert len(stored) == 6 and all("Content-Type: multipart/signed" in d for d in stored)
    finally:
        partner.close()


def test_a_refusing_partner_is_a_permanent_error(tmp_path: Path, pairs: dict[str, Pair]) -> None:
    from gateway.as2.identity import load_identity
    from gateway.as2.sender import As2Sender
    from gateway.errors import PermanentError

    partner = PartnerServer(pairs, pairs["stranger"].cert)  # it holds the wrong certificate for us
    try:
        cfg = load_config(sending_config(tmp_path, pairs, partner.url))
        assert cfg.intake is not None and cfg.intake.as2 is not None
        sender = As2Sender(load_identity(cfg.intake.as2, ["acme"]), "acme")
        with pytest.raises(PermanentError, match="authentication-failed"):
            sender.send(file_with_orders(["X-1"]), filename="855.x12")
        sender.close()
    finally:
        partner.close()
