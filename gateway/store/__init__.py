"""The durable store: tables, the engine, and the migrations that keep them in step."""

from gateway.store.db import RawJSON, Store, add_event, add_events, as_utc, new_id, utcnow

__all__ = ["RawJSON", "Store", "add_event", "add_events", "as_utc", "new_id", "utcnow"]
