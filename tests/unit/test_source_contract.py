"""The behaviour every source promises, written once and run against each of them.

Each source runs against the real thing: the folder source on a local folder, SFTP against
the OpenSSH server of tests/support/sshd.py, IMAP against the Dovecot of
tests/support/dovecot.py, the cart poller against a fake shop answering through `responses`.
The messages go through the one ingest step (gateway.ingest) into a real store, the way
`Gateway.poll_source` runs them.

To add a source: write a `_<type>_source` factory below returning a `Harness`, add its type
to `FACTORIES`. `test_every_builtin_source_is_covered` fails when a source type is left out.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import responses
from sqlalchemy import func, select

from connectors.registry import SOURCES
from connectors.sources.cartpoll.config import CartPollConfig
from connectors.sources.cartpoll.source import CartPollSource
from connectors.sources.folder.config import FolderSourceConfig
from connectors.sources.folder.source import FolderSource
from connectors.sources.imap.config import ImapSourceConfig
from connectors.sources.imap.source import ImapSource
from connectors.sources.sftp.config import SftpSourceConfig
from connectors.sources.sftp.source import SftpSource
from gateway.connector import RawMessage, Source
from gateway.errors import StoreUnavailable
from gateway.ingest import AcknowledgedTwice, Stored, claims, ingest
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.cursors import get_cursor, parse_timestamp
from tests.support.dovecot import DovecotServer, dovecot_fixture
from tests.support.sshd import SshServer, sshd_fixture

# paramiko may warn about algorithms cryptography deprecates (TripleDES, ...); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

sshd = sshd_fixture()
dovecot = dovecot_fixture()


@dataclass
class Harness:
    source: Source
    put: Callable[[int], None]  # make n new, distinct items available at the source
    put_refused: Callable[[], None]  # make one item the source refuses itself
    waiting: Callable[[], int]  # items at the source not yet acknowledged
    twin: Callable[[], Source]  # another instance on the same items (a second node)
    # The source re-reads a window on purpose (the cart poller's overlap_seconds): a second
    # poll may offer acknowledged items again, which the store recognises as duplicates.
    rereads: bool = False


def _body(i: int) -> bytes:
    return f"ISA*contract item {i:05d}~".encode()


# -- the sources -------------------------------------------------------------------------------


def _folder_source(tmp_path: Path, store: Store, request: pytest.FixtureRequest) -> Iterator[Harness]:
    inbox = tmp_path / "inbox"
    cfg = FolderSourceConfig(name="drop", path=inbox, archive=tmp_path / "archive", failed=tmp_path / "failed", stable_seconds=0)
    src = FolderSource(cfg)
    counter = Counter[str]()

    def put(n: int) -> None:
        for _ in range(n):
            i = counter["n"] = counter["n"] + 1
            (inbox / f"po{i:05d}.edi").write_bytes(_body(i))

    def put_refused() -> None:
        os.symlink(tmp_path / "elsewhere.txt", inbox / "link.edi")

    yield Harness(src, put, put_refused, lambda: len(os.listdir(inbox)), lambda: FolderSource(cfg))


def _sftp_source(tmp_path: Path, store: Store, request: pytest.FixtureRequest) -> Iterator[Harness]:
    server: SshServer = request.getfixturevalue("sshd")
    name = "c-" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    root = server.folder(name)
    for sub in ("inbox", "archive", "failed"):
        server.folder(f"{name}/{sub}")
    cfg = SftpSourceConfig(name="partner-sftp", remote_path=f"{name}/inbox", archive_path=f"{name}/archive", stable_seconds=0, **server.login())
    src = SftpSource(cfg)
    counter = Counter[str]()

    def put(n: int) -> None:
        for _ in range(n):
            i = counter["n"] = counter["n"] + 1
            (root / "inbox" / f"po{i:05d}.edi").write_bytes(_body(i))

    def put_refused() -> None:
        os.symlink("/etc/hostname", root / "inbox" / "link.edi")

    twins: list[SftpSource] = []

    def twin() -> SftpSource:
        twins.append(SftpSource(cfg))
        return twins[-1]

    try:
        yield Harness(src, put, put_refused, lambda: len(os.listdir(root / "inbox")), twin)
    finally:
        for s in (src, *twins):
            s.close()


def _imap_source(tmp_path: Path, store: Store, request: pytest.FixtureRequest) -> Iterator[Harness]:
    server: DovecotServer = request.getfixturevalue("dovecot")
    user = server.new_user()
    cfg = ImapSourceConfig(type="imap", name="mailbox", max_message_bytes=20_000, **server.login(user, tls="ssl"))
    src = ImapSource(cfg, store=store)
    counter = Counter[str]()

    def mail(i: int, text: str) -> bytes:
        return (
            f"From: buyer@example.test\r\nTo: orders@example.test\r\nSubject: Order {i}\r\n"
            f"Message-ID: <contract-{i}@example.test>\r\n\r\n{text}\r\n"
        ).encode()

    def put(n: int) -> None:
        with server.client(user) as c:
            for _ in range(n):
                i = counter["n"] = counter["n"] + 1
                c.append("INBOX", mail(i, _body(i).decode()))

    def put_refused() -> None:
        with server.client(user) as c:
            c.append("INBOX", mail(99_999, "x" * 30_000))  # over max_message_bytes

    def waiting() -> int:
        with server.client(user) as c:
            c.select_folder("INBOX", readonly=True)
            return len(c.search(["ALL"]))

    twins: list[ImapSource] = []

    def twin() -> ImapSource:
        twins.append(ImapSource(cfg, store=store))
        return twins[-1]

    try:
        yield Harness(src, put, put_refused, waiting, twin)
    finally:
        for s in (src, *twins):
            s.close()


SHOP = "https://acme.myshopify.com"
SHOP_ORDERS = f"{SHOP}/admin/api/2024-10/orders.json"
NOW = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)


def _cart_poll_source(tmp_path: Path, store: Store, request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A fake Shopify: orders filtered by updated_at_min (inclusive, as Shopify does), in
    updated_at order, paged with Link: rel="next" like the real API."""
    orders: list[dict[str, Any]] = []
    cfg = CartPollConfig.model_validate(
        {"name": "shop-poll", "platform": "shopify", "partner": "acme", "base_url": SHOP, "access_token": "shpat_x", "page_size": 250, "overlap_seconds": 0}
    )
    def make() -> CartPollSource:
        return CartPollSource(cfg, store=store, clock=lambda: NOW, resolver=lambda host, port: ["93.184.216.34"], sleep=lambda s: None)

    src = make()

    def answer(req: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(req.url).query)
        if "page_info" in query:
            since, offset = query["page_info"][0].split("|")
        else:
            since, offset = query["updated_at_min"][0], "0"
        since_at = parse_timestamp(since)
        matching = [o for o in orders if o.get("updated_at") is None or parse_timestamp(o["updated_at"]) >= since_at]
        start = int(offset)
        page = matching[start : start + cfg.page_size]
        headers = {"Content-Type": "application/json"}
        if start + cfg.page_size < len(matching):
            headers["Link"] = f'<{SHOP_ORDERS}?page_info={quote(f"{since}|{start + cfg.page_size}")}>; rel="next"'
        return 200, headers, json.dumps({"orders": page})

    def put(n: int) -> None:
        for _ in range(n):
            i = len(orders) + 1
            stamp = (NOW - dt.timedelta(hours=2) + dt.timedelta(seconds=i)).isoformat()
            orders.append({"id": 5000 + i, "name": f"#{i}", "updated_at": stamp, "currency": "USD", "line_items": []})

    def put_refused() -> None:
        orders.append({"id": 4999, "name": "#broken", "updated_at": None})

    def waiting() -> int:
        cursor = get_cursor(store, cfg.name)
        after = parse_timestamp(cursor) if cursor else None
        return sum(1 for o in orders if o.get("updated_at") and (after is None or parse_timestamp(o["updated_at"]) > after))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, SHOP_ORDERS, callback=answer)
        yield Harness(src, put, put_refused, waiting, make, rereads=True)


