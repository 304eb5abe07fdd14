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
        - name: everyone          # no match: takes every order no earlier team took
          notify: {email: [ops@example.com]}

A held or quarantined order belongs to the first team whose every given criterion matches:
its reason code starts with one of `reasons`, its partner is one of `partners`, its channel
one of `channels` (a criterion left out matches anything). An order no team matches has no
team. Matching is pure data; the assignment, notifications and reminders live in
gateway.processing.notify.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = ["ExceptionsConfig", "TeamConfig", "TeamMatch", "TeamNotify", "team_for"]


class TeamMatch(BaseModel):
    """Which waiting orders a team takes; every criterion given must match."""

    model_config = ConfigDict(extra="forbid")

    reasons: list[str] = Field(default_factory=list, description="Reason-code prefixes (VALIDATION matches VALIDATION:quantity_not_positive).")
    partners: list[str] = Field(default_factory=list, description="Partner (or shop) names.")
    channels: list[str] = Field(default_factory=list, description="Channels the order came by (x12, edifact, email, shopify, ...).")


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


def team_for(teams: Sequence[TeamConfig], *, reason: str | None, partner: str | None, channel: str | None) -> TeamConfig | None:
    """The first team that takes an order with this reason, partner and channel."""
    for team in teams:
        m = team.match
        if m.reasons and not any((reason or "").startswith(r) for r in m.reasons):
            continue
        if m.partners and (partner or "") not in m.partners:
            continue
        if m.channels and (channel or "") not in m.channels:
            continue
        return team
    return None
