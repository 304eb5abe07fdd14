"""Exception-queue teams: who looks after which waiting orders, and how they are told.

    exceptions:
      teams:
        - name: credit-desk
          match: {reasons: [CREDIT_LIMIT, PAYMENT], partners: [acme], channels: [x12]}
          notify:
            email: [credit@example.com]
            webhook: https://chat.example.com/hooks/credit
            webhook_secret: ${env:CREDIT_HOOK_SECRET}
          remind_after_minutes: 60
          alerts: [quarantine, waiting]   # default: every kind (ALERT_KINDS)
        - name: everyone          # no match: takes every order no earlier team took
          notify: {email: [ops@example.com]}
          min_interval_minutes: 15        # at most one message per alert kind in 15 minutes

A held or quarantined order belongs to the first team whose every given criterion matches:
its reason code starts with one of `reasons`, its partner is one of `partners`, its channel
one of `channels` (a criterion left out matches anything). An order no team matches has no
team. Matching is pure data; the assignment, notifications and reminders live in
gateway.processing.notify.

Alerts (gateway.processing.alerts) go to the first team that takes their kind (`alerts`) and
whose criteria match: a dead letter has reason DEAD_LETTER and the partner and channel of what
died; a silent source SOURCE_SILENT and a source failing to poll POLL_ERRORS, with `sources`
naming the source (a configured source, or an intake shop as `<platform>:<name>`). The
`sources` criterion applies to those source alerts only; waiting orders ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = [
    "ALERT_KINDS",
    "AlertKind",
    "AlertsConfig",
    "ExceptionsConfig",
    "SourceWatch",
    "TeamConfig",
    "TeamMatch",
    "TeamNotify",
    "team_for",
    "team_for_alert",
]

AlertKind = Literal["quarantine", "waiting", "dead_letter", "partner_ack", "silent_source", "poll_errors"]
# quarantine: newly held or quarantined orders; waiting: orders still waiting past remind_after_minutes;
# dead_letter: a delivery or document that gave up; silent_source: no message for longer than
# expected (and its recovery); poll_errors: a source whose polls keep failing (and its recovery).
ALERT_KINDS: tuple[AlertKind, ...] = ("quarantine", "waiting", "dead_letter", "partner_ack", "silent_source", "poll_errors")
# The reason code an alert that is not a waiting order matches `match.reasons` with.
ALERT_REASONS: dict[str, str] = {"dead_letter": "DEAD_LETTER", "partner_ack": "PARTNER_ACK", "silent_source": "SOURCE_SILENT", "poll_errors": "POLL_ERRORS"}


class TeamMatch(BaseModel):
    """Which waiting orders a team takes; every criterion given must match."""

    model_config = ConfigDict(extra="forbid")

    reasons: list[str] = Field(default_factory=list, description="Reason-code prefixes (VALIDATION matches VALIDATION:quantity_not_positive).")
    partners: list[str] = Field(default_factory=list, description="Partner (or shop) names.")
    channels: list[str] = Field(default_factory=list, description="Channels the order came by (x12, edifact, email, shopify, ...).")
    sources: list[str] = Field(
        default_factory=list, description="Source names (an intake shop as <platform>:<name>) whose silent_source and poll_errors alerts the team takes; orders ignore it."
    )


class TeamNotify(BaseModel):
    """How a team is told that orders wait: e-mail (through `smtp:`) and/or a signed webhook."""

    model_config = ConfigDict(extra="forbid")

    email: list[str] = Field(default_factory=list, description="Addresses that get one e-mail per pass listing the team's newly waiting orders.")
    webhook: AnyHttpUrl | None = Field(None, description="URL that gets the same list as JSON (POST), signed with webhook_secret.")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for the X-Gateway-Signature header (sha256=<hex of the body's HMAC>); an ${env:NAME} reference."
    )

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in " \r\n,;<>"):
                raise ValueError(f"{address!r} is not one e-mail address")
        return value

    @model_validator(mode="after")
    def _signed(self) -> TeamNotify:
        if self.webhook is not None and self.webhook_secret is None:
            raise ValueError("a webhook needs webhook_secret (an ${env:NAME} reference): receivers verify the signature")
        if self.webhook_secret is not None and len(self.webhook_secret.get_secret_value()) < 16:
            raise ValueError("webhook_secret must have at least 16 characters (is the environment variable set?)")
        return self


class TeamConfig(BaseModel):
    """One team of people who handle waiting orders."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Short name (lower case), shown in `gateway exceptions`.")
    match: TeamMatch = Field(default_factory=TeamMatch, description="Which orders the team takes (default: all).")
    notify: TeamNotify = Field(default_factory=TeamNotify, description="How the team is told.")
    remind_after_minutes: PositiveFloat | None = Field(None, description="Tell the team again, once, about an order still waiting after this many minutes (by the database clock).")
    alerts: list[AlertKind] = Field(
        default_factory=lambda: list(ALERT_KINDS),
        description="The alert kinds the team takes: quarantine, waiting, dead_letter, silent_source, poll_errors (default: all).",
    )
    min_interval_minutes: NonNegativeFloat = Field(
        15.0,
        description="At most one dead_letter, silent_source or poll_errors message per kind in this many minutes; what comes meanwhile is summarised in the next (0: one per pass).",
    )


