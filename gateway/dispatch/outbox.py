"""Moved to :mod:`gateway.store.outbox` (issue 9: all SQL in gateway/store/).

This name stays only while `gateway.pipeline` still imports it from here; it issues no SQL.
"""

from gateway.store.outbox import *  # noqa: F403
from gateway.store.outbox import __all__ as __all__
