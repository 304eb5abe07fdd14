"""The admin port: `/healthz`, `/readyz` and `/metrics`, served by `gateway run` whenever
`admin:` is configured, whether or not an HTTP intake is (a folder- or mail-only gateway
in a container still needs probes).

    admin:
      host: 0.0.0.0      # default 127.0.0.1
      port: 9464

The same uvicorn server as the intake (its own thread, slow-client guards), with a small
application of its own: no webhook, form or operator route is reachable on this port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from gateway.intake.config import IntakeConfig
from gateway.intake.metrics import health_router, metrics_router
from gateway.intake.server import IntakeServer

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config import AdminConfig

__all__ = ["AdminServer", "create_admin_app"]


def create_admin_app(gateway: Any) -> FastAPI:
    """Probes and metrics for `gateway`, nothing else."""
    app = FastAPI(title="Order gateway admin", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(gateway))
    app.include_router(metrics_router(gateway, dict))  # this port takes no intake requests
    return app


class AdminServer(IntakeServer):
    """The admin port on a background thread: `start()`, `serve(new_gateway)` on a reload, `stop()`."""

    def __init__(self, gateway: Gateway, config: AdminConfig):
        super().__init__(gateway, IntakeConfig(host=config.host, port=config.port))
        self.app = create_admin_app(gateway)

    def serve(self, gateway: Gateway) -> None:
        """Answer for `gateway` from now on (a reload), without closing the port."""
        self.app = create_admin_app(gateway)
