"""The pipeline on both stores: nothing lost, nothing doubled, bad input quarantined."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.connector import RawMessage
from gateway.pipeline import Pipeline, display_name
from gateway.store import Store
from gateway.store import tables as t
from tests.support.x12gen import file_with_orders, interchange, po


def raw(body: bytes, name: str = "po.edi") -> RawMessage:
    return RawMessage(body=body, source="test", source_ref=f"/in/{name}", display_name=name)


@pytest.fixture
def pipeline(store: Store) -> Pipeline:
    return Pipeline(store, connectors=["erp", "crm"], batch_orders=2)


def rows(store: Store, table, *where):
    with store.engine.connect() as c:
        return c.execute(select(table).where(*where)).mappings().all()


def count(store: Store, table, *where) -> int:
    with store.engine.connect() as c:
        return c.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_receive_then_process_writes_orders_outbox_and_history(store, pipeline):
    r = pipeline.receive(raw(file_with_orders(["PO-1", "PO-2", "PO-3"])))
    assert not r.duplicate
    [msg] = rows(store, t.messages)
    assert msg["state"] == "received" and msg["size"] > 0
    stats = pipeline.process(r.message_id)
    assert stats.orders == 3 and stats.quarantined == 0
    orders = rows(store, t.orders)
    assert sorted(o["po_number"] for o in orders) == ["PO-1", "PO-2", "PO-3"]
    assert {o["state"] for o in orders} == {"validated"}
    assert count(store, t.outbox) == 6  # one per (order, connector)
    keys = [o["idempotency_key"] for o in rows(store, t.outbox)]
    assert len(set(keys)) == 6
    [msg] = rows(store, t.messages)
    assert msg["state"] == "parsed" and msg["order_count"] == 3
    [event] = rows(store, t.events, t.events.c.order_id == orders[0]["id"])
    assert event["kind"] == "validated"
    assert event["detail"].startswith(f"PO {orders[0]['po_number']}, 1 line(s) from line ")
    assert event["detail"].endswith("queued for erp, crm")


def test_content_hash_ignores_the_envelope_but_not_the_order(store, pipeline):
    a = pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000001", sender="ACMERETAIL")))
    pipeline.process(a.message_id)
    b = pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000002", sender="ACMERETAIL")))
    pipeline.process(b.message_id)
    first, second = sorted(rows(store, t.orders), key=lambda o: o["created_at"])
    assert first["content_hash"] == second["content_hash"]  # other ISA13, same order
    assert first["data"]["source"]["interchange_control_number"] == "000000001"
    assert second["data"]["source"]["interchange_control_number"] == "000000002"


def test_same_bytes_twice_is_a_noop(store, pipeline):
    body = file_with_orders(["PO-1"])
    first = pipeline.receive(raw(body))
    pipeline.process(first.message_id)
    again = pipeline.receive(raw(body, "renamed.edi"))
    assert again.duplicate and again.message_id == first.message_id
    assert count(store, t.messages) == 1 and count(store, t.orders) == 1
    assert count(store, t.events, t.events.c.kind == "duplicate_received") == 1


def test_same_source_identity_with_other_bytes_is_a_duplicate(store, pipeline):
    # An e-mail delivered again with one more Received header: same Message-ID, other bytes.
    first = pipeline.receive(RawMessage(b"Subject: PO\r\n\r\nbody", "mailbox", "uid 1", "PO", dedupe_key="message-id:<a@b>"))
    again = pipeline.receive(RawMessage(b"Received: x\r\nSubject: PO\r\n\r\nbody", "mailbox", "uid 9", "PO", dedupe_key="message-id:<a@b>"))
    assert again.duplicate and again.message_id == first.message_id
    # the same id from another mailbox is another message; so is a mail without an id
    other = pipeline.receive(RawMessage(b"Received: y\r\nSubject: PO\r\n\r\nbody", "other-box", "uid 1", "PO", dedupe_key="message-id:<a@b>"))
    plain = pipeline.receive(RawMessage(b"Received: z\r\nSubject: PO\r\n\r\nbody", "mailbox", "uid 2", "PO"))
    assert not other.duplicate and not plain.duplicate
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.messages)).scalar_one() == 3
        details = c.execute(select(t.events.c.detail).where(t.events.c.kind == "duplicate_received")).scalars().all()
    assert details == ["same message-id:<a@b> received again from mailbox: PO"]


def test_same_interchange_with_different_whitespace_creates_nothing(store, pipeline):
    body = file_with_orders(["PO-1", "PO-2"])
    pipeline.process(pipeline.receive(raw(body)).message_id)
    reformatted = body.replace(b"~\n", b"~\r\n")  # other bytes, same interchange
    r = pipeline.receive(raw(reformatted))
    assert not r.duplicate
    stats = pipeline.process(r.message_id)
    assert stats.orders == 0 and stats.duplicates >= 1
    assert count(store, t.orders) == 2
    assert count(store, t.outbox) == 4


def test_reused_control_number_with_other_content_is_quarantined(store, pipeline):
    pipeline.process(pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000777"))).message_id)
    r = pipeline.receive(raw(file_with_orders(["PO-9"], icn="000000777")))
    pipeline.process(r.message_id)
    assert count(store, t.orders, t.orders.c.po_number == "PO-9") == 0
    [msg] = rows(store, t.messages, t.messages.c.id == r.message_id)
    assert any("CONTROL_NUMBER_REUSED" in w for w in msg["warnings"])
    # issue 14 #21: the message itself waits for a person (not `parsed` with nothing in it).
    assert (msg["state"], msg["reason"]) == ("quarantined", "CONTROL_NUMBER_REUSED")
    assert count(store, t.events, t.events.c.message_id == r.message_id, t.events.c.kind == "quarantined") == 2


def test_resent_po_in_a_new_interchange_is_not_sent_twice(store, pipeline):
    pipeline.process(pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000001"))).message_id)
    r = pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000002")))
    pipeline.process(r.message_id)
    second = rows(store, t.orders, t.orders.c.message_id == r.message_id)
    assert [o["state"] for o in second] == ["duplicate"]
    assert count(store, t.outbox) == 2  # only the first order's deliveries


def test_same_po_number_with_different_content_is_held_for_a_person(store, pipeline):
    pipeline.process(pipeline.receive(raw(file_with_orders(["PO-1"], icn="000000001"))).message_id)
    body = interchange([po("PO-1", [("5", "1.00", "OTHER")])], icn="000000002").encode()
    r = pipeline.receive(raw(body))
    pipeline.process(r.message_id)
    [o] = rows(store, t.orders, t.orders.c.message_id == r.message_id)
    assert o["state"] == "quarantined" and o["reason"] == "DUPLICATE_PO"
    assert "a person must decide" in o["error"]


def test_bad_transaction_is_quarantined_and_the_rest_go_on(store, pipeline):
    good1, bad, good2 = po("PO-1", st="0001"), po("PO-2", st="0002"), po("PO-3", st="0003")
    bad[-1] = "SE*99*0002"
    r = pipeline.receive(raw(interchange([good1, bad, good2]).encode()))
    stats = pipeline.process(r.message_id)
    assert stats.orders == 2 and stats.quarantined == 1
    [q] = rows(store, t.orders, t.orders.c.state == "quarantined")
    assert q["reason"] == "X12_SE_COUNT" and "line" in q["position"]
    [msg] = rows(store, t.messages)
    assert msg["state"] == "parsed" and msg["order_count"] == 2 and msg["rejected_count"] == 1


def test_validation_failure_is_quarantined_with_the_rule(store, pipeline):
    body = interchange([po("PO-0", [("0", "1.00", "SKU")])]).encode()
    pipeline.process(pipeline.receive(raw(body)).message_id)
    [o] = rows(store, t.orders)
    assert o["state"] == "quarantined" and o["reason"] == "VALIDATION:quantity_not_positive"
    assert count(store, t.outbox) == 0


def test_unreadable_input_quarantines_the_message(store, pipeline):
    r = pipeline.receive(raw(b"\x89PNG\r\n\x1a\n binary junk"))
    stats = pipeline.process(r.message_id)
    assert stats.rejected_messages == 1
    [msg] = rows(store, t.messages)
    assert msg["state"] == "quarantined" and msg["reason"] == "NOT_RECOGNIZED"


def test_reprocessing_after_a_crash_skips_what_was_written(store, pipeline):
    r = pipeline.receive(raw(file_with_orders([f"PO-{i}" for i in range(5)])))
    pipeline.process(r.message_id)
    # Simulate a crash after some batches: the message is back in 'received'.
    with store.begin() as c:
        c.execute(t.messages.update().values(state="received"))
    pipeline.process(r.message_id)
    assert count(store, t.orders) == 5 and count(store, t.outbox) == 10


def test_a_message_that_keeps_crashing_the_gateway_is_quarantined(store):
    p = Pipeline(store, connectors=["erp"], max_attempts=2)
    r = p.receive(raw(file_with_orders(["PO-1"])))
    with store.begin() as c:  # two earlier attempts that never finished
        c.execute(t.messages.update().values(attempts=2))
    p.process(r.message_id)
    [msg] = rows(store, t.messages)
    assert msg["state"] == "quarantined" and msg["reason"] == "CRASH_LOOP"
    assert count(store, t.orders) == 0


def test_process_pending_claims_waiting_messages(store, pipeline):
    for i in range(3):
        pipeline.receive(raw(file_with_orders([f"PO-{i}"], icn=f"00000000{i}")))
    stats = pipeline.process_pending()
    assert stats.messages == 3 and stats.orders == 3
    assert pipeline.process_pending().messages == 0


def test_display_name_strips_paths_and_control_characters():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\x\\..\\po.edi") == "po.edi"
    assert display_name("a\x00b\x1b[31mc.edi") == "ab[31mc.edi"
    assert display_name("") == "unnamed"
    assert len(display_name("x" * 1000)) == 255


def test_interchange_repeated_inside_one_file_counts_once(store, pipeline):
    one = file_with_orders(["PO-1", "PO-2"], icn="000000042")
    r = pipeline.receive(raw(one + one))
    stats = pipeline.process(r.message_id)
    assert stats.orders == 2 and stats.duplicates == 2
    assert count(store, t.orders) == 2 and count(store, t.interchanges) == 1


def test_a_repeat_far_down_the_file_is_found_after_its_first_copy_was_written(store, pipeline):
    """Interchanges already written are forgotten by processing (memory stays flat with the
    file, issue 14 #18): a repeat batches later is found in the store instead."""
    first = file_with_orders(["PO-1"], icn="000000061")
    others = b"".join(file_with_orders([f"PO-{i}"], icn=f"{i:09d}") for i in range(100, 106))
    changed = file_with_orders(["PO-9"], icn="000000062")
    body = first + changed + others + first + file_with_orders(["PO-10"], icn="000000062")
    stats = pipeline.process(pipeline.receive(raw(body)).message_id)
    assert stats.orders == 8 and stats.duplicates == 1
    assert count(store, t.orders) == 8 and count(store, t.interchanges) == 8
    [msg] = rows(store, t.messages)
    assert msg["state"] == "parsed" and any("CONTROL_NUMBER_REUSED" in w for w in msg["warnings"])


def test_repeated_interchange_larger_than_a_batch_creates_nothing(store, pipeline):
    numbers = [f"PO-{i}" for i in range(5)]  # batch_orders=2: the repeat spans three batches
    pipeline.process(pipeline.receive(raw(file_with_orders(numbers, icn="000000050"))).message_id)
    r = pipeline.receive(raw(file_with_orders(numbers, icn="000000050").replace(b"~\n", b"~")))
    stats = pipeline.process(r.message_id)
    assert stats.orders == 0 and stats.duplicates == 5
    assert count(store, t.orders) == 5 and count(store, t.outbox) == 10
    [msg] = rows(store, t.messages, t.messages.c.id == r.message_id)
    assert msg["state"] == "parsed"


@pytest.mark.postgres
def test_two_nodes_share_the_processing_on_postgresql(pg_url):
    import threading

    stores = [Store(pg_url), Store(pg_url)]
    try:
        nodes = [Pipeline(s, connectors=["erp"]) for s in stores]
        for i in range(30):
            nodes[0].receive(raw(file_with_orders([f"PO-{i}"], icn=f"{i + 1:09d}"), f"f{i}.edi"))
        results: list[int] = []
        errors: list[BaseException] = []

        def work(p: Pipeline) -> None:
            try:
                results.append(p.process_pending(limit=100).messages)
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in nodes]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert not errors
        assert sum(results) == 30
        assert count(stores[0], t.orders) == 30 and count(stores[0], t.outbox) == 30
        assert count(stores[0], t.messages, t.messages.c.state == "parsed") == 30
    finally:
        for s in stores:
            s.dispose()
