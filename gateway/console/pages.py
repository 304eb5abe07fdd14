"""The console's routes: a Starlette application mounted at /console on the intake.

    GET  /console/login, POST /console/login, POST /console/logout
    GET  /console/orders               search: PO number, partner, channel, state, date range
    GET  /console/orders/{id}          raw message, canonical order with each value's source,
                                       deliveries, acknowledgements, versions
    GET  /console/orders/{id}/timeline the order's events (an htmx fragment, a page without htmx)
    POST /console/orders/{id}/{action} approve | reject | edit | release | assign  (operator)
    GET  /console/exceptions           the exception queue (partner, reason, team)
    GET  /console/dead-letters         deliveries and documents that gave up: filters (connector,
                                       partner, error text, PO, since/until), each one's attempts
    POST /console/dead-letters/{action} replay | discard (with a reason) the chosen    (operator)
    POST /console/dead-letters/edit    correct one's order (PATH=VALUE lines), send it again
    POST /console/dead-letters/replay-matching  every dead letter the filter matches, after
                                       a confirmation page that says how many          (operator)
    GET  /console/reports              charts and tables of `gateway report` for a period
    GET  /console/reports/{name}.csv   one report as a spreadsheet-safe CSV download
    GET  /console/sources, /console/partners, /console/users (admin)
    GET  /console/static/...           CSS and htmx, from this package

Anonymous requests are redirected to the login page (an htmx request gets 401 with
HX-Redirect); a role that may not do something gets 403; a POST without the session's CSRF
token gets 403 and changes nothing. Actions answer with a redirect back to the page they
came from (POST/redirect/GET), carrying a short notice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from gateway.console import auth, reports, view
from gateway.errors import GatewayError
from gateway.intake.config import ConsoleConfig
from gateway.provenance import Sources, sources_of
from gateway.states import OrderState
from gateway.store import console_queries as cq
from gateway.store import console_users as users

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.store.dead_letters import DeadFilter

log = logging.getLogger(__name__)

__all__ = ["DEAD_LETTER_ACTIONS", "PREFIX", "DeadLetterAction", "mount_console"]

PREFIX = "/console"
COOKIE = "gw_console"
LOGIN_COOKIE = "gw_console_login"
MAX_FORM_BYTES = 64_000
_HEADERS = {
    # Everything comes from this server; nothing is framed; no inline script runs.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class DeadLetterAction:
    """Something a person can do to chosen dead letters: a button on the dead-letters page.

    The hook for edit / discard / replay-by-filter (built on another branch): register a
    DeadLetterAction in DEAD_LETTER_ACTIONS and its button and route appear, checked for the
    role and the CSRF token like every action. `run(gateway, outbox_ids, by, form)` returns a
    notice (`by` is "NAME (console)"; `form` the posted fields, e.g. a discard's `reason`);
    a GatewayError it raises is shown as "not done: ...".
    """

    name: str
    label: str
    role: str
    run: Callable[[Gateway, list[int], str, Mapping[str, str]], str]


def _replay(gateway: Gateway, ids: list[int], by: str, form: Mapping[str, str]) -> str:
    from gateway.store.dead_letters import replay

    n = replay(gateway.store, ids, by=by)
    log.info("console: %s replayed %d dead letter(s)", by, n)
    return f"{n} dead letter(s) queued again"


def _discard(gateway: Gateway, ids: list[int], by: str, form: Mapping[str, str]) -> str:
    from gateway.store.dead_letters import discard

    reason = form.get("reason", "").strip()
    if not reason:
        raise GatewayError("give a reason to discard dead letters: the order's history keeps it")
    n = discard(gateway.store, ids, reason=reason[:2000], by=by)
    log.info("console: %s discarded %d dead letter(s)", by, n)
    return f"{n} dead letter(s) discarded" + ("" if n == len(ids) else f" ({len(ids) - n} were not dead deliveries of orders)")


DEAD_LETTER_ACTIONS: dict[str, DeadLetterAction] = {
    "replay": DeadLetterAction("replay", "Replay", "operator", _replay),
    "discard": DeadLetterAction("discard", "Discard", "operator", _discard),
}


class _LoginRequired(Exception):
    pass


class _Denied(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class _Who:
    user: str
    role: str
    csrf: str
    token_hash: str


def mount_console(app: FastAPI, gateway: Gateway, config: ConsoleConfig) -> None:
    """Serve the console under /console on `app` (the intake)."""
    app.mount(PREFIX, console_app(gateway, config))


def console_app(gateway: Gateway, config: ConsoleConfig) -> FastAPI:
    """The console as its own ASGI application (mounted at /console by the intake)."""
    pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(
        loader=PackageLoader("gateway.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["when"] = view.when
    static = files("gateway.console") / "static"
    pages.mount("/static", StaticFiles(directory=str(static)), name="static")
    store = gateway.store
    lifetime = dt.timedelta(hours=config.session_hours)
    failures = _Failures(config.max_failed_logins)

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") or PREFIX

    def render(request: Request, name: str, who: _Who | None, status: int = 200, **values: Any) -> HTMLResponse:
        body = templates.get_template(name).render(
            root=root(request),
            who=who,
            may=lambda needed: who is not None and auth.may(who.role, needed),
            notice=request.query_params.get("notice", "")[:200],
            **values,
        )
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    def current(request: Request) -> _Who | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 100:
            return None
        digest = auth.token_hash(token)
        found = users.session_for(store, digest)
        return None if found is None else _Who(found.user, found.role, found.csrf_token, digest)

    async def who_is(request: Request, needed: str = "viewer") -> _Who:
        who = await run_in_threadpool(current, request)
        if who is None:
            raise _LoginRequired
        if not auth.may(who.role, needed):
            raise _Denied(f"{who.user} is a {who.role}; this needs the {needed} role")
        return who

    async def form_of(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise _Denied("the form is too large")
        parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=500)
        return {k: v[-1] for k, v in parsed.items()} | {f"{k}[]": "\x1f".join(v) for k, v in parsed.items()}

    async def checked(request: Request, needed: str) -> tuple[_Who, dict[str, str]]:
        """The session (with `needed`) and the form of a POST whose CSRF token matches."""
        who = await who_is(request, needed)
        form = await form_of(request)
        given = request.headers.get("x-csrf-token") or form.get("csrf_token")
        if not auth.same_token(given, who.csrf):
            log.warning("console: %s posted to %s without a valid CSRF token; refused", who.user, request.url.path)
            raise _Denied("the form's security token is missing or stale; reload the page and try again")
        return who, form

    def back(request: Request, path: str, notice: str) -> RedirectResponse:
        sep = "&" if "?" in path else "?"
        return RedirectResponse(f"{root(request)}{path}{sep}{urlencode({'notice': notice[:200]})}", status_code=303)

    # -- errors ----------------------------------------------------------------------------

    async def login_required(request: Request, exc: Exception) -> Response:
        target = f"{root(request)}/login?next={quote(_local(request.url.path, request.url.query), safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def denied(request: Request, exc: Exception) -> Response:
        message = exc.message if isinstance(exc, _Denied) else "not allowed"
        who = await run_in_threadpool(current, request)
        return render(request, "error.html", who, status=403, title="Not allowed", message=message)

    pages.add_exception_handler(_LoginRequired, login_required)
    pages.add_exception_handler(_Denied, denied)

    # -- logging in and out ----------------------------------------------------------------

    @pages.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        await who_is(request)
        return RedirectResponse(f"{root(request)}/orders", status_code=303)

    @pages.get("/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        token = auth.new_token()
        response = render(request, "login.html", None, csrf=token, next=_next(request.query_params.get("next")), error="")
        _cookie(response, LOGIN_COOKIE, token, root(request), config, max_age=1800)
        return response

    @pages.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await form_of(request)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        target = _next(form.get("next"))
        if not expected or not auth.same_token(form.get("csrf_token"), expected):
            raise _Denied("the login form's security token is missing or stale; reload the page")
        name, password = form.get("username", "").strip()[:100], form.get("password", "")[:1000]
        if failures.blocked(name):
            log.warning("console: login for %r refused: too many failed logins", name)
            again = auth.new_token()
            response = render(request, "login.html", None, status=429, csrf=again, next=target, error="Too many failed logins for this name; wait 15 minutes.")
            _cookie(response, LOGIN_COOKIE, again, root(request), config, max_age=1800)
            return response

        def check() -> str | None:
            user = users.find_user(store, name) if name else None
            ok, rehash = auth.verify_password(user.password_hash if user else None, password)
            if not ok or user is None:
                return None
            if rehash:
                users.update_password_hash(store, user.id, rehash)
            token = auth.new_token()
            users.open_session(store, user.id, auth.token_hash(token), auth.new_token(), lifetime)
            users.purge_sessions(store)
            return token

        token = await run_in_threadpool(check)
        if token is None:
            failures.add(name)
            log.warning("console: failed login for %r from %s", name, request.client.host if request.client else "?")
            again = auth.new_token()
            response = render(request, "login.html", None, status=401, csrf=again, next=target, error="Wrong name or password.")
            _cookie(response, LOGIN_COOKIE, again, root(request), config, max_age=1800)
            return response
        log.info("console: %s logged in", name)
        done = RedirectResponse(f"{root(request)}{target}", status_code=303)
        _cookie(done, COOKIE, token, root(request), config, max_age=int(lifetime.total_seconds()))
        done.delete_cookie(LOGIN_COOKIE, path=root(request))
        return done

    @pages.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        who, _ = await checked(request, "viewer")
        await run_in_threadpool(users.delete_session, store, who.token_hash)
        response = RedirectResponse(f"{root(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=root(request))
        return response

    # -- orders ----------------------------------------------------------------------------

    @pages.get("/orders", include_in_schema=False)
    async def orders(request: Request) -> Response:
        who = await who_is(request)
        q = request.query_params
        problems: list[str] = []
        state = q.get("state") or None
        if state and state not in {s.value for s in OrderState}:
            problems.append(f"unknown state {state!r}")
            state = None
        found = cq.OrderFilter(
            po_number=(q.get("po") or "").strip()[:100] or None,
            partner=(q.get("partner") or None),
            channel=(q.get("channel") or None),
            state=state,
            received_from=_date(q.get("from"), problems),
            received_to=_date(q.get("to"), problems),
        )
        page = max(1, min(_int(q.get("page"), 1), 10_000))

        def read() -> tuple[list[cq.OrderHit], int, dict[str, list[str]]]:
            hits, total = cq.search_orders(store, found, limit=config.page_size, offset=(page - 1) * config.page_size)
            return hits, total, cq.search_choices(store)

        hits, total, choices = await run_in_threadpool(read)
        params = {k: v for k, v in q.items() if k not in ("page", "notice") and v}
        return render(
            request, "orders.html", who, hits=hits, total=total, page=page, pages=max(1, -(-total // config.page_size)),
            query=params, query_string=urlencode(params), choices=choices, problems=problems,
        )

    @pages.get("/orders/{order_id}", include_in_schema=False)
    async def order(request: Request, order_id: str) -> Response:
        who = await who_is(request)
        from gateway.store.assignments import for_order as assignment_of
        from gateway.store.findings import for_order as findings_of
        from gateway.store.queries import order_detail

        def read() -> dict[str, Any]:
            detail = order_detail(store, order_id[:100])
            o = detail.order
            body = cq.message_body(store, o["message_id"])
            # stored, or read again from the message (X12, EDIFACT: gateway.provenance)
            sources = sources_of(o, detail.message, body, gateway.partners) if o.get("data") else Sources()
            values = [
                (path, value, view.source_of(sources.values, path))
                for path, value in view.leaves(o.get("data") or {})
                if value not in (None, [], {})
            ]
            raw, cut = view.raw_text(body)
            decided, findings = findings_of(store, o["id"])
            return {
                "o": o, "detail": detail, "values": values, "sources_note": sources.note, "raw": raw, "raw_cut": cut,
                "findings": findings, "decision": decided, "assignment": assignment_of(store, o["id"]),
            }

        try:
            values = await run_in_threadpool(read)
        except GatewayError as exc:
            return render(request, "error.html", who, status=404, title="No such order", message=str(exc))
        return render(request, "order.html", who, **values)

    @pages.get("/orders/{order_id}/timeline", include_in_schema=False)
    async def timeline(request: Request, order_id: str) -> Response:
        who = await who_is(request)
        from gateway.store.queries import order_detail

        try:
            detail = await run_in_threadpool(order_detail, store, order_id[:100])
        except GatewayError as exc:
            return render(request, "error.html", who, status=404, title="No such order", message=str(exc))
        name = "timeline.html" if request.headers.get("hx-request") else "timeline_page.html"
        return render(request, name, who, detail=detail, o=detail.order)

    @pages.post("/orders/{order_id}/{action}", include_in_schema=False)
    async def act(request: Request, order_id: str, action: str) -> Response:
        who, form = await checked(request, "operator")
        pipeline = gateway.pipeline
        came_from = _next(form.get("back")) if form.get("back") else f"/orders/{quote(order_id[:100], safe='')}"
        by = f"{who.user} (console)"

        def run() -> tuple[str, str]:
            oid = order_id[:100]
            if action == "approve":
                return pipeline.approve(oid, by=by), "approved: it goes to its connectors"
            if action == "reject":
                reason = form.get("reason", "").strip()
                if not reason:
                    raise GatewayError("give a reason to reject an order")
                return pipeline.reject(oid, reason[:2000], by=by), "rejected"
            if action == "release":
                row = pipeline.exceptions.release(oid, by=by, override=form.get("override") == "on")
                return row["id"], f"released: now {row['state']}"
            if action == "edit":
                from gateway.processing.exception_queue import parse_assignments

                items = [line.strip() for line in form.get("set", "").splitlines() if line.strip()]
                done = pipeline.exceptions.edit(oid, parse_assignments(items), by=by)
                return done.order_id, f"edited: version {done.version} is {done.state}"
            if action == "assign":
                to = form.get("to", "").strip()[:100]
                if not to:
                    raise GatewayError("name the person who takes the order")
                gateway.notifier.assign(oid, to=to, by=by, team=(form.get("team") or None))
                return oid, f"assigned to {to}"
            raise GatewayError(f"unknown action {action!r}")

        try:
            new_id, notice = await run_in_threadpool(run)
        except GatewayError as exc:
            return back(request, came_from, f"not done: {exc}")
        log.info("console: %s did %s on order %s", who.user, action, new_id)
        if action == "edit" and not form.get("back"):
            came_from = f"/orders/{quote(new_id, safe='')}"
        return back(request, came_from, notice)

    # -- queues ----------------------------------------------------------------------------

    @pages.get("/exceptions", include_in_schema=False)
    async def exceptions(request: Request) -> Response:
        who = await who_is(request)
        q = request.query_params
        filters = {k: (q.get(k) or "").strip()[:100] or None for k in ("partner", "reason", "team")}
        rows = await run_in_threadpool(
            lambda: gateway.pipeline.exceptions.waiting(limit=config.page_size * 4, **filters)
        )
        chosen = {k: v for k, v in filters.items() if v}
        here = "/exceptions" + (f"?{urlencode(chosen)}" if chosen else "")
        return render(request, "exceptions.html", who, rows=rows, filters={k: v or "" for k, v in filters.items()}, here=here)

    @pages.get("/dead-letters", include_in_schema=False)
    async def dead_letters(request: Request) -> Response:
        who = await who_is(request)
        from gateway.store.dead_letters import attempts_of, list_dead, list_dead_documents

        problems: list[str] = []
        which, chosen = _dead_filter(request.query_params, problems)

        def read() -> tuple[Any, Any, Any, list[str]]:
            rows = list_dead(store, which, limit=1000)
            # Documents have no partner, connector or PO of the kind filtered on: shown only unfiltered.
            docs = list_dead_documents(store, limit=1000) if which.is_empty() else []
            return rows, docs, attempts_of(store, [r.outbox_id for r in rows]), sorted({c.name for c in gateway.config.connectors})

        try:
            rows, docs, context, connectors = await run_in_threadpool(read)
        except GatewayError as exc:
            problems.append(str(exc))
            rows, docs, context, connectors = [], [], {}, []
        here = "/dead-letters" + (f"?{urlencode(chosen)}" if chosen else "")
        return render(
            request, "dead_letters.html", who, rows=rows, docs=docs, context=context, filters=chosen, here=here,
            connectors=connectors, problems=problems, actions=list(DEAD_LETTER_ACTIONS.values()),
        )

    @pages.post("/dead-letters/edit", include_in_schema=False)
    async def dead_letter_edit(request: Request) -> Response:
        who, form = await checked(request, "operator")
        came_from = _dead_back(form.get("back"))
        by = f"{who.user} (console)"
        from gateway.processing.dead_letters import DeadLetters
        from gateway.processing.exception_queue import parse_assignments

        def run() -> str:
            dead_id = form.get("id", "")
            if not dead_id.isdigit():
                raise GatewayError("choose the dead letter to edit")
            items = [line.strip() for line in form.get("set", "").splitlines() if line.strip()]
            if not items:
                raise GatewayError("give at least one PATH=VALUE line, e.g. lines[1].quantity=5")
            done = DeadLetters(store, gateway.pipeline.exceptions).edit(int(dead_id), parse_assignments(items[:200]), by=by)
            if done.state == OrderState.VALIDATED.value:
                return f"edited: order {done.order_id[:8]} version {done.version} is queued again where it died"
            return f"edited: order {done.order_id[:8]} version {done.version} is {done.state}: {done.reason}"

        try:
            notice = await run_in_threadpool(run)
        except GatewayError as exc:
            return back(request, came_from, f"not done: {exc}")
        log.info("console: %s edited dead letter %s", who.user, form.get("id"))
        return back(request, came_from, notice)

    @pages.post("/dead-letters/replay-matching", include_in_schema=False)
    async def dead_letter_replay_matching(request: Request) -> Response:
        who, form = await checked(request, "operator")
        from gateway.store.dead_letters import list_dead, replay

        problems: list[str] = []
        which, chosen = _dead_filter(form, problems)
        here = "/dead-letters" + (f"?{urlencode(chosen)}" if chosen else "")
        if problems or which.is_empty():
            return back(request, here, "not done: " + ("; ".join(problems) or "give a filter first: replay all matching needs one"))
        by = f"{who.user} (console)"
        expected = form.get("expected", "")

        def run() -> tuple[list[Any], int | None]:
            rows = list_dead(store, which)
            if form.get("confirm") == "yes" and expected == str(len(rows)):
                return rows, replay(store, [r.outbox_id for r in rows], by=by)
            return rows, None

        try:
            rows, queued = await run_in_threadpool(run)
        except GatewayError as exc:
            return back(request, here, f"not done: {exc}")
        if queued is not None:
            log.info("console: %s replayed %d dead letter(s) matching %s", who.user, queued, chosen)
            return back(request, here, f"{queued} dead letter(s) matching the filter queued again")
        changed = bool(expected) and expected != str(len(rows))
        return render(request, "dead_letters_confirm.html", who, rows=rows, filters=chosen, here=here, changed=changed)

    @pages.post("/dead-letters/{action}", include_in_schema=False)
    async def dead_letter_action(request: Request, action: str) -> Response:
        found = DEAD_LETTER_ACTIONS.get(action)
        if found is None:
            await who_is(request)
            raise _Denied(f"no dead-letter action {action!r}")
        who, form = await checked(request, found.role)
        came_from = _dead_back(form.get("back"))
        ids = sorted({int(i) for i in form.get("id[]", "").split("\x1f") if i.isdigit()})
        if not ids:
            return back(request, came_from, "choose at least one dead letter")
        try:
            notice = await run_in_threadpool(found.run, gateway, ids, f"{who.user} (console)", form)
        except GatewayError as exc:
            return back(request, came_from, f"not done: {exc}")
        return back(request, came_from, notice)

    # -- reports ---------------------------------------------------------------------------

    @pages.get("/reports", include_in_schema=False)
    async def report_page(request: Request) -> Response:
        who = await who_is(request)
        q = request.query_params
        problems: list[str] = []
        period = reports.Period.parse(q, dt.datetime.now(dt.UTC).date(), problems)
        partner = (q.get("partner") or "").strip()[:100] or None
        found, partners = await run_in_threadpool(reports.sections, store, period, partner)
        chosen = {"since": period.since.isoformat(), "until": period.until.isoformat()}
        return render(
            request, "reports.html", who, sections=found, period=period, partner=partner or "", partners=partners,
            problems=problems, csv_query=urlencode(chosen | ({"partner": partner} if partner else {})),
        )

    @pages.get("/reports/{name}.csv", include_in_schema=False)
    async def report_csv(request: Request, name: str) -> Response:
        who = await who_is(request)
        if name not in reports.REPORTS:
            return render(request, "error.html", who, status=404, title="No such report", message=f"no report {name[:40]!r}")
        problems: list[str] = []
        period = reports.Period.parse(request.query_params, dt.datetime.now(dt.UTC).date(), problems)
        partner = (request.query_params.get("partner") or "").strip()[:100] or None
        text = await run_in_threadpool(reports.csv_text, store, name, period, partner)
        filename = f"{name}-{period.since.isoformat()}-{period.until.isoformat()}.csv"  # a known name and two dates only
        headers = _HEADERS | {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)

    # -- sources, partners, users ----------------------------------------------------------

    @pages.get("/sources", include_in_schema=False)
    async def sources(request: Request) -> Response:
        who = await who_is(request)
        states = await run_in_threadpool(cq.source_states, store)
        configured = {s.name: s.type for s in gateway.config.sources}
        return render(request, "sources.html", who, states=states, configured=configured)

    @pages.get("/partners", include_in_schema=False)
    async def partners(request: Request) -> Response:
        who = await who_is(request)
        names = [p.name for p in gateway.config.partners]
        states = await run_in_threadpool(cq.partner_states, store, names)
        return render(request, "partners.html", who, states=states)

    @pages.get("/users", include_in_schema=False)
    async def user_list(request: Request) -> Response:
        who = await who_is(request, "admin")
        rows = await run_in_threadpool(users.list_users, store)
        return render(request, "users.html", who, rows=rows)

    return pages


class _Failures:
    """Failed logins per user name in the last 15 minutes (in memory, per process)."""

    WINDOW = 900.0
    MAX_NAMES = 10_000

    def __init__(self, limit: int):
        self.limit = limit
        self.seen: dict[str, list[float]] = {}

    def _recent(self, name: str) -> list[float]:
        now = time.monotonic()
        kept = [at for at in self.seen.get(name.lower(), []) if now - at < self.WINDOW]
        if kept:
            self.seen[name.lower()] = kept
        else:
            self.seen.pop(name.lower(), None)
        return kept

    def blocked(self, name: str) -> bool:
        return len(self._recent(name)) >= self.limit

    def add(self, name: str) -> None:
        if len(self.seen) >= self.MAX_NAMES:
            self.seen.pop(next(iter(self.seen)))
        self.seen.setdefault(name.lower(), []).append(time.monotonic())


def _cookie(response: Response, name: str, value: str, path: str, config: ConsoleConfig, *, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax", secure=config.secure_cookie)


def _local(path: str, query: str) -> str:
    """The console-relative part of a URL (what follows /console), for ?next=."""
    rest = path.split(PREFIX, 1)[1] if PREFIX in path else "/orders"
    return rest + (f"?{query}" if query else "")


def _next(value: str | None) -> str:
    """A page of the console to go to after logging in: only ever a path inside it."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value or "\r" in value:
        return "/orders"
    return value[:500]


def _dead_back(value: str | None) -> str:
    """Where a dead-letter action returns: the dead-letters page with the filter it came from."""
    target = _next(value) if value else "/dead-letters"
    return target if target.startswith("/dead-letters") else "/dead-letters"


def _moment(value: str | None, name: str, problems: list[str], *, end: bool = False) -> dt.datetime | None:
    """A since/until of the dead-letters filter as aware UTC: a date is its day's start (for
    `end`, the next day's, so the day is included); a time without a zone is UTC."""
    if not value or not value.strip():
        return None
    text = value.strip()[:40]
    try:
        if len(text) == 10:
            start = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end else start
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: {text[:20]!r} is not a date (YYYY-MM-DD) or an ISO time")
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


DEAD_FILTERS = ("connector", "partner", "error", "po", "since", "until")


def _dead_filter(given: Mapping[str, str], problems: list[str]) -> tuple[DeadFilter, dict[str, str]]:
    """The dead-letters filter a query or form asks for, and its non-empty fields (for links)."""
    from gateway.store.dead_letters import DeadFilter

    chosen = {k: given.get(k, "").strip()[: 200 if k == "error" else 100] for k in DEAD_FILTERS}
    chosen = {k: v for k, v in chosen.items() if v}
    which = DeadFilter(
        connector=chosen.get("connector"),
        partner=chosen.get("partner"),
        error=chosen.get("error"),
        since=_moment(chosen.get("since"), "since", problems),
        until=_moment(chosen.get("until"), "until", problems, end=True),
        po=chosen.get("po"),
    )
    return which, chosen


def _date(value: str | None, problems: list[str]) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{value[:20]!r} is not a date (YYYY-MM-DD)")
        return None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default

