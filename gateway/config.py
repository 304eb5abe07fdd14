"""Typed configuration: YAML validated once at start-up, every problem reported together.

Secrets never live in the file: any string may be a reference ``${env:NAME}`` (or
``${env:NAME:-default}``), resolved when the file is loaded, and fields typed as secrets
accept nothing else. Unknown keys are refused with a "did you mean". Each problem names its
place as ``file:line: dotted.path``.

Relative paths are resolved against ``home``, itself relative to the configuration file's
folder (default: that folder).
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)

from connectors.shopstock.config import ShopStockConfig
from connectors.sources.sftp.config import SftpChannelConfig
from gateway import plugins
from gateway.errors import ConfigError
from gateway.intake.config import IntakeConfig
from gateway.plugins import SourceConfigBase, TargetConfigBase
from gateway.retry import RetryPolicy
from gateway.routing import RoutingConfig
from gateway.rules.base import RuleConfigBase
from gateway.rules.config import MasterDataConfig
from gateway.smtp import SmtpConfig
from gateway.teams import AlertsConfig, ExceptionsConfig

__all__ = [
    "DispatchConfig",
    "GatewayConfig",
    "PartnerConfig",
    "StoreConfig",
    "config_schema",
    "load_config",
]

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "sqlite:///var/gateway.db",
        description="SQLAlchemy URL: sqlite:///path (embedded, one node) or postgresql+psycopg://... (several nodes).",
    )
    migrate: bool = Field(
        True,
        description="Bring the schema up to date when the gateway opens the store; false: only `gateway db upgrade` does, and a store behind refuses to start.",
    )


class RetentionConfig(BaseModel):
    """How long raw message bodies are kept (`gateway purge`)."""

    model_config = ConfigDict(extra="forbid")

    raw_body_days: PositiveInt | None = Field(
        None,
        description="Raw bodies of messages whose orders are all final are removed this many days after receipt by `gateway purge`; unset: kept for ever.",
    )


class AdminConfig(BaseModel):
    """The admin port `gateway run` always serves: /healthz, /readyz and /metrics."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address the admin port listens on (0.0.0.0 in a container).")
    port: int = Field(9464, ge=0, le=65535, description="TCP port of /healthz, /readyz and /metrics (0: any free port, logged at start).")


class DispatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_seconds: PositiveFloat = Field(1.0, description="Seconds between two looks for due deliveries.")
    lease_seconds: PositiveFloat = Field(
        120.0, description="A claimed delivery not finished within this time is taken up again (after a crash)."
    )
    batch: PositiveInt = Field(500, description="Most deliveries claimed in one pass (a window at a time); passes follow each other while rows are due.")
    workers: PositiveInt = Field(
        8, description="Deliveries sent in parallel (threads). A send mostly waits for the target, so more threads hide its latency; cap one connector with connector_workers or rate_per_second."
    )
    ack_retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retry policy of acknowledgements and confirmation e-mails (then a dead letter)."
    )
    connector_workers: PositiveInt | None = Field(
        None, description="Most deliveries sent to one connector at once (default: workers)."
    )


class StockReportConfig(BaseModel):
    """A stock report (X12 846 / EDIFACT INVRPT) sent to a partner on a schedule."""

    model_config = ConfigDict(extra="forbid")

    every_minutes: PositiveFloat = Field(description="Send one every this many minutes (`gateway run`); `gateway send-stock-report` sends one now.")
    skus: list[str] | None = Field(None, description="Only these SKUs (default: every SKU in the stock master data).")


