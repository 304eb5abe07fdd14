"""The ISA segment: the separators it declares, and the repairs that make it readable.

An ISA must be 106 characters of fixed-width fields; what real partners send is re-padded
here (fields not padded to width, no-break-space padding, versions pyx12 does not know are
shown to it as 00401), with a warning for each repair. Separators that cannot work (equal,
letters, digits, blanks) are refused with X12_SEPARATORS. See `gateway.formats.x12`.
"""

from __future__ import annotations

import dataclasses

from gateway.errors import ParseError

# pyx12 accepts only these two ISA12 values; anything else is presented to it as 00401.
_PYX12_VERSIONS = ("00401", "00501")
# Fixed widths of ISA01..ISA15 (ISA16 is one character).
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)
_BLANKS = " \t\r\n"


@dataclasses.dataclass(slots=True)
class _Isa:
    """An ISA as sent, and the separators it declares."""

    elements: list[str]  # ISA01..ISA16 as sent (index 0 is ISA01)
    element_sep: str
    component_sep: str
    terminator: str  # what ends segments in the input
    out_terminator: str  # what ends segments in the normalized text pyx12 reads
    line: int
    normalized: str  # the ISA re-padded to 106 characters, terminator included
    text_for_pyx12: str  # the same with ISA12 00401 where pyx12 does not know the version
    version: str  # ISA12 as sent
    warnings: list[str]


def _check_separators(es: str, cs: str, term: str, where: str) -> None:
    problems = []
    for sep, what in ((es, "element separator"), (cs, "component separator (ISA16)")):
        if sep.isalnum():
            problems.append(f"the {what} {sep!r} is a letter or digit")
        elif sep in _BLANKS:
            problems.append(f"the {what} {sep!r} is a blank or line break")
    if term.isalnum():
        problems.append(f"the segment terminator {term!r} is a letter or digit")
    if len({es, cs, term}) < 3:
        problems.append(
            f"separators must differ: element {es!r}, component {cs!r}, segment {term!r}"
        )
    if problems:
        raise ParseError(
            "; ".join(problems) + ". The ISA cannot be read unambiguously; ask the sender to fix "
            "its separators",
            reason="X12_SEPARATORS",
            position=where,
        )


def _isa_for_pyx12(
    elements: list[str], es: str, cs: str, term: str, warnings: list[str]
) -> tuple[str, str]:
    """The ISA re-padded to its fixed 106 characters, and the same as pyx12 must see it.

    pyx12 knows only the 00401 and 00501 versions: the second text says 00401 for any other.
    """
    fields = []
    repadded = nbsp = False
    for idx, (value, width) in enumerate(zip(elements[:15], _ISA_WIDTHS, strict=True)):
        if "\xa0" in value:
            nbsp = True
            value = value.replace("\xa0", " ")
        if len(value) != width:
            repadded = True
            stripped = value.strip()
            if idx == 12 and stripped.isdigit():  # ISA13 is numeric: pad with zeros
                value = stripped.zfill(width)
            else:
                value = stripped.ljust(width)
            if len(value) > width:
                warnings.append(
                    f"ISA{idx + 1:02d} {stripped!r} is longer than {width} characters; the "
                    "envelope keeps it in full"
                )
                value = value[:width]
        fields.append(value)
    if nbsp:
        warnings.append("the ISA is padded with no-break spaces; they were read as spaces")
    if repadded:
        warnings.append("the ISA fields are not padded to their fixed widths; re-padded")
    normalized = "ISA" + es + es.join(fields) + es + cs + term
    if len(normalized) != 106:  # pragma: no cover - the widths above add up to 106
        raise AssertionError(f"normalized ISA has {len(normalized)} characters")
    version = fields[11]
    if version not in _PYX12_VERSIONS:
        warnings.append(
            f"ISA12 version {version} is read with the 00401 envelope rules; the envelope "
            "keeps the version as sent"
        )
        fields[11] = "00401"
    return normalized, "ISA" + es + es.join(fields) + es + cs + term
