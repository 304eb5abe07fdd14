"""What `gateway as2 check` reports: each configured certificate, whom it is for, when it
expires, and whether our key belongs to our certificate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.as2.config import As2Config
from gateway.as2.identity import load_certificate_files
from gateway.errors import ConfigError

__all__ = ["EXPIRY_WARNING_DAYS", "CertificateFacts", "check"]

EXPIRY_WARNING_DAYS = 30


@dataclass(slots=True)
class CertificateFacts:
    """One certificate of the AS2 configuration."""

    role: str  # "ours" or the partner's name
    as2_id: str
    path: str
    subject: str = "?"
    expires: dt.datetime | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def days_left(self, now: dt.datetime) -> int | None:
        return None if self.expires is None else (self.expires - now).days


def check(config: As2Config, partners: set[str], now: dt.datetime | None = None) -> list[CertificateFacts]:
    """Facts and problems of every certificate (and our key) in `config`; `partners` are the
    names configured under partners:."""
    now = now or dt.datetime.now(dt.UTC)
    cert, key, theirs, problems = load_certificate_files(config)
    ours = _facts("ours", config.our_id, str(config.our_certificate), cert, now)
    ours.problems += [p for p in problems if "our_" in p and p not in ours.problems]
    if cert and key and not ours.problems:
        _check_key(ours, cert, key, config)
    rows = [ours]
    for p in config.partners:
        row = _facts(p.partner, p.as2_id, str(p.certificate), theirs[p.as2_id], now)
        if p.partner not in partners:
            row.problems.append(f"no partner {p.partner!r} under partners:")
        rows.append(row)
    return rows


def _facts(role: str, as2_id: str, path: str, pem: bytes, now: dt.datetime) -> CertificateFacts:
    facts = CertificateFacts(role, as2_id, path)
    if not pem:
        facts.problems.append(f"cannot read {path}")
        return facts
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        facts.problems.append(f"{path} holds no PEM certificate")
        return facts
    facts.subject = cert.subject.rfc4514_string()
    facts.expires = cert.not_valid_after_utc
    if cert.not_valid_after_utc <= now:
        facts.problems.append(f"expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    elif (cert.not_valid_after_utc - now).days < EXPIRY_WARNING_DAYS:
        facts.warnings.append(f"expires in {(cert.not_valid_after_utc - now).days} days")
    if cert.not_valid_before_utc > now:
        facts.problems.append(f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    return facts


def _check_key(facts: CertificateFacts, cert_pem: bytes, key_pem: bytes, config: As2Config) -> None:
    try:
        password = config.key_password()
    except ConfigError as exc:
        facts.problems.extend(exc.problems)
        return
    try:
        key = serialization.load_pem_private_key(key_pem, password.encode() if password is not None else None)
    except (ValueError, TypeError) as exc:
        facts.problems.append(f"our_key cannot be read: {exc}")
        return
    cert = x509.load_pem_x509_certificate(cert_pem)
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        facts.problems.append("our_key does not belong to our_certificate")