FACTORIES: dict[str, Callable[[Path, Store, pytest.FixtureRequest], Iterator[Harness]]] = {
    "folder": _folder_source,
    "sftp": _sftp_source,
    "imap": _imap_source,
    "cart_poll": _cart_poll_source,
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield s
    s.dispose()


@pytest.fixture(params=sorted(FACTORIES))
def harness(request: pytest.FixtureRequest, tmp_path: Path, store: Store) -> Iterator[Harness]:
    yield from FACTORIES[request.param](tmp_path, store, request)


@pytest.fixture
def commit(store: Store) -> Callable[[RawMessage], Stored]:
    pipeline = Pipeline(store, connectors=[])

    def commit(raw: RawMessage) -> Stored:
        result = pipeline.receive(raw)
        return Stored(result.message_id, result.duplicate)

    return commit


def counting_acks(source: Source) -> Counter[str]:
    """Count the source's own acknowledging actions per item (source_ref)."""
    calls: Counter[str] = Counter()
    real = source.ack

    def ack(message: RawMessage, outcome: Any, message_id: str) -> None:
        calls[message.source_ref] += 1
        real(message, outcome, message_id)

    source.ack = ack  # type: ignore[method-assign]
    return calls


# -- the contract ------------------------------------------------------------------------------


def test_every_builtin_source_is_covered() -> None:
    assert set(FACTORIES) == set(SOURCES)


def test_second_poll_after_acknowledge_yields_nothing_new(harness: Harness, commit: Callable[[RawMessage], Stored]) -> None:
    harness.put(3)
    first = ingest(harness.source, commit)
    assert (first.received, first.duplicates) == (3, 0)
    assert harness.waiting() == 0
    offered = [c.message for c in claims(harness.source)]
    if harness.rereads:
        assert all(commit(m).duplicate for m in offered)  # the overlap window, recognised
    else:
        assert offered == []
    again = ingest(harness.source, commit)
    assert again.received == 0


def test_acknowledging_twice_is_an_error(harness: Harness, commit: Callable[[RawMessage], Stored]) -> None:
    harness.put(2)
    acks = counting_acks(harness.source)
    offered = list(claims(harness.source))
    assert len(offered) == 2
    for claim in offered:
        claim.ack("stored", commit(claim.message))
    with pytest.raises(AcknowledgedTwice, match="acknowledged twice"):
        offered[0].ack("stored", commit(offered[0].message))
    assert sorted(acks.values()) == [1, 1]  # the second call never reached the source


def test_acknowledge_only_after_commit(harness: Harness, commit: Callable[[RawMessage], Stored]) -> None:
    """A store failure acknowledges nothing: the item stays at the source and comes again."""
    harness.put(3)
    acks = counting_acks(harness.source)
    calls = 0

    def flaky(raw: RawMessage) -> Stored:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreUnavailable("the database went away")
        return commit(raw)

    with pytest.raises(StoreUnavailable):
        ingest(harness.source, flaky)
    assert sum(acks.values()) == 1  # only the one committed before the failure
    assert harness.waiting() == 2
    with pytest.raises(TypeError):
        next(claims(harness.source)).ack("stored", "not-a-commit")  # type: ignore[arg-type]
    later = ingest(harness.source, commit)
    assert later.received == 2 and harness.waiting() == 0


def test_a_refusal_surfaces_as_a_rejected_message(harness: Harness, commit: Callable[[RawMessage], Stored], store: Store) -> None:
    harness.put_refused()
    harness.put(1)
    seen: list[RawMessage] = []

    def record(raw: RawMessage) -> Stored:
        seen.append(raw)
        return commit(raw)

    stats = ingest(harness.source, record)
    assert stats.received == 2
    refused = [m for m in seen if m.rejected]
    assert len(refused) == 1
    reason = refused[0].rejected or ""
    assert reason.split(":", 1)[0].isupper() and ": " in reason  # a CODE: and why
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.messages.c.state, t.messages.c.reason)).all()
    assert sorted(r.state for r in rows) == ["quarantined", "received"]
    assert [r.reason for r in rows if r.state == "quarantined"] == [reason.split(":", 1)[0]]
    assert harness.waiting() == 0


