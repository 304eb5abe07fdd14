"""One error tree, split by what the caller should do about it.

    GatewayError
    ├── ConfigError            stop start-up; the message names the place and the fix
    ├── InputRejected          bad input: quarantine it with `reason` (a stable code) and a
    │   │                      sentence a person understands; the rest of the batch goes on
    │   ├── ParseError         the bytes cannot be read as the format they claim to be
    │   └── MappingError       readable, but not an order we can build (missing PO number, ...)
    ├── DeliveryError          a connector could not deliver an order
    │   ├── TransientError     retry with back-off (connection errors, timeouts, 408, 429, 5xx)
    │   └── PermanentError     do not retry: dead-letter it (other 4xx, a payload the ERP refuses)
    ├── StoreUnavailable       the database cannot be reached: acknowledge nothing, try later
    ├── WebhookRefused         a service's webhook we will not act on (its body is not what
    │   │                      the service documents): answered 400, nothing recorded
    │   └── WebhookUnauthorized  its signature or token is missing or wrong: answered 401
    └── StoreMissing           a read-only command found no store: say so, create nothing

Unknown exceptions from a connector count as permanent unless the connector declares its
delivery idempotent: a blind retry of a non-idempotent call can post an order twice.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "GatewayError",
    "InputRejected",
    "MappingError",
    "ParseError",
    "PermanentError",
    "StoreMissing",
    "StoreUnavailable",
    "TransientError",
    "WebhookRefused",
    "WebhookUnauthorized",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is wrong. `problems` lists every problem found, each with its place."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InputRejected(GatewayError):
    """Input that cannot become an order. Quarantined, never retried as is.

    `reason` is a stable machine-readable code (``X12_ENVELOPE``, ``NOT_EDI``, ...);
    `position` says where in the input the problem is (``segment 12 (PO1), line 14``).
    """

    reason = "INPUT_REJECTED"

    def __init__(self, message: str, *, reason: str | None = None, position: str | None = None):
        self.message = message
        if reason:
            self.reason = reason
        self.position = position
        super().__init__(f"{message} at {position}" if position else message)


class ParseError(InputRejected):
    reason = "PARSE_ERROR"


class MappingError(InputRejected):
    reason = "MAPPING_ERROR"


class DeliveryError(GatewayError):
    """A connector failed to deliver. `status` is the HTTP status where there was one."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class TransientError(DeliveryError):
    """Worth retrying later: the same call may succeed."""


class PermanentError(DeliveryError):
    """Retrying the same call will fail the same way: dead-letter it for a person."""


class StoreUnavailable(GatewayError):
    """The store cannot be written: nothing may be acknowledged to the source."""


class StoreMissing(GatewayError):
    """A command that only reads found no store: nothing has been received yet."""


class WebhookRefused(GatewayError):
    """A webhook from a connector's service that cannot be acted on: its body is not what the
    service documents. Answered 400; nothing is recorded. The message never echoes the body."""


class WebhookUnauthorized(WebhookRefused):
    """A webhook whose signature or token is missing or does not match: answered 401, nothing
    is read from its body."""
