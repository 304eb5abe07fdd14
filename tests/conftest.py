"""Shared fixtures: stores on SQLite and on the real PostgreSQL the test script starts,
the public corpus in ../shared/corpus, and the project's own fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"


def _require_services() -> bool:
    return bool(os.environ.get("GATEWAY_REQUIRE_SERVICES"))


def corpus_dir(kind: str) -> Path:
    """A folder of the public corpus, used in place (never copied into the repo)."""
    path = CORPUS / kind
    if not path.is_dir():
        if _require_services():
            pytest.fail(f"the shared corpus is missing at {path}; CI must have ../shared beside the checkout")
        pytest.skip(f"the shared corpus is not at {path} (only CI and developer machines have it)")
    return path


@pytest.fixture
def require_tesseract() -> None:
    """OCR tests need Debian's tesseract-ocr (./scripts/test installs it); CI fails without it."""
    import shutil

    if shutil.which("tesseract") is None:
        if _require_services():
            pytest.fail("tesseract is not installed; ./scripts/test installs tesseract-ocr (as root)")
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr); ./scripts/test installs it")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    base = os.environ.get("GATEWAY_TEST_PG_URL")
    if not base:
        if _require_services():
            pytest.fail("GATEWAY_TEST_PG_URL is not set: scripts/test starts PostgreSQL and sets it")
        pytest.skip("PostgreSQL not configured (GATEWAY_TEST_PG_URL unset); run ./scripts/test")
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    from gateway.store import Store

    s = Store(store_url)
    yield s
    s.dispose()
