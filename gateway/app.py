"""The gateway assembled from its configuration: store, pipeline, sources, dispatcher.

One object, passed around instead of globals; the CLI and the service both build it here.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway import plugins
from gateway.config import GatewayConfig
from gateway.connector import AckOutcome, RawMessage, Source
from gateway.errors import ConfigError, GatewayError, StoreUnavailable
from gateway.ingest import Stored, default_outcome, ingest
from gateway.pipeline import Pipeline, ProcessStats
from gateway.routing import Router
from gateway.store import Store
from gateway.translate import PartnerDirectory

log = logging.getLogger(__name__)

__all__ = ["CycleStats", "Gateway", "RulesSetup"]


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
        self._node_lock: Any = None

    @cached_property
    def partners(self) -> PartnerDirectory:
        """The configured trading partners, as translation reads them."""
        return PartnerDirectory(self.config.partners, mappings_root=self.config.mappings)

    @cached_property
    def pipeline(self) -> Pipeline:
        from gateway.gctune import tune_for_batches

        tune_for_batches()
        cfg = self.config
        return Pipeline(
            self.store,
            # A connector named as some partner's test connector gets no production order by default.
            connectors=[c.name for c in cfg.connectors if not any(c.name in p.test_connectors for p in cfg.partners)],
            partners=self.partners,
            partner_connectors={
                **{p.name: p.connectors for p in cfg.partners if p.connectors is not None},
                **{s.name: s.connectors for s in (cfg.intake.stores if cfg.intake else []) if s.connectors is not None},
            },
            batch_orders=cfg.processing.batch_orders,
            max_attempts=cfg.processing.max_attempts,
            lease_seconds=cfg.processing.lease_seconds,
            capabilities={name: c.capabilities for name, c in self.dispatcher.connectors.items()},
            provenance=cfg.processing.provenance,
            authserv_id=cfg.processing.authserv_id,
            smtp=cfg.smtp,
            rules=self.rules_engine if cfg.rules else None,
            reserve_stock=bool(cfg.rules) and (cfg.masterdata is None or cfg.masterdata.folder is None),
            router=Router(cfg.routing) if cfg.routing is not None else None,
            # Connectors that get a split order once per part (`per_part`, default: those that ship).
            per_part=[c.name for c in cfg.connectors if c.sends_parts(self.dispatcher.connectors[c.name].capabilities)],
            decide_pool=self._decide_pool,
        )

    @cached_property
    def _decide_pool(self) -> Any:
        """Worker processes that apply the rules beside the reading (gateway.processing.decide_worker)."""
        cfg = self.config
        if not cfg.rules or cfg.processing.decide_workers == 0 or self.store.url != cfg.store.url or ":memory:" in cfg.store.url:
            return None  # a worker opens the configured store itself: not one only this process can see
        from gateway.processing.decide_worker import DecidePool

        return DecidePool(functools.partial(decide_in_worker, cfg), size=cfg.processing.decide_workers)

    # -- the rules and their master data -------------------------------------------------------------

    @cached_property
    def _rules_setup(self) -> RulesSetup:
        return RulesSetup(self.config)

    def masterdata(self, conn: Any = None) -> Any:
        """The master data the rules read (see RulesSetup.masterdata: the one seam)."""
        return self._rules_setup.masterdata(conn)

    def rules_engine(self, conn: Any = None) -> Any:
        """The rules engine for one batch (`conn`: the batch's transaction; None: a dry run)."""
        return self._rules_setup.engine(conn)

    @cached_property
    def sources(self) -> list[Source]:
        return [plugins.build("source", sc, store=self.store) for sc in self.config.sources]

    @cached_property
    def dispatcher(self) -> Any:
        from gateway.dispatch.worker import Dispatcher

        connectors = {c.name: plugins.build("target", c) for c in self.config.connectors}
        policies = {c.name: c.retry for c in self.config.connectors}
        # Acknowledgements and confirmation e-mails are outbox rows of the same dispatcher; a
        # document whose channel is no longer configured becomes a dead letter, never lost.
        from gateway.acks.channels import ChannelSet

        intake = self.config.intake
        channels = ChannelSet(self.config.partners, self.config.smtp, self.config.exceptions.teams, as2=intake.as2 if intake else None)
        d = self.config.dispatch
        return Dispatcher(
            self.store, connectors, policies, d, channels=channels, document_policy=d.ack_retry, steps=self.config.steps(),
            breakers={c.name: c.breaker for c in self.config.connectors if c.breaker is not None}, rates={c.name: c.rate_per_second for c in self.config.connectors},
        )

    @property
    def sends_documents(self) -> bool:
        """Whether this gateway sends acknowledgements or confirmation e-mails (a partner wants
        them, or an `smtp:` section is configured)."""
        as2 = self.config.intake.as2 if self.config.intake is not None else None  # asynchronous MDNs
        return bool(self.config.smtp is not None or self.pipeline.partners.wants_acks or self.config.exceptions.teams or as2)

    @cached_property
    def notifier(self) -> Any:
        """Assigns waiting orders to the exception queue's teams and tells them (gateway.processing.notify)."""
        from gateway.processing.notify import Notifier

        return Notifier(self.store, self.config.exceptions.teams, self.config.smtp)

    def notify(self) -> Any:
        """One pass of the team notifications (assign, announce, remind); None without teams."""
        return self.notifier.run() if self.config.exceptions.teams else None

    def source_config(self, name: str) -> Any:
        return self.config.source(name)

    # -- the jobs ------------------------------------------------------------------------------

    def poll_source(self, source: Source) -> tuple[int, int]:
        """Store everything the source offers, acknowledging each message once, after its commit."""
        sc = self.source_config(source.name)
        fmt = sc.message_format()

        def store(raw: RawMessage) -> Stored:
            result = self.pipeline.receive(raw, format=fmt, partner=sc.partner)
            return Stored(result.message_id, result.duplicate)

        def settle(raw: RawMessage, stored: Stored) -> AckOutcome | None:
            if raw.rejected:
                return "rejected"
            # A mailbox shows people where each mail stands (Processed, Needs-review,
            # Failed), so the mail is processed before it is moved. It is committed
            # already: a crash here re-offers it, the store answers "duplicate", and a
            # message that is still waiting is processed now. One that another worker
            # (or node) is processing at this moment stays where it is: a later poll
            # offers it again and moves it once its outcome is known.
            # claim() takes only a waiting, unleased message: a processed one is just routed.
            if self.pipeline.claim(stored.message_id):
                # durable: the mail is moved by this outcome right after (reliability P1).
                self.pipeline.process(stored.message_id, claimed=True, format=fmt, partner=sc.partner, durable=True)
            routed = self._outcome(stored.message_id)
            if routed is None:
                log.info("source %s: %s is being processed elsewhere; it is moved on a later poll", source.name, raw.display_name)
            return routed

        def store_many(raws: list[RawMessage]) -> list[Stored]:
            return [Stored(r.message_id, r.duplicate) for r in self.pipeline.receive_many(raws, format=fmt, partner=sc.partner)]

        if getattr(source, "routes_by_outcome", False):
            stats = ingest(source, store, settle)
        else:
            stats = ingest(source, store, default_outcome, store_many=store_many)
        return stats.received, stats.duplicates

    def _outcome(self, message_id: str) -> AckOutcome | None:
        """review, rejected or stored for a processed message; None while it is not processed."""
        from gateway.store.queries import message_outcome

        msg = message_outcome(self.store, message_id)
        states = msg.order_states if msg is not None else frozenset()
        if msg is None or msg.state in ("received", "processing"):
            return None
        if msg.state == "quarantined":
            return "review" if msg.reason == "SENDER_UNVERIFIED" else "rejected"
        if "held" in states or "quarantined" in states:
            return "review"
        return "stored"

    @property
    def ack_limits(self) -> dict[str, float]:
        """Partner -> minutes within which it acknowledges what we send (acks.expect_within_minutes)."""
        return {p.name: p.acks.expect_within_minutes for p in self.config.partners if p.acks.expect_within_minutes}

    def check_overdue(self) -> list[dict[str, Any]]:
        """Mark documents newly overdue (sent, not acknowledged by the partner in time, on the
        database clock) and log a warning for each; `gateway run` does this on a schedule."""
        from gateway.store import documents

        limits = self.ack_limits
        if not limits:
            return []
        with self.store.begin() as conn:
            newly = documents.mark_overdue(conn, limits)
        for r in newly:
            log.warning(
                "%s %s to %s (outbox %s) is overdue: not acknowledged within %g minutes of sending",
                r["kind"], r["control_number"] or "", r["partner"], r["id"], limits[r["partner"]],
            )
        return newly

    def documents(self, *, overdue: bool = False, partner: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The documents we generated, with their partner's acknowledgement and whether overdue."""
        from gateway.store import documents

        with self.store.engine.connect() as conn:
            return documents.listing(conn, self.ack_limits, overdue=overdue, partner=partner, limit=limit)

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
        """Process every stored message that waits, a group at a time; each group that
        queued orders wakes the dispatcher, so sending starts while the rest is read."""
        total = ProcessStats()
        while True:
            stats = self.pipeline.process_pending()
            total.add(stats)
            if stats != ProcessStats() and "dispatcher" in self.__dict__:
                self.dispatcher.wake()  # orders, or acknowledgements, were queued
            if stats == ProcessStats():
                return total

    def dispatch(self) -> Any:
        """Send every delivery that is due now, orders and documents (pass after pass while
        rows are found)."""
        return self.dispatcher.drain()

    def cycle(self) -> CycleStats:
        stats = CycleStats()
        stats.received, stats.duplicates = self.poll_sources()
        stats.processed = self.process()
        self.notify()
        d = self.dispatch()
        stats.sent, stats.retried, stats.dead = d.sent, d.retried, d.dead
        return stats

    def ingest(self, raw: RawMessage, *, format: str | None = None, partner: str | None = None) -> tuple[str, bool, ProcessStats]:
        result = self.pipeline.receive(raw, format=format, partner=partner)
        stats = ProcessStats() if result.duplicate else self.pipeline.process(result.message_id, format=format, partner=partner, body=raw.body)
        return result.message_id, result.duplicate, stats

    def run_until_idle(self, limit: float = 60.0) -> CycleStats:
        """Run cycles until nothing is left to do now (or `limit` seconds pass)."""
        self.start_node()
        deadline = time.monotonic() + limit
        total = CycleStats(processed=ProcessStats())
        idle_rounds = 0
        pause = min([0.5] + [s.poll_seconds for s in self.config.sources]) / 2
        while time.monotonic() < deadline:
            stats = self.cycle()
            total.received += stats.received
            total.duplicates += stats.duplicates
            if stats.processed and total.processed:
                total.processed.add(stats.processed)
            total.sent += stats.sent
            total.retried += stats.retried
            total.dead += stats.dead
            due = self.due_deliveries()
            idle_rounds = 0 if (stats.busy or due) else idle_rounds + 1
            # Files are claimed only once stable: look a few more times before calling it idle.
            if idle_rounds >= 3 and self._inbox_settled():
                break
            time.sleep(pause)
        return total

    def due_deliveries(self) -> int:
        from gateway.store import outbox

        return outbox.due_count(self.store, steps=self.config.steps())

    def _inbox_settled(self) -> bool:
        """No candidate files left waiting in any folder source."""
        from pathlib import Path

        from connectors.sources.folder.config import FolderSourceConfig

        for sc in self.config.sources:
            # Files still there are not claimed yet (an empty one is refused once stable).
            if isinstance(sc, FolderSourceConfig) and any(
                p.is_file() and not p.name.startswith(".") for p in Path(sc.path).glob(sc.pattern)
            ):
                return False
        return True

    def start_node(self) -> None:
        """Call once before running the jobs.

        SQLite serves one gateway node: a lock file next to the database refuses a second
        `gateway run`, and so every lease still held in the store belongs to a process that
        died; they are released at once instead of after they expire. (On PostgreSQL several
        nodes share the work and leases expire on their own.)
        """
        if self.config.rules:
            with self.store.engine.connect() as conn:
                self.rules_engine(conn)  # master data loads and the rules build now, not at the first order
        if not self.store.is_sqlite or self._node_lock is not None:
            return
        import fcntl

        from gateway.store.nodes import release_claims

        db_path = self.store.engine.url.database or ""
        if db_path and db_path != ":memory:":
            fh = open(f"{db_path}.lock", "a+")  # noqa: SIM115 - held for the life of the node
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise GatewayError(
                    f"another gateway is already running on {db_path}; SQLite serves one node. "
                    "Stop it, or use PostgreSQL (store.url) for several nodes"
                ) from None
            self._node_lock = fh
        released = release_claims(self.store)
        if released.messages or released.deliveries:
            log.warning(
                "recovered after an unclean stop: %d message(s) and %d delivery(ies) taken up again",
                released.messages,
                released.deliveries,
            )

    def adopt_node(self, previous: Gateway) -> None:
        """Take over `previous`'s node lock: a reload, the same store with a new configuration."""
        self._node_lock, previous._node_lock = previous._node_lock, None

    def close(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        if self.__dict__.get("_decide_pool") is not None:
            self._decide_pool.close()
        for source in self.__dict__.get("sources", []):
            close = getattr(source, "close", None)
            if callable(close):
                close()
        self.store.dispose()
        if self._node_lock is not None:
            self._node_lock.close()
            self._node_lock = None


def check_connectors(config: GatewayConfig) -> list[str]:
    """Build every connector once, to surface problems (SSRF guard, payload files, a shipment
    webhook secret's variable unset) at start-up."""
    problems: list[str] = []
    for c in config.connectors:
        try:
            connector = plugins.build("target", c)
        except (ConfigError, ValueError) as exc:
            problems.append(f"connector {c.name}: {exc}")
            continue
        try:
            if connector.capabilities.shipment_webhooks:
                connector.webhook_secrets()  # read per webhook: say now that a variable is missing
        except ConfigError as exc:
            problems.append(str(exc))
        finally:
            connector.close()
    if config.intake is not None and config.intake.operator_api is not None:
        try:
            config.intake.operator_api.token()  # read at start-up: say now that it is missing
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def decide_in_worker(config: GatewayConfig) -> tuple[str, Any]:
    """In a decide worker process: the store's URL and the configured rules engine, with a
    master-data folder already read (gateway.processing.decide_worker)."""
    setup = RulesSetup(config)
    setup.masterdata()
    return config.store.url, setup.engine


class RulesSetup:
    """The configured rules with their master data and order history, built once and usable
    without a store (`gateway rules test` stores nothing)."""

    def __init__(self, config: GatewayConfig):
        self.config = config

    @cached_property
    def _folder(self) -> tuple[Any, Any] | None:
        md = self.config.masterdata
        if md is None or md.folder is None:
            return None
        import gc

        from gateway.rules.memory import load_folder

        loaded = load_folder(md.folder)
        # The master data never changes while the process runs, and a catalogue is hundreds of
        # thousands of objects: kept out of the garbage collector's full collections, which would
        # otherwise rescan it again and again while orders are read (bench/bench_rules.py).
        gc.collect()
        gc.freeze()
        return loaded

    def masterdata(self, conn: Any = None) -> Any:
        """The master data the rules read: the one seam between the rules and where master data
        lives. A configured folder of CSV files is read once, into memory; otherwise the store's
        (`gateway data import`), read through `conn` (None without a store: a dry run)."""
        loaded = self._folder
        if loaded is not None:
            return loaded[0]
        if conn is None:
            return None
        from gateway.store.masterdata import StoreMasterData

        return StoreMasterData(conn)

    def history(self, conn: Any = None) -> Any:
        """The order history the rules read: the store's (through `conn`); without a store, the
        folder's history.csv/usual.csv."""
        if conn is None:
            loaded = self._folder
            return loaded[1] if loaded is not None else None
        from gateway.processing.decide import StoreHistory

        return StoreHistory(conn)

    @cached_property
    def rules(self) -> list[Any]:
        from gateway.rules import build_rules

        return build_rules(self.config.rules)

    def engine(self, conn: Any = None) -> Any:
        from gateway.rules import RulesEngine

        return RulesEngine(self.rules, self.masterdata(conn), self.history(conn))
