"""Reading a document we built back before it is queued: what we send must parse.

    check_x12(text, "856")      pyx12's X12Reader reads the envelope (ISA/GS/ST/SE/GE/IEA counts
                                and control numbers); the set holds its mandatory segments
    check_edifact(text, "DESADV")
                                pydifact parses the interchange; UNT counts and references and
                                the UNZ count are checked; the message holds its mandatory segments

Both raise `AckValueError` naming what is wrong: a bug in a builder, never bad input, so the
caller refuses to queue the document. pyx12 ships no map for 856/810/846 (only 997/999 and the
health-care sets), so the content check is the mandatory-segment list below, not a full map.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Mapping
from types import MappingProxyType

from gateway.acks.model import AckValueError

__all__ = ["MANDATORY", "check_edifact", "check_x12"]

# Segments each document must hold, in this order (others may come between).
MANDATORY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "856": ("BSN", "HL", "HL", "PRF", "HL", "LIN", "SN1", "CTT"),
        "810": ("BIG", "IT1", "TDS", "CTT"),
        "846": ("BIA", "LIN", "QTY", "CTT"),
        "DESADV": ("BGM", "DTM", "CPS", "LIN", "QTY"),
        "INVOIC": ("BGM", "DTM", "LIN", "QTY", "UNS", "MOA"),
        "INVRPT": ("BGM", "DTM", "LIN", "QTY"),
    }
)


def _in_order(tags: list[str], kind: str) -> None:
    want = list(MANDATORY.get(kind, ()))
    for tag in tags:
        if want and tag == want[0]:
            want.pop(0)
    if want:
        raise AckValueError(f"the {kind} we built lacks {want[0]} (mandatory segments: {' '.join(MANDATORY[kind])})")


def check_x12(text: str, kind: str) -> None:
    """Read `text` (one interchange) with pyx12; AckValueError on any error it reports or a
    missing mandatory segment of `kind`."""
    import pyx12.x12file  # heavy: only when a document is built

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    tags: list[str] = []
    sets = 0
    for seg in reader:
        tag = str(seg.get_seg_id())
        if tag == "ST":
            sets += 1
            if seg.get_value("ST01") != kind:
                raise AckValueError(f"ST01 is {seg.get_value('ST01')!r}, not {kind}")
        tags.append(tag)
    errors = reader.pop_errors()
    reader.cleanup()
    errors += reader.pop_errors()
    if errors:
        raise AckValueError(f"pyx12 reads the {kind} we built with errors: {errors[:3]}")
    if sets == 0:
        raise AckValueError(f"the {kind} we built holds no transaction set")
    _in_order(tags, kind)


def check_edifact(text: str, kind: str) -> None:
    """Parse `text` (one interchange) with pydifact; AckValueError on a parse error, a wrong
    UNT/UNZ count or reference, or a missing mandatory segment of `kind`."""
    from pydifact.exceptions import EDISyntaxError, MissingImplementationWarning
    from pydifact.parser import Parser

    try:
        with warnings.catch_warnings():  # pydifact ships no segment specs for syntax 3: nothing to check them against
            warnings.simplefilter("ignore", MissingImplementationWarning)
            segs = [s for s in Parser().parse(text) if s.tag != "UNA"]
    except EDISyntaxError as exc:
        raise AckValueError(f"pydifact cannot read the {kind} we built: {exc}") from exc
    if not segs or segs[0].tag != "UNB" or segs[-1].tag != "UNZ":
        raise AckValueError(f"the {kind} we built is not one UNB..UNZ interchange")
    messages, start, reference = 0, 0, ""
    tags: list[str] = []
    for i, seg in enumerate(segs):
        tags.append(seg.tag)
        if seg.tag == "UNH":
            messages, start, reference = messages + 1, i, str(seg.elements[0])
            name = seg.elements[1][0] if isinstance(seg.elements[1], list) else seg.elements[1]
            if name != kind:
                raise AckValueError(f"UNH names {name!r}, not {kind}")
        elif seg.tag == "UNT" and (int(str(seg.elements[0])) != i - start + 1 or str(seg.elements[1]) != reference):
            raise AckValueError(f"UNT {seg.elements} does not match its message ({i - start + 1} segments, reference {reference})")
    unz, unb = segs[-1], segs[0]
    if int(str(unz.elements[0])) != messages or str(unz.elements[1]) != str(unb.elements[4]):
        raise AckValueError(f"UNZ {unz.elements} does not match the interchange ({messages} messages, reference {unb.elements[4]})")
    _in_order(tags, kind)
