"""Layers the import graph must keep (issue 9): SQL lives in gateway/store/ only, and the
processing package does no network I/O.

Read from the source (the AST of every module), so a module that is never imported by a test
is checked all the same.
"""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT

# Modules outside gateway/store/ that still issue SQL and are being moved into repositories
# under gateway/store/ (issue 9, "All SQL in gateway/store/"). This list only ever shrinks:
# a module that no longer needs its entry makes the test fail until the entry is removed.
STILL_TO_MOVE: set[str] = set()  # empty: gateway/acks/outbound.py queues through gateway.store.documents


def _modules(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py") if ".venv" not in p.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import not under `if TYPE_CHECKING:`."""
    found: list[tuple[int, str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _sql_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}" + (f" ({', '.join(names)})" if names else "")
        for line, module, names in _runtime_imports(tree)
        if module == "sqlalchemy" or module.startswith("sqlalchemy.")
    ]


def test_no_module_outside_the_store_issues_sql() -> None:
    """issue 9: SQL only in gateway/store/ repositories (a typing-only `Connection` under
    `if TYPE_CHECKING:` is fine: it passes a transaction through, it writes no SQL)."""
    offenders: list[str] = []
    stale: list[str] = []
    for path in _modules("gateway", "connectors"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("gateway/store/"):
            continue
        found = _sql_imports(path)
        if rel in STILL_TO_MOVE:
            if not found:
                stale.append(rel)
            continue
        offenders.extend(found)
    assert not offenders, "SQL outside gateway/store/ (move it into a repository there):\n" + "\n".join(offenders)
    gone = sorted(rel for rel in STILL_TO_MOVE if not (ROOT / rel).exists())
    assert not stale + gone, "no longer issue SQL (or gone); remove from STILL_TO_MOVE: " + ", ".join(stale + gone)


def test_pipeline_and_versions_are_not_on_the_allow_list() -> None:
    """issue 9: the pipeline and version linking reach the store through its repositories."""
    done = {"gateway/pipeline.py", "gateway/versions.py"}
    assert not done & STILL_TO_MOVE
    for rel in done:
        assert _sql_imports(ROOT / rel) == []


def test_the_checker_sees_sql_imports() -> None:
    """The scan catches `import sqlalchemy`, `from sqlalchemy.exc import ...` and a runtime
    `Connection`, and lets a TYPE_CHECKING-only one pass (so a pass above means something)."""
    code = (
        "import sqlalchemy\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy import Connection\n"
        "def f():\n"
        "    from sqlalchemy import select\n"
    )
    tree = ast.parse(code)
    modules = [m for _, m, _ in _runtime_imports(tree)]
    assert modules == ["sqlalchemy", "sqlalchemy.exc", "typing", "sqlalchemy"]


# What processing may not import: anything that talks to the network. Acknowledgements and
# confirmation e-mails are stored by processing and sent by the dispatcher.
NETWORK = (
    "socket", "ssl", "smtplib", "imaplib", "ftplib", "http.client", "urllib.request", "httpx",
    "requests", "paramiko", "imapclient", "aiosmtpd", "gateway.smtp",
    "gateway.acks.channels", "gateway.dispatch.worker", "gateway.intake", "connectors",
)
PROCESSING = ["gateway/pipeline.py", "gateway/versions.py", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "gateway" / "processing").glob("*.py"))]


def test_processing_modules_import_nothing_that_talks_to_the_network() -> None:
    """issue 9: processing performs no network I/O (read from every import, also the ones
    inside functions)."""
    assert len(PROCESSING) > 5, "gateway/processing/ holds the pipeline's steps"
    offenders = []
    for rel in PROCESSING:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for line, module, _ in _runtime_imports(tree):
            if any(module == n or module.startswith(n + ".") for n in NETWORK):
                offenders.append(f"{rel}:{line}: imports {module}")
    assert not offenders, "\n".join(offenders)


def test_processing_an_order_mail_and_an_edi_file_opens_no_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 9: processing performs no network I/O. With every socket connect failing, an order
    e-mail from a verified partner (confirmation reply configured) and an X12 file from a
    partner that wants acknowledgements are processed; the reply and the 997 are stored for
    the dispatcher, and the orders are queued."""
    from sqlalchemy import select

    from gateway.config import PartnerConfig
    from gateway.connector import RawMessage
    from gateway.partners import PartnerDirectory
    from gateway.pipeline import Pipeline
    from gateway.smtp import SmtpConfig
    from gateway.store import Store
    from gateway.store import tables as t

    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")  # SQLite: the store itself opens no socket
    partners = [
        PartnerConfig(name="acme", email_senders=["@partner.example"], email_confirmation=True),
        PartnerConfig(name="northwind", x12_ids=["ZZ:ACMERETAIL"], acks={"outbound": tmp_path / "out"}),
    ]
    smtp = SmtpConfig(host="127.0.0.1", port=1, tls="none", from_address="Order desk <orders@gateway.example>")
    p = Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path), authserv_id="mx.gateway.example", smtp=smtp)
    mail = (ROOT / "tests" / "fixtures" / "email" / "x12_850_attachment.eml").read_bytes()
    edi = (ROOT / "gateway" / "examples" / "acme-po-4010.edi").read_bytes()
    ids = [p.receive(RawMessage(body=b, source="t", source_ref=n, display_name=n)).message_id for b, n in ((mail, "po.eml"), (edi, "po.edi"))]

    attempts: list[object] = []

    def refuse(_sock: object, address: object, *rest: object) -> None:
        attempts.append(address)
        raise OSError("processing must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    stats = [p.process(mid) for mid in ids]
    monkeypatch.undo()

    assert attempts == []
    assert all(s.orders >= 1 and s.rejected_messages == 0 for s in stats), stats
    with store.engine.connect() as c:
        o = t.outbox
        acks = {(r.kind, r.state) for r in c.execute(select(o.c.kind, o.c.state).where(o.c.kind != "order"))}
        queued = c.execute(select(o.c.state).where(o.c.kind == "order")).scalars().all()
    assert ("MAILREPLY", "pending") in acks
    assert ("997", "pending") in acks
    assert queued and set(queued) == {"pending"}
    store.dispose()
