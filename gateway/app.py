"""The gateway assembled from its configuration: store, pipeline, sources, dispatcher.

One object, passed around instead of globals; the CLI and the service both build it here.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.config import GatewayConfig
from gateway.connector import RawMessage, Source
from gateway.errors import ConfigError, StoreUnavailable
from gateway.pipeline import Pipeline, ProcessStats
from gateway.store import Store
from gateway.translate import PartnerDirectory

log = logging.getLogger(__name__)

__all__ = ["CycleStats", "Gateway"]

SOURCES: dict[str, str] = {
    "folder": "connectors.sources.folder.source:FolderSource",
}


@dataclass(slots=True)
class CycleStats:
    received: int = 0
    duplicates: int = 0
    processed: ProcessStats | None = None
    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def busy(self) -> bool:
        p = self.processed
        return bool(self.received or (p and p.messages) or self.sent or self.retried or self.dead)


class Gateway:
    def __init__(self, config: GatewayConfig, *, store: Store | None = None):
        self.config = config
        self.store = store or Store(config.store.url)

    @cached_property
    def pipeline(self) -> Pipeline:
        cfg = self.config
        return Pipeline(
            self.store,
            connectors=[c.name for c in cfg.connectors],
            partners=PartnerDirectory(cfg.partners),
            partner_connectors={p.name: p.connectors for p in cfg.partners if p.connectors is not None},
            batch_orders=cfg.processing.batch_orders,
            max_attempts=cfg.processing.max_attempts,
        )

    @cached_property
    def sources(self) -> list[Source]:
        built: list[Source] = []
        for sc in self.config.sources:
            module, _, cls = SOURCES[sc.type].partition(":")
            built.append(getattr(importlib.import_module(module), cls)(sc))
        return built

    @cached_property
    def dispatcher(self) -> Any:
        from connectors.registry import build_connector

        from gateway.dispatch.worker import Dispatcher

        connectors = {c.name: build_connector(c) for c in self.config.connectors}
        policies = {c.name: c.retry for c in self.config.connectors}
        return Dispatcher(self.store, connectors, policies, self.config.dispatch)

    def source_config(self, name: str) -> Any:
        return self.config.source(name)

    # -- the jobs ------------------------------------------------------------------------------

    def poll_source(self, source: Source) -> tuple[int, int]:
        """Store everything the source offers, acknowledging each message after its commit."""
        received = duplicates = 0
        sc = self.source_config(source.name)
        fmt = None if sc.format == "auto" else sc.format
        for raw in source.poll():
            result = self.pipeline.receive(raw, format=fmt, partner=sc.partner)
            outcome = "rejected" if raw.rejected else ("duplicate" if result.duplicate else "stored")
            source.ack(raw, outcome, result.message_id)  # type: ignore[arg-type]
            if result.duplicate:
                duplicates += 1
            else:
                received += 1
        return received, duplicates

    def poll_sources(self) -> tuple[int, int]:
        received = duplicates = 0
        for source in self.sources:
            try:
                r, d = self.poll_source(source)
            except StoreUnavailable as exc:
                log.error("source %s: %s; nothing acknowledged, will retry", source.name, exc)
                continue
            received += r
            duplicates += d
        return received, duplicates

    def process(self) -> ProcessStats:
        return self.pipeline.process_pending()

    def dispatch(self) -> Any:
        return self.dispatcher.run_once()

    def cycle(self) -> CycleStats:
        stats = CycleStats()
        stats.received, stats.duplicates = self.poll_sources()
        stats.processed = self.process()
        d = self.dispatch()
        stats.sent, stats.retried, stats.dead = d.sent, d.retried, d.dead
        return stats

    def ingest(self, raw: RawMessage, *, format: str | None = None, partner: str | None = None) -> tuple[str, bool, ProcessStats]:
        result = self.pipeline.receive(raw, format=format, partner=partner)
        stats = ProcessStats() if result.duplicate else self.pipeline.process(result.message_id, format=format, partner=partner)
        return result.message_id, result.duplicate, stats

    def close(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        self.store.dispose()


def check_connectors(config: GatewayConfig) -> list[str]:
    """Build every connector once, to surface problems (SSRF guard, payload files) at start-up."""
    problems: list[str] = []
    from connectors.registry import build_connector

    for c in config.connectors:
        try:
            build_connector(c).close()
        except (ConfigError, ValueError) as exc:
            problems.append(f"connector {c.name}: {exc}")
    return problems
