"""Which handler reads each segment: `_PARTY` inside an N1 loop, else `_HEADER_AREA` or
`_LINE_AREA` (what both share plus what only that area has). A segment with no handler
goes to Order.unmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.mapping.x12_850.header import (
    _amt,
    _beg,
    _cur,
    _dtm,
    _fob,
    _itd,
    _n9,
    _note,
    _per,
    _pid,
    _ref,
    _sac,
    _td5,
    _td_other,
    _txi,
)
from gateway.mapping.x12_850.loops import (
    _ctp,
    _ctt,
    _lin,
    _line_cur,
    _n1,
    _n2n3,
    _n4,
    _party_per,
    _party_ref,
    _po1,
    _po4,
    _sdq,
)

if TYPE_CHECKING:
    from gateway.mapping.x12_850.build import _Build

_Handler = Callable[["_Build", list[Any]], None]

_COMMON: dict[str, _Handler] = {
    "PO1": _po1,
    "CTT": _ctt,
    "REF": _ref,
    "DTM": _dtm,
    "SAC": _sac,
    "TXI": _txi,
    "MSG": _note,
    "NTE": _note,
    "N9": _n9,
    "N1": _n1,
    "CUR": _cur,
    "AMT": _amt,
    "PID": _pid,
    "PER": _per,
}
_HEADER: dict[str, _Handler] = {
    "BEG": _beg,
    "ITD": _itd,
    "TD5": _td5,
    "TD1": _td_other,
    "TD3": _td_other,
    "TD4": _td_other,
    "FOB": _fob,
}
_LINE: dict[str, _Handler] = {
    "PO4": _po4,
    "SDQ": _sdq,
    "CTP": _ctp,
    "LIN": _lin,
    "CUR": _line_cur,
}
_HEADER_AREA = {**_COMMON, **_HEADER}
_LINE_AREA = {**_COMMON, **_LINE}
_PARTY: dict[str, _Handler] = {
    "N2": _n2n3,
    "N3": _n2n3,
    "N4": _n4,
    "REF": _party_ref,
    "PER": _party_per,
}