class AckConfig(BaseModel):
    """Which acknowledgements a partner gets, and where they go."""

    model_config = ConfigDict(extra="forbid")

    functional: bool = Field(True, description="Send 997 (X12 4010), 999 (X12 5010) or CONTRL (EDIFACT) for every interchange.")
    ta1: Literal["requested", "always", "never"] = Field(
        "requested", description="X12 TA1: when ISA14 asks for one (and on envelope errors), always, or never."
    )
    order_response: bool = Field(False, description="Send an 855 (X12) or ORDRSP (EDIFACT) after validation.")
    ship_notice: bool = Field(False, description="Send an 856 (X12) or DESADV (EDIFACT) when a shipment of its order is recorded (`gateway ship`).")
    invoice: bool = Field(False, description="Send an 810 (X12) or INVOIC (EDIFACT) when an invoice of its order is recorded (`gateway invoice`).")
    stock_report: StockReportConfig | None = Field(None, description="Send an 846 (X12) or INVRPT (EDIFACT) with the stock available, on a schedule.")
    shipping_email: bool = Field(
        False, description="E-mail the buyer (the order's customer e-mail) a shipping confirmation with the tracking numbers (needs smtp:)."
    )
    outbound: Path | None = Field(None, description="Folder the partner's acknowledgements are written to (its outbound mailbox).")
    sftp: SftpChannelConfig | None = Field(None, description="Upload the partner's acknowledgements to this SFTP folder instead.")
    email: str | None = Field(
        None,
        pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
        description="E-mail the partner's acknowledgements to this address instead, each as an attachment (needs smtp:); for partners who send their EDI by e-mail.",
    )
    as2: bool = Field(False, description="Send the partner's acknowledgements by AS2 instead, to the url of its intake.as2.partners entry (each MDN verified and kept).")
    x12_id: str | None = Field(None, description="Our ISA06 as 'QQ:ID' on outbound interchanges (default: the inbound ISA07:ISA08).")
    edifact_id: str | None = Field(None, description="Our UNB sender as 'ID:QQ' (default: the inbound UNB recipient).")
    expect_within_minutes: PositiveFloat | None = Field(
        None,
        description="The partner acknowledges (997/999/CONTRL) the documents we send it within this many minutes; one sent and "
        "not acknowledged by then is overdue (`gateway documents --overdue`, gateway_documents_overdue, a log warning).",
    )


class X12ProfileConfig(BaseModel):
    """How strictly a partner's X12 envelopes are read."""

    model_config = ConfigDict(extra="forbid")

    lenient_envelope: bool = Field(
        False,
        description="Repair what this partner's envelopes get wrong where it takes a guess: re-pad an ISA whose fields "
        "are not fixed-width, unwrap segments broken over lines (files wrapped at 80 columns by a VAN). Off: such files are "
        "quarantined (X12_ISA_LENGTH, X12_WRAPPED).",
    )


class PartnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Short name of the trading partner (lower case), used in mappings/<name>/ and reports.")
    x12_ids: list[str] = Field(default_factory=list, description="ISA06 sender ids (optionally 'QQ:ID' with the ISA05 qualifier).")
    edifact_ids: list[str] = Field(default_factory=list, description="UNB sender ids (optionally 'QQ:ID' with the UNB 0007 qualifier).")
    cxml_ids: list[str] = Field(default_factory=list, description="cXML Sender credentials as 'domain:identity' (e.g. 'NetworkID:AN01000000001').")
    ubl_ids: list[str] = Field(default_factory=list, description="UBL buyer endpoint ids as 'schemeID:ID' (e.g. '0088:7300010000001').")
    email_senders: list[str] = Field(default_factory=list, description="E-mail senders accepted for this partner: addresses, or '@domain' for a whole domain.")
    email_require_auth: bool = Field(False, description="Accept its e-mail only with dkim=pass or dmarc=pass (aligned) from our own mail server's Authentication-Results.")
    email_confirmation: bool = Field(True, description="Reply to this partner's order e-mails with a summary of what was understood (needs smtp:).")
    connectors: list[str] | None = Field(None, description="Connectors this partner's orders go to (default: all).")
    test_connectors: list[str] = Field(
        default_factory=list,
        description="Connectors this partner's test interchanges (X12 ISA15 T, EDIFACT UNB test indicator 1) go to; "
        "without any, such orders are held (TEST_INTERCHANGE). Production orders never go to them.",
    )
    acks: AckConfig = Field(default_factory=AckConfig, description="Acknowledgements sent back to this partner.")
    x12: X12ProfileConfig = Field(default_factory=X12ProfileConfig, description="How this partner's X12 envelopes are read.")


class ProcessingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_seconds: PositiveFloat = Field(1.0, description="Seconds between two looks for stored but unprocessed messages.")
    max_attempts: PositiveInt = Field(
        3, description="A message whose processing crashed the gateway this many times is quarantined (CRASH_LOOP)."
    )
    batch_orders: PositiveInt = Field(500, description="Orders written per database commit while processing a large file.")
    lease_seconds: PositiveFloat = Field(
        120.0, description="A message whose processing shows no progress this long is taken up again (after a crash)."
    )
    authserv_id: str | None = Field(
        None, description="The authserv-id our own mail server writes in Authentication-Results (only that header is trusted)."
    )
    decide_workers: int = Field(
        1,
        ge=0,
        le=16,
        description="Processes that apply the rules beside the reading of a large message (256 KB or more); "
        "0: always in the reading process.",
    )
    provenance: bool = Field(
        True,
        description="Keep, for each order, where each field came from: stored with orders from e-mail, files and carts; "
        "X12 and EDIFACT orders' sources are read again from their kept message when asked (README \"Where each value came from\").",
    )


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path = Field(Path("."), description="Folder that relative paths are resolved against (relative to this file).")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where messages, orders and history are kept.")
    sources: list[SourceConfigBase] = Field(default_factory=list, description="Where orders come from.")
    connectors: list[TargetConfigBase] = Field(default_factory=list, description="Where orders go.")
    partners: list[PartnerConfig] = Field(default_factory=list, description="Known trading partners.")
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig, description="Turning stored messages into orders.")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="Sending orders to connectors.")
    intake: IntakeConfig | None = Field(None, description="The HTTP intake service for cart webhooks (started by `gateway run`).")
    smtp: SmtpConfig | None = Field(None, description="Outgoing mail server for order confirmation replies to partners' order e-mails.")
    exceptions: ExceptionsConfig = Field(default_factory=ExceptionsConfig, description="The exception queue: teams that handle waiting orders and how they are told.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Alerts to the teams: dead letters, silent sources, failing polls; see README \"Alerts\".")
    rules: list[RuleConfigBase] = Field(
        default_factory=list, description="Rules every new order goes through (accept, hold for a person, reject); see README \"Rules\"."
    )
    masterdata: MasterDataConfig | None = Field(None, description="Master data the rules read (items, prices, stock, accounts).")
    routing: RoutingConfig | None = Field(None, description="Which warehouse ships an accepted order and by which carrier; needs a stock rule (README \"Routing\").")
    mappings: Path | None = Field(None, description="Folder of the partner mapping folders (<partner>/partner.yaml, email.yaml, ...); default: the mappings/ folder shipped with the gateway.")
    stock_push: list[ShopStockConfig] = Field(
        default_factory=list, description="Shops told our available stock (Shopify / WooCommerce), README \"Stock levels to the shops\"."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text: one readable line per event; json: one JSON object per line (GATEWAY_LOG_FORMAT overrides)."
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="How long raw message bodies are kept (`gateway purge`).")
    admin: AdminConfig | None = Field(
        None, description="The admin port `gateway run` serves whether or not an intake is configured: /healthz, /readyz, /metrics."
    )

    # Each item is validated by the model of its own type, found in the plugin registry: a
    # type an installed package adds is configured exactly like a built-in one.
    @field_validator("sources", mode="before")
    @classmethod
    def _source_types(cls, items: Any) -> Any:
        return plugins.validate_configs("source", items) if isinstance(items, list) else items

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_types(cls, items: Any) -> Any:
        from gateway.rules.registry import validate_rule_configs

        return validate_rule_configs(items) if isinstance(items, list) else items

    @field_validator("connectors", mode="before")
    @classmethod
    def _connector_types(cls, items: Any) -> Any:
        return plugins.validate_configs("target", items) if isinstance(items, list) else items

    def source(self, name: str) -> SourceConfigBase:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def connector(self, name: str) -> TargetConfigBase:
        for c in self.connectors:
            if c.name == name:
                return c
        raise KeyError(name)

    def steps(self) -> dict[str, tuple[str, ...]]:
        """connector -> every connector it comes after (its `after:`, and theirs, transitively),
        for the connectors that wait on another; what `gateway.store.outbox.claim_due` takes."""
        direct = {c.name: [a for a in c.after if a != c.name] for c in self.connectors}
        out: dict[str, tuple[str, ...]] = {}
        for name, first in direct.items():
            seen: set[str] = set()
            todo = list(first)
            while todo:
                step = todo.pop()
                if step not in seen and step != name:
                    seen.add(step)
                    todo.extend(direct.get(step, []))
            if seen:
                out[name] = tuple(sorted(seen))
        return out


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file, with every known source and connector type."""

    def union(kind: plugins.Kind) -> Any:
        models = tuple(plugins.config_model(kind, name) for name in sorted(plugins.known_types(kind)))
        return list[Annotated[Union[models], Field(discriminator="type")]]  # type: ignore[valid-type]  # noqa: UP007

    from gateway.rules.registry import known_types as rule_types
    from gateway.rules.registry import rule_class

    rule_models = tuple(rule_class(name).config_model for name in sorted(rule_types()))
    rules = list[Annotated[Union[rule_models], Field(discriminator="type")]]  # type: ignore[valid-type]  # noqa: UP007
    full = create_model(
        "GatewayConfig",
        __base__=GatewayConfig,
        sources=(union("source"), Field(default_factory=list, description="Where orders come from.")),
        connectors=(union("target"), Field(default_factory=list, description="Where orders go.")),
        rules=(rules, Field(default_factory=list, description=GatewayConfig.model_fields["rules"].description)),
    )
    return full.model_json_schema()


def default_config(home: Path) -> GatewayConfig:
    """The embedded defaults: SQLite, a local drop folder, a file outbox."""
    cfg = GatewayConfig.model_validate(
        {
            "sources": [{"type": "folder", "name": "inbox", "path": "var/inbox", "poll_seconds": 1}],
            "connectors": [{"type": "file", "name": "outbox", "path": "var/outbox"}],
        }
    )
    return _resolve_paths(cfg, home)


def load_config(
    path: str | os.PathLike[str], env: typing.Mapping[str, str] | None = None, *, secrets_optional: bool = False
) -> GatewayConfig:
    """Load, resolve environment references, validate. Raises ConfigError listing every problem.

    `secrets_optional`: an unset ``${env:NAME}`` reads as a placeholder instead of being a
    problem, for commands that use no store, source or connector (`gateway translate`).
    """
    path = Path(path)
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the configuration must be a mapping of keys to values")
    lines = _line_index(node)
    problems: list[str] = []
    data = _resolve_env(data, env, (), problems, lines, path, secrets_optional)
    _check_secret_literals(data, (), problems, lines, path)
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(err, data, lines, path) for err in exc.errors())
        cfg = None
    if cfg is not None:
        cfg = _resolve_paths(cfg, (path.parent / cfg.home).resolve())
        problems.extend(_check_semantics(cfg, lines, path))
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


# -- helpers ---------------------------------------------------------------------------------


def _resolve_paths(cfg: GatewayConfig, home: Path) -> GatewayConfig:
    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (home / p)

    cfg.home = home
    cfg.mappings = fix(cfg.mappings)
    if cfg.masterdata is not None:
        cfg.masterdata.folder = fix(cfg.masterdata.folder)
    for s in cfg.sources:
        s.resolve_paths(fix)
    for p in cfg.partners:
        p.acks.outbound = fix(p.acks.outbound)
        if p.acks.sftp is not None:
            p.acks.sftp.known_hosts = fix(p.acks.sftp.known_hosts)
            p.acks.sftp.private_key_file = fix(p.acks.sftp.private_key_file)
    for c in cfg.connectors:
        c.resolve_paths(fix)
    if cfg.intake is not None and cfg.intake.as2 is not None:
        cfg.intake.as2.resolve_paths(fix)
    url = cfg.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            cfg.store.url = f"sqlite:///{home / rel}"
    return cfg


def _line_index(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    index: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, loc: tuple[Any, ...]) -> None:
        index[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                index[(*loc, k.value)] = k.start_mark.line + 1
                walk(v, (*loc, k.value))
                index[(*loc, k.value)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    if node is not None:
        walk(node, ())
    return index


def _where(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int], path: Path) -> str:
    probe = tuple(loc)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe, 1)
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return f"{path}:{line}: {dotted or '(top level)'}"


def _resolve_env(
    value: Any,
    env: typing.Mapping[str, str],
    loc: tuple[Any, ...],
    problems: list[str],
    lines: dict[tuple[Any, ...], int],
    path: Path,
    optional: bool = False,
) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env(v, env, (*loc, k), problems, lines, path, optional) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, env, (*loc, i), problems, lines, path, optional) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            if optional:
                return f"${{env:{name}}} is not set"
            problems.append(
                f"{_where(loc, lines, path)}: environment variable {name} is not set "
                f"(export {name}=... before starting the gateway)"
            )
            return ""

        resolved = ENV_REF.sub(sub, value)
        return _EnvValue(resolved)
    return value


class _EnvValue(str):
    """A string that came from an environment reference (allowed in secret fields)."""

    __slots__ = ()


def _check_secret_literals(
    data: Any, loc: tuple[Any, ...], problems: list[str], lines: dict[tuple[Any, ...], int], path: Path
) -> None:
    """Secret-typed fields must come from the environment, never be written in the file."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "secrets" and isinstance(v, list):
                for i, item in enumerate(v):
                    if not isinstance(item, _EnvValue):
                        problems.append(
                            f"{_where((*loc, k, i), lines, path)}: secrets may not be written in the configuration; "
                            "use a reference such as ${env:SHOPIFY_WEBHOOK_SECRET}"
                        )
            elif k in ("password", "passphrase", "webhook_secret", "access_token", "consumer_key", "consumer_secret", "oauth2_token", "api_key", "api_secret") and v is not None and not isinstance(v, _EnvValue):
                problems.append(
                    f"{_where((*loc, k), lines, path)}: secrets may not be written in the configuration; "
                    f"use a reference such as ${{env:{_env_name(k)}}}"
                )
            elif k == "secret_headers" and isinstance(v, dict):
                for hk, hv in v.items():
                    if not isinstance(hv, _EnvValue):
                        problems.append(
                            f"{_where((*loc, k, hk), lines, path)}: secrets may not be written in the "
                            f"configuration; use a reference such as ${{env:{_env_name(hk)}}}"
                        )
            elif k == "headers" and isinstance(v, dict):
                for hk, hv in v.items():
                    if re.search(r"auth|token|key|secret|password", str(hk), re.I) and not isinstance(hv, _EnvValue):
                        problems.append(
                            f"{_where((*loc, k, hk), lines, path)}: header {hk!r} looks like a credential; "
                            f"move it to secret_headers with a reference such as ${{env:{_env_name(hk)}}}"
                        )
            else:
                _check_secret_literals(v, (*loc, k), problems, lines, path)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_secret_literals(v, (*loc, i), problems, lines, path)


