"""HTTP intake: shop webhooks (Shopify, WooCommerce) stored durably before they are answered.

`gateway.intake.config` is light and imported by the gateway's configuration; the web
application (FastAPI) and its server (uvicorn) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.intake.config import IntakeConfig, StoreConfig
from gateway.intake.signatures import sign_hmac_base64, verify_hmac_base64

if TYPE_CHECKING:
    from gateway.intake.app import create_app
    from gateway.intake.server import IntakeServer

__all__ = [
    "IntakeConfig",
    "IntakeServer",
    "StoreConfig",
    "create_app",
    "sign_hmac_base64",
    "verify_hmac_base64",
]

_LAZY = {"create_app": "gateway.intake.app", "IntakeServer": "gateway.intake.server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