def test_a_thousand_items_in_one_poll(harness: Harness, commit: Callable[[RawMessage], Stored], store: Store) -> None:
    """Every item stored and acknowledged exactly once (issue 14 #1: claims remembered by id()
    were taken for each other after a few dozen)."""
    harness.put(1000)
    acks = counting_acks(harness.source)
    stats = ingest(harness.source, commit)
    assert (stats.received, stats.duplicates) == (1000, 0)
    assert len(acks) == 1000 and set(acks.values()) == {1}
    assert harness.waiting() == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.messages)).scalar_one() == 1000


def test_two_instances_on_the_same_items_never_fail(harness: Harness, commit: Callable[[RawMessage], Stored], store: Store) -> None:
    """reliability F17, issue 14 #1: two nodes read the same items before either acknowledges;
    each item is stored once, and acknowledging one the other node took first is no error."""
    harness.put(5)
    other = harness.twin()
    mine, theirs = list(claims(harness.source)), list(claims(other))
    assert len(mine) == len(theirs) == 5
    for claim in theirs:
        claim.ack("stored", commit(claim.message))
    for claim in mine:
        stored = commit(claim.message)
        assert stored.duplicate
        claim.ack("duplicate", stored)
    assert harness.waiting() == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.messages)).scalar_one() == 5
    assert ingest(harness.source, commit).received == 0
    assert ingest(other, commit).received == 0
