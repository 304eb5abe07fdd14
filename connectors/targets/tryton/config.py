from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, PositiveFloat, SecretStr

from gateway.plugins import TargetConfigBase
from gateway.retry import RetryPolicy

#: Where the customer's party code is read from in the canonical order, tried in the order given.
CodeSource = Literal["bill_to", "buyer", "partner", "sender"]
DEFAULT_CODE_SOURCES: tuple[CodeSource, ...] = ("bill_to", "buyer", "partner", "sender")


class TrytonTimeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = Field(5.0, description="Seconds to wait for the TCP/TLS connection.")
    read: PositiveFloat = Field(30.0, description="Seconds to wait for one JSON-RPC answer after sending.")
    total: PositiveFloat = Field(
        60.0, description="Seconds one send may take in all (its several RPC calls); the dispatch lease must be longer."
    )


class TrytonConfig(TargetConfigBase):
    """Creates each order as a sale in a Tryton ERP over JSON-RPC."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["tryton"] = "tryton"
    name: str = Field(description="Unique name of this connector.")
    url: AnyHttpUrl = Field(description="The Tryton server, e.g. https://erp.example.com (JSON-RPC at <url>/<database>/rpc/).")
    database: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$", description="Tryton database name.")
    user: str = Field(description="Tryton login the gateway uses (a user allowed to create parties and sales).")
    password: SecretStr = Field(description="That user's password; must be an ${env:NAME} reference.")
    customer_code_from: list[CodeSource] = Field(
        default_factory=lambda: list(DEFAULT_CODE_SOURCES),
        min_length=1,
        description=(
            "Where the customer party's code comes from, first present wins: bill_to / buyer (the "
            "party's code), partner (the configured trading partner), sender (the interchange sender id)."
        ),
    )
    create_customers: bool = Field(True, description="Create the customer party (and addresses) when no party has the code.")
    state: Literal["quotation", "confirmed"] = Field(
        "confirmed", description="Where a new or updated sale is moved: quotation, or confirmed (Tryton then processes it)."
    )
    timeout: TrytonTimeouts = Field(
        default_factory=TrytonTimeouts,
        description="Connect and read timeouts of each RPC call (their sum is its deadline) and the total of one send.",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy for transient failures.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    def call_seconds(self) -> float:
        return self.timeout.total
