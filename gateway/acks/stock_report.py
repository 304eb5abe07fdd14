"""Stock reports: the X12 846 inventory inquiry/advice and the EDIFACT INVRPT (D96A).

    build_846(levels, envelope=..., control_numbers=..., partner="acme")     ISA, GS*IB, one 846, IEA
    build_invrpt(levels, envelope=..., control_numbers=..., partner="acme")  UNB, one INVRPT, UNZ

`levels` is SKU -> quantity available (on hand less reserved, over every warehouse), from
the inventory master data (`gateway data import stock`). `envelope` is written as an answer
to it: its sender is the partner, its receiver us (the envelope of the partner's last order,
or one made from the partner's configured ids). The 846:

    BIA*00*MM*<report id>*<date>*<time>
    LIN**VP*<sku> + QTY*33*<available>*EA per SKU
    CTT*<SKUs>

The INVRPT: BGM+35, DTM+137, then LIN / PIA+5 (SKU, SA) / QTY+145 per SKU.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from gateway.acks.edifact import edifact_begin, edifact_number
from gateway.acks.model import GROUP, INTERCHANGE, AckValueError, ControlNumbers
from gateway.acks.x12 import x12_number, x12_writer
from gateway.formats.base import Envelope

__all__ = ["build_846", "build_invrpt"]


def _check(levels: Mapping[str, Decimal]) -> None:
    if not levels:
        raise AckValueError("a stock report needs at least one SKU (is the stock master data loaded?)")


def build_846(
    levels: Mapping[str, Decimal], *, envelope: Envelope, control_numbers: ControlNumbers, partner: str,
    gs08: str = "004010", report_id: str | None = None, now: dt.datetime | None = None,
) -> str:
    """An 846 with the quantity available of each SKU in `levels`."""
    _check(levels)
    now = now or dt.datetime.now(dt.UTC)
    w, isa_version = x12_writer(gs08)
    control = control_numbers.next(partner, INTERCHANGE)
    w.isa(envelope, control=control, now=now, version=isa_version)
    w.gs("IB", (envelope.receiver_id or "").strip(), (envelope.sender_id or "").strip(), control=control_numbers.next(partner, GROUP), now=now, version=gs08)
    w.st("846")
    w.seg("BIA", "00", "MM", report_id or f"STOCK{now:%Y%m%d%H%M}", f"{now:%Y%m%d}", f"{now:%H%M}")
    for sku, available in sorted(levels.items()):
        w.seg("LIN", None, "VP", sku)
        w.seg("QTY", "33", x12_number(max(available, Decimal(0))), "EA")
    w.seg("CTT", str(len(levels)))
    w.se()
    w.ge()
    w.iea(control)
    return w.text()


def build_invrpt(
    levels: Mapping[str, Decimal], *, envelope: Envelope, control_numbers: ControlNumbers, partner: str,
    report_id: str | None = None, now: dt.datetime | None = None,
) -> str:
    """An INVRPT (D96A) with the quantity available of each SKU in `levels`."""
    _check(levels)
    now = now or dt.datetime.now(dt.UTC)
    w, reference, una = edifact_begin(envelope, control_numbers.next(partner, INTERCHANGE), now)
    w.unh("1", ("INVRPT", "D", "96A", "UN"))
    w.seg("BGM", "35", report_id or f"STOCK{now:%Y%m%d%H%M}", "9")
    w.seg("DTM", ("137", f"{now:%Y%m%d}", "102"))
    for index, (sku, available) in enumerate(sorted(levels.items()), 1):
        w.seg("LIN", str(index))
        w.seg("PIA", "5", (sku, "SA"))
        w.seg("QTY", ("145", edifact_number(max(available, Decimal(0)), ".")))
    w.unt()
    w.seg("UNZ", "1", reference)
    return w.text(una)
