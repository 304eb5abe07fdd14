"""AS2 configuration: every mistake reported together at start-up; the oscrypto loader."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.as2 import _oscrypto
from gateway.as2.config import As2Config
from gateway.as2.receiver import As2Receiver
from gateway.errors import ConfigError
from gateway.intake import IntakeConfig


def test_every_problem_is_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_AS2_PASSWORD", raising=False)
    (tmp_path / "plain.txt").write_text("not a certificate")
    config = As2Config.model_validate(
        {
            "our_id": "WIDGETCO",
            "our_certificate": str(tmp_path / "missing.crt"),
            "our_key": str(tmp_path / "plain.txt"),
            "our_key_password_env": "NO_SUCH_AS2_PASSWORD",
            "partners": [{"partner": "ghost", "as2_id": "GHOST", "certificate": str(tmp_path / "ghost.crt")}],
        }
    )
    gateway = SimpleNamespace(config=SimpleNamespace(partners=[]))
    with pytest.raises(ConfigError) as caught:
        As2Receiver(gateway, config, store_timeout=1.0)  # type: ignore[arg-type]
    problems = "\n".join(caught.value.problems)
    assert "our_certificate: cannot read" in problems
    assert "our_key: " in problems and "is not PEM" in problems
    assert "partners[0].certificate: cannot read" in problems
    assert "no partner 'ghost' under partners:" in problems
    assert "NO_SUCH_AS2_PASSWORD is not set" in problems


def test_as2_ids_are_unique_and_printable() -> None:
    base = {"our_id": "WIDGETCO", "our_certificate": "a.crt", "our_key": "a.key"}
    twice = [{"partner": "a", "as2_id": "SAME", "certificate": "x"}, {"partner": "b", "as2_id": "SAME", "certificate": "y"}]
    with pytest.raises(ValueError, match="configured twice"):
        IntakeConfig.model_validate({"as2": {**base, "partners": twice}})
    with pytest.raises(ValueError, match="our_id"):
        As2Config.model_validate({**base, "our_id": "has space"})
    with pytest.raises(ValueError, match="mdn_url"):
        As2Config.model_validate({**base, "partners": [{"partner": "a", "as2_id": "A", "certificate": "x", "mdn_url": "file:///etc/passwd"}]})


def test_oscrypto_loads_on_this_openssl() -> None:
    _oscrypto.load()
    _oscrypto.load()  # idempotent
    from oscrypto import asymmetric

    key = asymmetric.generate_pair("rsa", bit_size=1024)[1]
    assert asymmetric.rsa_pkcs1v15_sign(key, b"x", "sha256")
