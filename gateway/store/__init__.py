"""The durable store: tables, the engine, and the migrations that keep them in step."""

import gateway.store.alerts  # noqa: F401  (registers its tables on the shared metadata)
import gateway.store.breakers  # noqa: F401  (each connector's circuit breaker)
import gateway.store.console_users  # noqa: F401  (the console's users and sessions)
import gateway.store.cursors  # noqa: F401  (registers its table on the shared metadata)
from gateway.store.db import RawJSON, Store, add_event, add_events, as_utc, new_id, utcnow

__all__ = ["RawJSON", "Store", "add_event", "add_events", "as_utc", "new_id", "utcnow"]
