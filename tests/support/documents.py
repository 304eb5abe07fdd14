"""Sending and reading documents (acknowledgements, confirmation e-mails) in tests: they are
outbox rows, sent by the one dispatcher through the ack channels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from gateway.acks.channels import ChannelSet
from gateway.config import DispatchConfig
from gateway.dispatch.worker import Dispatcher, DispatchStats
from gateway.retry import RetryPolicy
from gateway.store import tables as t


def send_documents(store: Any, partners: Iterable[Any] = (), *, smtp: Any = None, policy: RetryPolicy | None = None) -> DispatchStats:
    """One dispatcher pass over the due documents (a dispatcher with no order connectors)."""
    d = Dispatcher(store, {}, {}, DispatchConfig(), channels=ChannelSet(partners, smtp), document_policy=policy)
    try:
        return d.run_once()
    finally:
        d.close()


def documents(store: Any, kind: str | None = None) -> list[dict[str, Any]]:
    """The document rows of the outbox, oldest first, with `channel` and `error` as people read them."""
    o = t.outbox
    query = select(
        o.c.id, o.c.kind, o.c.state, o.c.connector.label("channel"), o.c.last_error.label("error"), o.c.order_id,
        o.c.message_id, o.c.partner, o.c.control_number, o.c.body, o.c.attempts,
    ).where(o.c.kind != "order")
    if kind is not None:
        query = query.where(o.c.kind == kind)
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(query.order_by(o.c.id)).mappings()]
