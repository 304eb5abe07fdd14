"""Configuration of AS2 (``intake.as2``): who we are, and each partner that sends to us.

    intake:
      as2:
        our_id: WIDGETCO                       # our AS2 name (AS2-To of what partners send)
        our_certificate: /etc/gateway/as2/widgetco.crt     # PEM
        our_key: /etc/gateway/as2/widgetco.key             # PEM (PKCS#8 or PKCS#1)
        our_key_password_env: GATEWAY_AS2_KEY_PASSWORD     # only when the key is encrypted
        partners:
          - partner: acme                      # a partner under partners:
            as2_id: ACMEAS2                    # its AS2-From
            certificate: /etc/gateway/as2/acme.crt
            encrypt: true                      # accept only encrypted messages
            sign: true                         # accept only signed messages
            mdn_url: https://as2.acme.example/mdn   # the only address async MDNs go to
            url: https://as2.acme.example/as2       # where we send documents to it

Keys and certificates are file paths, read once at start-up; the key's password comes only
from the named environment variable. Every mistake is reported at start-up together.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import ConfigError

__all__ = ["As2Config", "As2PartnerConfig"]

_AS2_ID = r"^[!-~]{1,128}$"  # printable ASCII without spaces: RFC 4130 allows more, partners use this
_ENV = r"^[A-Z_][A-Z0-9_]{0,99}$"


class As2PartnerConfig(BaseModel):
    """One trading partner that exchanges AS2 messages with us."""

    model_config = ConfigDict(extra="forbid")

    partner: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="The partner's name under partners: (its orders carry it).",
    )
    as2_id: str = Field(pattern=_AS2_ID, description="The partner's AS2 name: AS2-From of its messages.")
    certificate: Path = Field(
        description="The partner's certificate (PEM): verifies its signatures and signed MDNs, "
        "encrypts what we send it."
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]{1,2000}$",
        description="The partner's AS2 endpoint: where we send documents (`gateway as2 send`). "
        "Without it nothing is sent to this partner by AS2.",
    )
    encrypt: bool = Field(True, description="Accept only encrypted messages from this partner (and encrypt ours).")
    sign: bool = Field(True, description="Accept only signed messages from this partner (and sign ours).")
    compress: bool = Field(False, description="Compress the messages we send this partner.")
    mdn_mode: Literal["sync", "async"] = Field(
        "sync",
        description="How we ask this partner for its MDN on what we send (sending supports sync only, "
        "for now).",
    )
    mdn_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]{1,2000}$",
        description="Where asynchronous MDNs for this partner are posted. A message asking for an "
        "asynchronous MDN elsewhere gets it here; without mdn_url its MDN is answered synchronously.",
    )
    mdn_sign: bool = Field(True, description="Ask this partner for signed MDNs (with the MIC).")
    validate_certificate: bool = Field(
        True, description="Check the certificate's validity dates (self-signed certificates are accepted)."
    )


class As2Config(BaseModel):
    """AS2 at POST /intake/as2: our identity and our partners."""

    model_config = ConfigDict(extra="forbid")

    our_id: str = Field(pattern=_AS2_ID, description="Our AS2 name: AS2-To of the messages we accept.")
    our_certificate: Path = Field(description="Our certificate (PEM), which partners encrypt to and verify with.")
    our_key: Path = Field(description="Our private key (PEM): decrypts messages, signs MDNs.")
    our_key_password_env: str | None = Field(
        None,
        pattern=_ENV,
        description="Environment variable holding the password of our_key (only for an encrypted key).",
    )
    message_id_domain: str = Field(
        default_factory=socket.getfqdn,
        pattern=r"^[A-Za-z0-9.-]{1,200}$",
        description="Right-hand side of the Message-IDs of what we send (default: this host's name).",
    )
    max_payload_bytes: int = Field(
        50_000_000,
        ge=1000,
        description="A compressed message whose payload expands beyond this is refused "
        "(decompression-failed) before it is expanded further: no decompression bombs.",
    )
    partners: list[As2PartnerConfig] = Field(
        default_factory=list, description="The partners whose AS2 messages are accepted."
    )

    @field_validator("partners")
    @classmethod
    def _unique(cls, value: list[As2PartnerConfig]) -> list[As2PartnerConfig]:
        ids = [p.as2_id for p in value]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"AS2 id {sorted(dup)[0]!r} is configured twice")
        return value

    def resolve_paths(self, fix: Callable[[Path | None], Path | None]) -> None:
        """Relative certificate and key paths are relative to the configuration file."""
        self.our_certificate = fix(self.our_certificate) or self.our_certificate
        self.our_key = fix(self.our_key) or self.our_key
        for p in self.partners:
            p.certificate = fix(p.certificate) or p.certificate

    def key_password(self) -> str | None:
        """Our key's password from the environment; ConfigError when the variable is unset."""
        if self.our_key_password_env is None:
            return None
        value = os.environ.get(self.our_key_password_env)
        if value is None:
            raise ConfigError(
                f"intake.as2.our_key_password_env: environment variable {self.our_key_password_env} is not set"
            )
        return value
