"""Every public sample in ../shared/corpus goes through format detection and `translate`:
each file either yields orders and rejections or ends with a clear InputRejected, never
another exception and never a hang. Order documents yield orders."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from gateway.config import PartnerConfig, X12ProfileConfig
from gateway.errors import InputRejected
from gateway.partners import PartnerDirectory
from gateway.translate import Rejected, Translated, translate
from tests.conftest import CORPUS, corpus_dir

KINDS = ("x12", "edifact", "xml")
FILES = sorted(p for k in KINDS if (CORPUS / k).is_dir() for p in (CORPUS / k).iterdir() if p.is_file())

# Order documents the corpus's PROVENANCE.md marks broken on purpose, or that our checks
# refuse for a stated reason (see the per-format corpus tests).
NO_ORDER_EXPECTED = {
    "edinet__x12.Issue172.edi",  # made-up segments, wrong SE count: broken on purpose
    "php-edifact__ORDERS_D01B_EAN010_error.edi",  # broken on purpose
    "staedi__ORDERS_EANCOM_with_UNG.edi",  # UNT count wrong
    "edireader__ORDERS_D01B_EAN008_UNOE_cyrillic.edi",  # lorem ipsum in numeric elements
    "edinet__TRADACOMS_ORDERS9.edi",  # TRADACOMS, not EDIFACT
    "officeluv__PunchOutOrderMessage_lowercase_root.xml",  # not cXML (lowercase root)
}


def _is_order_document(name: str) -> bool:
    if name in NO_ORDER_EXPECTED or "esponse" in name:  # OrderResponse documents answer orders
        return False
    return any(tag in name for tag in ("850", "ORDERS", "OrderRequest", "_Order", "Order-2", "OrderChange", "OrderCancellation"))


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_corpus_file_translates_or_is_refused_clearly(path: Path):
    corpus_dir(path.parent.name)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    orders, rejected = [], []
    try:
        with open(path, "rb") as fh:
            for ev in translate(fh, name=path.name):
                if isinstance(ev, Translated):
                    orders.append(ev.order)
                elif isinstance(ev, Rejected):
                    rejected.append(ev)
                    assert ev.reason and ev.message and ev.position
    except InputRejected as exc:
        assert exc.reason and exc.message
        if exc.reason in ("X12_ISA_LENGTH", "X12_WRAPPED"):
            # Strict by default; read for a partner whose profile allows the repair (issue 14 #22).
            lenient = PartnerDirectory([PartnerConfig(name="lenient", x12=X12ProfileConfig(lenient_envelope=True))])
            with open(path, "rb") as fh:
                events = list(translate(fh, name=path.name, partner="lenient", partners=lenient))
            orders = [ev.order for ev in events if isinstance(ev, Translated)]
            assert orders or not _is_order_document(path.name), f"{path.name}: no order when lenient"
            return
        assert not _is_order_document(path.name), f"{path.name}: {exc}"
        return
    except _Timeout:
        pytest.fail(f"{path.name}: translate did not finish within 10 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if _is_order_document(path.name):
        assert orders, f"{path.name}: no order ({[r.reason for r in rejected]})"
        assert all(o.po_number for o in orders)
