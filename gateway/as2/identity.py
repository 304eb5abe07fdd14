"""Our AS2 organization and the partners', as pyas2lib objects, built once from the
configuration; every problem (unreadable file, missing password, unknown partner) is reported
together as one `ConfigError`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.as2 import _oscrypto
from gateway.as2.config import As2Config, As2PartnerConfig
from gateway.errors import ConfigError

__all__ = ["Identity", "Peer", "load_certificate_files", "load_identity"]

ENCRYPTION = "aes_256_cbc"  # what we encrypt with; what partners use is read from their messages


@dataclass(frozen=True, slots=True)
class Peer:
    config: As2PartnerConfig
    partner: Any  # pyas2lib.Partner


@dataclass(frozen=True, slots=True)
class Identity:
    org: Any  # pyas2lib.Organization with our keys
    anonymous: Any  # our AS2 name without keys: what answers unknown partners (unsigned)
    peers: dict[str, Peer]  # by AS2 id

    def by_partner(self, name: str) -> Peer | None:
        return next((p for p in self.peers.values() if p.config.partner == name), None)


def load_certificate_files(config: As2Config) -> tuple[bytes, bytes, dict[str, bytes], list[str]]:
    """Our certificate and key and each partner's certificate, read from their files.

    Returns (our certificate, our key, partner certificates by AS2 id, problems).
    """
    problems: list[str] = []

    def read(path: Path, where: str) -> bytes:
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"intake.as2.{where}: cannot read {path}: {exc.strerror or exc}")
            return b""
        if b"-----BEGIN " not in data:
            problems.append(f"intake.as2.{where}: {path} is not PEM")
        return data

    cert = read(config.our_certificate, "our_certificate")
    key = read(config.our_key, "our_key")
    theirs = {
        p.as2_id: read(p.certificate, f"partners[{i}].certificate") for i, p in enumerate(config.partners)
    }
    return cert, key, theirs, problems


def load_identity(config: As2Config, partner_names: Iterable[str]) -> Identity:
    """pyas2lib's view of `config`; `partner_names` are the names under partners:."""
    _oscrypto.load()
    from pyas2lib import Organization, Partner
    from pyas2lib.exceptions import AS2Exception

    cert, key, theirs, problems = load_certificate_files(config)
    known = set(partner_names)
    for i, p in enumerate(config.partners):
        if p.partner not in known:
            problems.append(f"intake.as2.partners[{i}].partner: no partner {p.partner!r} under partners:")
    try:
        password = config.key_password()
    except ConfigError as exc:
        problems.extend(exc.problems)
        password = None
    if problems:
        raise ConfigError(problems)
    try:
        org = Organization(
            as2_name=config.our_id,
            sign_key=cert + b"\n" + key,
            sign_key_pass=password,  # type: ignore[arg-type]  # None: an unencrypted key
            decrypt_key=cert + b"\n" + key,
            decrypt_key_pass=password,  # type: ignore[arg-type]
            domain=config.message_id_domain,
        )
    except AS2Exception as exc:
        raise ConfigError([f"intake.as2.our_key: {exc}"]) from None
    peers = {
        p.as2_id: Peer(
            p,
            Partner(
                as2_name=p.as2_id,
                verify_cert=theirs[p.as2_id],
                encrypt_cert=theirs[p.as2_id],
                validate_certs=p.validate_certificate,
                encrypt=p.encrypt,
                sign=p.sign,
                compress=p.compress,
                mdn_mode="ASYNC" if p.mdn_mode == "async" else "SYNC",
                mdn_digest_alg="sha256" if p.mdn_sign else None,  # type: ignore[arg-type]
                enc_alg=ENCRYPTION,
            ),
        )
        for p in config.partners
    }
    return Identity(org, Organization(as2_name=config.our_id, domain=config.message_id_domain), peers)
