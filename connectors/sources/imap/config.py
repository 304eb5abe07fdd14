"""Configuration of the IMAP source.

Importing this module never imports imapclient: the dependency loads only when an IMAP
source is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    model_validator,
)

from gateway.plugins import SourceConfigBase

__all__ = ["ImapSourceConfig"]


class ImapSourceConfig(SourceConfigBase):
    """One IMAP mailbox folder polled for order mails."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["imap"] = Field(description="Source type: an IMAP mailbox.")
    name: str = Field(min_length=1, max_length=100, description="Unique name of this source.")
    host: str = Field(min_length=1, description="Host name or IP address of the IMAP server.")
    port: int = Field(
        993, ge=1, le=65535, description="TCP port of the IMAP server (993 for ssl, 143 otherwise)."
    )
    tls: Literal["ssl", "starttls", "none"] = Field(
        "ssl",
        description="Transport security: 'ssl' (implicit TLS), 'starttls' (upgrade a plain connection) or 'none' (tests only).",
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of CA certificates to verify the server with; default: the system's CAs.",
    )
    username: str = Field(min_length=1, description="Account to log in as.")
    password: SecretStr | None = Field(
        None,
        description="Password of the account (from the environment: ${env:NAME}); or use oauth2_token.",
    )
    oauth2_token: SecretStr | None = Field(
        None,
        description="OAuth 2 access token for XOAUTH2 login (from the environment: ${env:NAME}); used instead of the password.",
    )
    folder: str = Field("INBOX", min_length=1, description="Folder the order mails arrive in.")
    processed_folder: str = Field(
        "Processed",
        min_length=1,
        description="Folder stored (and duplicate) mails are moved to; created if missing.",
    )
    review_folder: str = Field(
        "Needs-review",
        min_length=1,
        description="Folder mails a person must look at (held for review) are moved to; created if missing.",
    )
    failed_folder: str = Field(
        "Failed",
        min_length=1,
        description="Folder refused mails (too large, rejected) are moved to; created if missing.",
    )
    poll_seconds: PositiveFloat = Field(
        60,
        description="Seconds between polls of the folder (with IDLE, a safety net: new mail is fetched at once).",
    )
    idle: bool = Field(
        True,
        description="Watch the folder with IMAP IDLE (RFC 2177) on a second connection when the server offers it, and fetch new mail at once; polling goes on beside it.",
    )
    idle_seconds: float = Field(
        300,
        gt=0,
        le=1740,
        description="Seconds one IDLE lasts before it is re-issued (at most 1740, 29 minutes, as RFC 2177 asks).",
    )
    max_message_bytes: PositiveInt = Field(
        25_000_000,
        description="Largest mail (RFC822.SIZE) fetched; larger ones are refused without downloading.",
    )
    partner: str | None = Field(
        None, description="Trading partner the mails of this mailbox come from, if only one."
    )
    timeout: PositiveFloat = Field(
        30, description="Network timeout in seconds for connecting and each command."
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is None and self.oauth2_token is None:
            raise ValueError("set password or oauth2_token")
        folders = (self.folder, self.processed_folder, self.review_folder, self.failed_folder)
        if len(set(folders)) < len(folders):
            raise ValueError(
                "folder, processed_folder, review_folder and failed_folder must all differ"
            )
        return self

    @property
    def format(self) -> str:
        """The input format of every message: a whole e-mail."""
        return "email"
