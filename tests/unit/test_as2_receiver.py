"""The AS2 receiver's edges, in process: a decompression bomb, an unsigned message from a
partner that must sign, a store that cannot be written, a request that is not AS2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.as2 import _oscrypto
from gateway.as2.config import As2Config
from gateway.as2.receiver import As2Receiver
from gateway.config import GatewayConfig
from gateway.errors import StoreUnavailable
from gateway.store import tables as t
from tests.support.as2 import Pair, make_pair

_oscrypto.load()
from pyas2lib import Message, Organization, Partner  # noqa: E402


@pytest.fixture(scope="module")
def pairs() -> dict[str, Pair]:
    return {name: make_pair(name) for name in ("widgetco", "acme")}


@pytest.fixture
def receiver(tmp_path: Path, pairs: dict[str, Pair]) -> Iterator[As2Receiver]:
    for name, pair in pairs.items():
        (tmp_path / f"{name}.crt").write_bytes(pair.cert)
        (tmp_path / f"{name}.key").write_bytes(pair.key)
    gw = Gateway(GatewayConfig.model_validate({"store": {"url": f"sqlite:///{tmp_path / 'gw.db'}"}, "partners": [{"name": "acme"}]}))
    config = As2Config.model_validate(
        {
            "our_id": "WIDGETCO", "our_certificate": str(tmp_path / "widgetco.crt"), "our_key": str(tmp_path / "widgetco.key"),
            "max_payload_bytes": 1000,
            "partners": [{"partner": "acme", "as2_id": "ACMEAS2", "certificate": str(tmp_path / "acme.crt")}],
        }
    )
    yield As2Receiver(gw, config, store_timeout=1.0)
    gw.close()


def build(pairs: dict[str, Pair], payload: bytes, *, sign: bool = True, mdn: str | None = "SYNC") -> tuple[list[tuple[str, str]], bytes]:
    me = Organization(as2_name="ACMEAS2", sign_key=pairs["acme"].cert + pairs["acme"].key)
    us = Partner(as2_name="WIDGETCO", encrypt_cert=pairs["widgetco"].cert, verify_cert=pairs["widgetco"].cert,
                 sign=sign, encrypt=True, compress=True, mdn_mode=mdn, mdn_digest_alg="sha256")
    message = Message(me, us)
    message.build(payload)
    return list(message.headers.items()), message.content


def stored(receiver: As2Receiver) -> list[Any]:
    with receiver.gateway.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t.messages.c.state, t.messages.c.reason))]


def test_a_decompression_bomb_is_stopped_at_the_limit(receiver: As2Receiver, pairs: dict[str, Pair]) -> None:
    headers, body = build(pairs, b"0" * 5_000_000)  # 5 MB of zeros: a few KB compressed
    assert len(body) < 50_000
    answer = receiver.receive(headers, body)
    assert answer.status == 200 and b"processed/Error: decompression-failed" in answer.body
    assert answer.outcome == "refused"
    assert stored(receiver) == [("quarantined", "AS2_DECOMPRESSION_FAILED")]


def test_an_unsigned_message_from_a_partner_that_must_sign_is_refused(receiver: As2Receiver, pairs: dict[str, Pair]) -> None:
    answer = receiver.receive(*build(pairs, b"ISA*...~", sign=False))
    assert b"processed/Error: insufficient-message-security" in answer.body
    assert stored(receiver) == [("quarantined", "AS2_INSUFFICIENT_MESSAGE_SECURITY")]
    # Without an MDN requested, the HTTP status is the only answer: 400, not 200.
    answer = receiver.receive(*build(pairs, b"ISA*..2~", sign=False, mdn=None))
    assert answer.status == 400 and answer.body.startswith(b"processed/Error")


def test_a_store_that_cannot_be_written_gets_503_and_no_mdn(receiver: As2Receiver, pairs: dict[str, Pair], monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_a: object, **_k: object) -> None:
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(receiver.gateway.pipeline, "receive", down)
    answer = receiver.receive(*build(pairs, b"ISA*...~"))
    assert answer.status == 503 and answer.headers["Retry-After"] and b"disposition" not in answer.body.lower()
    assert answer.outcome == "store_unavailable"


def test_a_request_without_as2_headers_is_400(receiver: As2Receiver) -> None:
    assert receiver.receive([("content-type", "application/pkcs7-mime")], b"x").status == 400
    assert receiver.receive([("as2-from", "A"), ("as2-to", "B"), ("message-id", "<x\x01>")], b"x").status == 400
    assert stored(receiver) == []


def test_an_asynchronous_mdn_is_never_awaited_as_acknowledged() -> None:
    from gateway.as2.receiver import MDN_KIND
    from gateway.store.documents import ACK_KINDS

    assert MDN_KIND in ACK_KINDS  # else a partner's expect_within_minutes would flag our MDNs overdue