def _env_name(header: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", str(header).upper()).strip("_") or "SECRET"


def _describe(err: Any, data: Any, lines: dict[tuple[Any, ...], int], path: Path) -> str:
    loc = tuple(err["loc"])
    # Drop the discriminator tag pydantic inserts for tagged unions (sources[0].folder.path).
    clean: list[Any] = []
    cursor: Any = data
    for part in loc:
        if isinstance(cursor, dict) and part not in cursor and isinstance(part, str) and cursor.get("type") == part:
            continue
        clean.append(part)
        cursor = cursor.get(part) if isinstance(cursor, dict) else (
            cursor[part] if isinstance(cursor, list) and isinstance(part, int) and part < len(cursor) else None
        )
    where = _where(tuple(clean), lines, path)
    if err["type"] == "extra_forbidden":
        key = clean[-1]
        allowed = _allowed_keys(tuple(clean[:-1]), data)
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else (f"; known keys: {', '.join(sorted(allowed))}" if allowed else "")
        return f"{where}: unknown key {key!r}{suggestion}"
    if err["type"] == "union_tag_invalid":
        return f"{where}: {err['msg']}"
    return f"{where}: {err['msg']}"


def _allowed_keys(loc: tuple[Any, ...], data: Any) -> list[str]:
    model: Any = GatewayConfig
    cursor: Any = data
    annotation: Any = None
    for part in loc:
        cursor = cursor[part] if isinstance(cursor, (dict, list)) and _has(cursor, part) else None
        if isinstance(part, int):
            if annotation is not None:
                model = _model_of(typing.get_args(annotation)[-1] if typing.get_origin(annotation) in (list, dict) else annotation, cursor)
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        annotation = field.annotation
        model = _model_of(annotation, cursor)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(part, int) and 0 <= part < len(container)


def _model_of(annotation: Any, value: Any) -> Any:
    """The pydantic model inside an annotation (list[...], Optional, tagged union)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_of(typing.get_args(annotation)[0], value)
    if origin in (list, dict):
        item = value[0] if isinstance(value, list) and value else value
        return _model_of(typing.get_args(annotation)[-1], item)
    if origin in (Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(value, dict):
            for c in candidates:
                tag = c.model_fields.get("type")
                if tag is not None and value.get("type") == tag.default:
                    return c
        return candidates[0] if candidates else None
    if annotation is RuleConfigBase and isinstance(value, dict) and isinstance(value.get("type"), str):
        from gateway.rules.registry import rule_class

        try:
            return rule_class(value["type"]).config_model
        except ConfigError:
            return RuleConfigBase
    for kind, base in (("source", SourceConfigBase), ("target", TargetConfigBase)):
        if annotation is base and isinstance(value, dict) and isinstance(value.get("type"), str):
            try:
                return plugins.config_model(kind, value["type"])  # type: ignore[arg-type]
            except ConfigError:
                return base
    return annotation


def _check_semantics(cfg: GatewayConfig, lines: dict[tuple[Any, ...], int], path: Path) -> list[str]:
    problems = []
    named: tuple[tuple[str, list[Any]], ...] = (("sources", cfg.sources), ("connectors", cfg.connectors), ("partners", cfg.partners))
    for kind, items in named:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.name in seen:
                problems.append(f"{_where((kind, i, 'name'), lines, path)}: name {item.name!r} is used twice")
            seen.add(item.name)
    from gateway.partners import load_partner_mapping

    for i, p in enumerate(cfg.partners):
        try:
            load_partner_mapping(p.name, cfg.mappings / p.name if cfg.mappings else None)
        except ConfigError as exc:
            problems.extend(f"{_where(('partners', i, 'name'), lines, path)}: {msg}" for msg in exc.problems)
    for i, p in enumerate(cfg.partners):
        if p.acks.email is not None and cfg.smtp is None:
            problems.append(f"{_where(('partners', i, 'acks', 'email'), lines, path)}: acknowledgements by e-mail need an smtp: section (the mail server to send them through)")
    names = {c.name for c in cfg.connectors}
    owners: list[tuple[tuple[str, ...], int, list[str] | None]] = [
        (("partners",), i, p.connectors) for i, p in enumerate(cfg.partners)
    ]
    if cfg.intake is not None:
        owners += [(("intake", "stores"), i, s.connectors) for i, s in enumerate(cfg.intake.stores)]
    for prefix, i, wanted_list in owners:
        for j, wanted in enumerate(wanted_list or []):
            if wanted not in names:
                hint = difflib.get_close_matches(wanted, sorted(names), n=1)
                problems.append(
                    f"{_where((*prefix, i, 'connectors', j), lines, path)}: no connector named {wanted!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                )
    for i, p in enumerate(cfg.partners):
        for j, wanted in enumerate(p.test_connectors):
            where = _where(("partners", i, "test_connectors", j), lines, path)
            if wanted not in names:
                problems.append(f"{where}: no connector named {wanted!r}")
            elif wanted in (p.connectors or []):
                problems.append(f"{where}: {wanted!r} is also one of this partner's production connectors; test orders must never reach production")
    problems += _check_steps(cfg, names, lines, path)
    for i, c in enumerate(cfg.connectors):
        if c.payload is not None:
            from gateway.payload import PayloadError, load_payload

            target = c.payload if c.payload.is_absolute() else (path.parent / cfg.home / c.payload)
            try:
                load_payload(target)
            except PayloadError as exc:
                problems.append(f"{_where(('connectors', i, 'payload'), lines, path)}: {exc}")
    if cfg.masterdata is not None and cfg.masterdata.folder is not None and not cfg.masterdata.folder.is_dir():
        problems.append(f"{_where(('masterdata', 'folder'), lines, path)}: folder {cfg.masterdata.folder} does not exist")
    names_seen: set[str] = set()
    for i, rule in enumerate(cfg.rules):
        if rule.label in names_seen:
            problems.append(f"{_where(('rules', i, 'name'), lines, path)}: rule name {rule.label!r} is used twice; give each rule of the same type a name")
        names_seen.add(rule.label)
    watched = {s.name for s in cfg.sources} | {f"{s.platform}:{s.name}" for s in (cfg.intake.stores if cfg.intake else [])}
    for name in cfg.alerts.sources:
        if name not in watched:
            hint = difflib.get_close_matches(name, sorted(watched), n=1)
            problems.append(
                f"{_where(('alerts', 'sources', name), lines, path)}: no source or intake shop (<platform>:<name>) is called {name!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
            )
    if cfg.dispatch.lease_seconds <= max((c.call_seconds() for c in cfg.connectors), default=0):
        problems.append(
            f"{_where(('dispatch', 'lease_seconds'), lines, path)}: must be longer than the slowest connector's "
            "connect + read timeout, or a slow call is taken up twice"
        )
    return problems


def _check_steps(cfg: GatewayConfig, names: set[str], lines: dict[tuple[Any, ...], int], path: Path) -> list[str]:
    """Each `after:` names another configured connector, and no chain of them comes back to
    where it started (a cycle would hold its orders forever)."""
    problems = []
    for i, c in enumerate(cfg.connectors):
        for j, wanted in enumerate(c.after):
            where = _where(("connectors", i, "after", j), lines, path)
            if wanted == c.name:
                problems.append(f"{where}: connector {c.name!r} cannot come after itself")
            elif wanted not in names:
                hint = difflib.get_close_matches(wanted, sorted(names), n=1)
                problems.append(f"{where}: no connector named {wanted!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    after = {c.name: [a for a in c.after if a in names and a != c.name] for c in cfg.connectors}
    reported: set[frozenset[str]] = set()
    for i, c in enumerate(cfg.connectors):
        cycle = _cycle_from(c.name, after)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            chain = " -> ".join([*cycle, cycle[0]])
            problems.append(f"{_where(('connectors', i, 'after'), lines, path)}: steps wait on each other in a circle ({chain}); none of them would ever be sent")
    return problems


def _cycle_from(start: str, after: dict[str, list[str]]) -> list[str]:
    """The connectors of a cycle of `after:` that runs through `start` ([] if none)."""
    path: list[str] = []

    def walk(name: str) -> bool:
        if name == start and path:
            return True
        if name in path:
            return False
        path.append(name)
        if any(walk(n) for n in after.get(name, [])):
            return True
        path.pop()
        return False

    return path if walk(start) else []


# Values typed SecretStr print as '**********'; re-export for connectors.
Secret = SecretStr
