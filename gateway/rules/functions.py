"""Named Python functions that expression rules may call, by name.

Anything the restricted expression language cannot say is written as a plain Python function
and registered here (built-ins) or by an installed package through the
``order_gateway.rule_functions`` entry-point group; an expression calls it as ``name(args)``.
A name an expression uses that is neither a field nor a registered function is a
configuration error at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "functions"]

ENTRY_POINT_GROUP = "order_gateway.rule_functions"


def email_domain(email: Any) -> str | None:
    """The domain of an e-mail address, lower case (None when there is none)."""
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower()


def upper(text: Any) -> str | None:
    return text.upper() if isinstance(text, str) else None


BUILTIN: dict[str, Callable[..., Any]] = {"email_domain": email_domain, "upper": upper}


@cache
def functions() -> dict[str, Callable[..., Any]]:
    """Every registered function by name (installed packages' first, built-ins win a clash)."""
    found: dict[str, Callable[..., Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        fn = ep.load()
        if callable(fn):
            found[ep.name] = fn
    return {**found, **BUILTIN}