class ExceptionsConfig(BaseModel):
    """The exception queue: teams and their notifications."""

    model_config = ConfigDict(extra="forbid")

    teams: list[TeamConfig] = Field(default_factory=list, description="Teams in order of precedence: an order goes to the first that matches.")
    check_seconds: PositiveFloat = Field(30.0, description="How often `gateway run` assigns newly waiting orders and sends reminders.")

    @field_validator("teams")
    @classmethod
    def _unique(cls, value: list[TeamConfig]) -> list[TeamConfig]:
        names = [t.name for t in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"team name {dup[0]!r} is used twice")
        return value


class SourceWatch(BaseModel):
    """How long a source may stay quiet before its team is alerted."""

    model_config = ConfigDict(extra="forbid")

    silent_after_minutes: PositiveFloat = Field(description="Alert when no message came from the source for this many minutes (by the database clock); once, until it sends again.")


class AlertsConfig(BaseModel):
    """Alerts beyond waiting orders: dead letters, silent sources, failing polls (gateway.processing.alerts)."""

    model_config = ConfigDict(extra="forbid")

    check_seconds: PositiveFloat = Field(60.0, description="How often `gateway run` looks for new alerts and sends the messages due.")
    max_items: PositiveInt = Field(20, description="A message lists at most this many items; it always says how many there are in all.")
    poll_errors_after: PositiveInt = Field(3, description="Alert when a source's polls failed this many times in a row; once, until a poll succeeds.")
    sources: dict[str, SourceWatch] = Field(
        default_factory=dict, description="Sources (by name; an intake shop as <platform>:<name>) expected to send regularly, and their silence limit."
    )


def _matches(m: TeamMatch, reason: str | None, partner: str | None, channel: str | None) -> bool:
    if m.reasons and not any((reason or "").startswith(r) for r in m.reasons):
        return False
    if m.partners and (partner or "") not in m.partners:
        return False
    return not (m.channels and (channel or "") not in m.channels)


def team_for(teams: Sequence[TeamConfig], *, reason: str | None, partner: str | None, channel: str | None) -> TeamConfig | None:
    """The first team that takes an order with this reason, partner and channel."""
    return next((team for team in teams if _matches(team.match, reason, partner, channel)), None)


def team_for_alert(
    teams: Sequence[TeamConfig], kind: str, *, partner: str | None = None, channel: str | None = None, source: str | None = None
) -> TeamConfig | None:
    """The first team that takes alerts of `kind` about this partner, channel or source."""
    def takes(team: TeamConfig) -> bool:
        m = team.match
        about_source = kind in ("silent_source", "poll_errors")
        return kind in team.alerts and _matches(m, ALERT_REASONS.get(kind), partner, channel) and (
            not (m.sources and about_source) or (source or "") in m.sources
        )

    return next((team for team in teams if takes(team)), None)
