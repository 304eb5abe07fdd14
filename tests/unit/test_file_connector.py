"""FileConnector: atomic, idempotent JSON files with names order data cannot steer."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from connectors.targets.file import connector as file_module
from connectors.targets.file.config import FileTargetConfig
from connectors.targets.file.connector import FileConnector, safe_name
from gateway.connector import Delivery
from gateway.errors import PermanentError, TransientError
from gateway.payload import load_payload
from gateway.store.outbox import idempotency_key

ORDER = {"po_number": "PO-1001", "lines": [{"sku": "WID-1", "quantity": "10"}], "buyer": {"code": "ACME"}}


def delivery(order: dict[str, Any] | None = None, order_id: str = "o-1") -> Delivery:
    return Delivery(outbox_id=1, order_id=order_id, idempotency_key=idempotency_key(order_id, "files"),
                    attempt=1, order=order if order is not None else ORDER)


def make(folder: Path, **kw: Any) -> FileConnector:
    return FileConnector(FileTargetConfig(name="files", path=folder, **kw))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_the_order_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "erp"  # created on first use
    conn = make(folder)
    receipt = conn.send(delivery())
    key = idempotency_key("o-1", "files")
    assert listing(folder) == [f"PO-1001-{key}.json"]
    assert receipt.reference == f"PO-1001-{key}.json"
    assert receipt.detail["path"] == str(folder / receipt.reference)
    assert json.loads((folder / receipt.reference).read_text(encoding="utf-8")) == ORDER
    assert conn.capabilities.idempotent


def test_a_repeat_overwrites_instead_of_adding_a_file(tmp_path: Path) -> None:
    conn = make(tmp_path)
    first = conn.send(delivery())
    second = conn.send(delivery())
    assert first.reference == second.reference
    assert len(listing(tmp_path)) == 1
    conn.send(delivery(order_id="o-2"))  # another delivery, another file
    assert len(listing(tmp_path)) == 2


@pytest.mark.parametrize(
    "po",
    ["../../etc/passwd", "/etc/passwd", "..\\..\\x", "C:\\x", "a\x00b", "..", ".hidden", "ПО/№1", "", None, "x" * 1000],
)
def test_po_number_cannot_escape_or_break_the_folder(tmp_path: Path, po: Any) -> None:
    folder = tmp_path / "out"
    conn = make(folder)
    receipt = conn.send(delivery({**ORDER, "po_number": po}))
    written = folder / receipt.reference
    assert written.parent == folder and written.exists()
    assert listing(tmp_path) == ["out"]
    name = receipt.reference.removesuffix(".json")
    stem = name[: -len(idempotency_key("o-1", "files")) - 1]
    assert stem and len(stem) <= 80 and not stem.startswith(".")
    assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in stem)


def test_safe_name() -> None:
    assert safe_name("PO 12/34") == "PO_12_34"
    assert safe_name("../x") == "_x"
    assert safe_name("...") == "order"
    assert safe_name(None) == "order"
    assert len(safe_name("9" * 500)) == 80


def test_write_is_atomic_and_leaves_no_temp_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = make(tmp_path)
    conn.send(delivery())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_module.os, "fsync", full_disk)
    with pytest.raises(TransientError, match="No space left"):
        conn.send(delivery({**ORDER, "notes": ["changed"]}))
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # the old file is intact and no .tmp- file is left behind


def test_replace_is_used_so_readers_never_see_half_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((os.path.basename(src), os.path.basename(dst)))
        assert os.path.dirname(src) == str(tmp_path)  # same folder: rename is atomic
        real_replace(src, dst)

    monkeypatch.setattr(file_module.os, "replace", spy)
    receipt = make(tmp_path).send(delivery())
    assert calls and calls[0][0].startswith(".tmp-") and calls[0][1] == receipt.reference


def test_folder_that_is_a_file_is_permanent(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    with pytest.raises(PermanentError, match="check the folder"):
        make(blocker).send(delivery())


def test_payload_mapping_is_applied(tmp_path: Path) -> None:
    mapping = tmp_path / "shape.jmespath"
    mapping.write_text("{number: po_number, customer: buyer.code}", encoding="utf-8")
    load_payload.cache_clear()
    folder = tmp_path / "out"
    receipt = make(folder, payload=mapping).send(delivery())
    assert json.loads((folder / receipt.reference).read_text()) == {"number": "PO-1001", "customer": "ACME"}


def test_repr_names_the_folder(tmp_path: Path) -> None:
    assert repr(make(tmp_path)) == f"FileConnector(name='files', path={str(tmp_path)!r})"


# -- updates and cancels -----------------------------------------------------------------------


def change(action: str, order_id: str = "o-2", order: dict[str, Any] | None = None) -> Delivery:
    return Delivery(outbox_id=2, order_id=order_id, idempotency_key=idempotency_key(order_id, "files"), attempt=1,
                    order=order if order is not None else {**ORDER, "notes": [action]}, action=action,
                    target_reference="PO-1001-whatever.json")


def test_capabilities_declare_updates_and_cancels(tmp_path: Path) -> None:
    caps = make(tmp_path).capabilities
    assert caps.updates and caps.cancels and caps.idempotent and caps.idempotency_key


@pytest.mark.parametrize("action", ["update", "cancel"])
def test_update_and_cancel_get_their_own_file(tmp_path: Path, action: str) -> None:
    conn = make(tmp_path)
    created = conn.send(delivery())
    receipt = conn.send(change(action))
    key = idempotency_key("o-2", "files")
    assert receipt.reference == f"{action}-PO-1001-{key}.json"
    assert listing(tmp_path) == sorted([created.reference, receipt.reference])
    assert json.loads((tmp_path / receipt.reference).read_text(encoding="utf-8"))["notes"] == [action]
    again = conn.send(change(action))  # a repeat overwrites, as for a create
    assert again.reference == receipt.reference and len(listing(tmp_path)) == 2


def test_a_hostile_po_number_cannot_steer_an_update_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    receipt = make(folder).send(change("cancel", order={**ORDER, "po_number": "../../etc/passwd"}))
    assert receipt.reference.startswith("cancel-_.._etc_passwd-")
    assert listing(tmp_path) == ["out"] and (folder / receipt.reference).exists()


def test_an_update_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(file_module.os, "replace", spy)
    receipt = make(tmp_path).send(change("update"))
    assert calls == [(calls[0][0], receipt.reference)] and calls[0][0].startswith(".tmp-")


def test_an_unknown_action_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="unknown delivery action 'merge'"):
        make(tmp_path).send(change("merge"))
    assert listing(tmp_path) == []
