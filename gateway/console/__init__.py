"""The web console: the gateway's orders, exception queue, dead letters, sources and partners
in a browser, served by the HTTP intake under /console/ when ``intake.console`` is configured.

Pages are rendered on the server (Jinja2, autoescaped) with a little htmx; every asset is
served from this package (`static/`), so the console works on a closed network. People log
in as users made with `gateway users add` (gateway.console.auth: hashes, sessions, roles,
CSRF). Every read goes through store repositories (`gateway.store.console_queries`,
`queries`, `dead_letters`, `orders`); every action calls the same core function as the CLI
and the operators' API, so the order's history records who did what.
"""

from __future__ import annotations

from gateway.console.pages import PREFIX, mount_console

__all__ = ["PREFIX", "mount_console"]
