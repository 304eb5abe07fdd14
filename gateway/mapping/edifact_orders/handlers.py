"""Which handler reads each segment, by tag; a segment with no handler goes to
Order.unmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.mapping.edifact_orders.groups import (
    _alc,
    _cnt,
    _cux,
    _loc,
    _moa,
    _pat,
    _pcd,
    _qty,
    _rte,
    _tax,
    _tdt,
    _tod,
    _uns,
)
from gateway.mapping.edifact_orders.header import _bgm, _dtm, _ftx, _rff
from gateway.mapping.edifact_orders.lines import _imd, _lin, _pia, _pri
from gateway.mapping.edifact_orders.parties import _com, _cta, _nad

if TYPE_CHECKING:
    from gateway.mapping.edifact_orders.build import _Build

_Handler = Callable[["_Build", list[Any]], None]

_HANDLERS: dict[str, _Handler] = {
    "BGM": _bgm,
    "DTM": _dtm,
    "RFF": _rff,
    "FTX": _ftx,
    "NAD": _nad,
    "CTA": _cta,
    "COM": _com,
    "TAX": _tax,
    "CUX": _cux,
    "PAT": _pat,
    "TDT": _tdt,
    "TOD": _tod,
    "LOC": _loc,
    "ALC": _alc,
    "PCD": _pcd,
    "MOA": _moa,
    "RTE": _rte,
    "UNS": _uns,
    "CNT": _cnt,
    "LIN": _lin,
    "PIA": _pia,
    "IMD": _imd,
    "QTY": _qty,
    "PRI": _pri,
}
