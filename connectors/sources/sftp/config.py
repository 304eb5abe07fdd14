"""Configuration of the SFTP source and the SFTP acknowledgement channel.

Importing this module never imports paramiko: the dependency loads only when an SFTP
source or channel is built.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.plugins import PathFixer, SourceConfigBase

__all__ = ["SftpChannelConfig", "SftpServerConfig", "SftpSourceConfig"]

_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


def _remote_folder(value: str) -> str:
    if not value or "\x00" in value or "\\" in value:
        raise ValueError("must be a non-empty POSIX path without NUL bytes or backslashes")
    return posixpath.normpath(value) if value != "/" else value


class SftpServerConfig(BaseModel):
    """How to reach and authenticate to one SFTP server; the host key is always verified."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="Host name or IP address of the SFTP server.")
    port: int = Field(22, ge=1, le=65535, description="TCP port of the SFTP server.")
    username: str = Field(min_length=1, description="Account to log in as.")
    password: SecretStr | None = Field(
        None,
        description="Password of the account (from the environment: ${env:NAME}); or use private_key_file.",
    )
    private_key_file: Path | None = Field(
        None,
        description="Private key (OpenSSH or PEM format) to log in with; tried before the password.",
    )
    passphrase: SecretStr | None = Field(
        None,
        description="Passphrase of private_key_file, if it is encrypted (from the environment: ${env:NAME}).",
    )
    known_hosts: Path | None = Field(
        None,
        description="OpenSSH known_hosts file holding the server's host key; an unknown or changed key is refused, never added.",
    )
    host_key: str | None = Field(
        None,
        description="Instead of known_hosts: the server's host key fingerprint as 'SHA256:...' (ssh-keygen -lf).",
    )
    timeout: PositiveFloat = Field(
        15.0,
        description="Seconds to wait for the connection, the SSH banner, the login and each SFTP request.",
    )

    @field_validator("host_key")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.match(value):
            raise ValueError(
                "must be a SHA256 fingerprint such as 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8'"
            )
        return value

    @model_validator(mode="after")
    def _verifiable_and_authenticated(self) -> Self:
        if (self.known_hosts is None) == (self.host_key is None):
            raise ValueError(
                "set exactly one of known_hosts or host_key: the server's host key is always verified"
            )
        if self.password is None and self.private_key_file is None:
            raise ValueError("set password or private_key_file (or both)")
        if self.passphrase is not None and self.private_key_file is None:
            raise ValueError("passphrase is set but private_key_file is not")
        return self


class SftpSourceConfig(SftpServerConfig, SourceConfigBase):
    """An inbox folder on a partner's (or our own) SFTP server, polled for order files."""

    type: Literal["sftp"] = "sftp"
    name: str = Field(
        description="Unique name of this source; recorded on every message it receives."
    )
    remote_path: str = Field(
        description="The inbox folder on the server (absolute, or relative to the login folder)."
    )
    archive_path: str | None = Field(
        None,
        description="Remote folder stored files move to; if not set, they are deleted once stored.",
    )
    failed_path: str | None = Field(
        None,
        description="Remote folder refused files (symlinks, too large) move to (default: <remote_path>/../failed).",
    )
    poll_seconds: PositiveFloat = Field(30.0, description="Seconds between two looks at the inbox.")
    stable_seconds: float = Field(
        5.0,
        ge=0,
        description="A file is claimed only after its size and mtime stayed the same this long.",
    )
    done_suffix: str | None = Field(
        None,
        description="If set (e.g. '.done'), a file is claimed only once FILE+suffix exists; the marker is removed with it.",
    )
    max_bytes: PositiveInt = Field(
        50_000_000, description="Larger files are refused without downloading them."
    )
    pattern: str = Field(
        "*", description="Glob of file names to pick up (e.g. '*.edi'); others are left alone."
    )
    format: Literal["auto", "x12"] = Field(
        "auto", description="Input format; 'auto' detects it from the content."
    )
    partner: str | None = Field(
        None, description="Trading partner every file in this inbox comes from, if only one."
    )

    @field_validator("remote_path", "archive_path", "failed_path")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        return None if value is None else _remote_folder(value)

    @field_validator("done_suffix")
    @classmethod
    def _suffix(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or "\x00" in value):
            raise ValueError("must be a non-empty file name ending such as '.done'")
        return value

    def resolve_paths(self, fix: PathFixer) -> None:
        self.known_hosts = fix(self.known_hosts)
        self.private_key_file = fix(self.private_key_file)

    @property
    def failed_folder(self) -> str:
        """Where refused files go: failed_path, or a 'failed' folder beside the inbox."""
        if self.failed_path is not None:
            return self.failed_path
        return posixpath.normpath(posixpath.join(self.remote_path, "..", "failed"))


class SftpChannelConfig(SftpServerConfig):
    """A folder on a partner's SFTP server that files (acknowledgements) are delivered into."""

    type: Literal["sftp"] = "sftp"
    remote_path: str = Field(
        description="The partner's outbound folder on the server (absolute, or relative to the login folder)."
    )

    @field_validator("remote_path")
    @classmethod
    def _folder(cls, value: str) -> str:
        return _remote_folder(value)
