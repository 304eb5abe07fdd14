"""Reading a document's text through a template (`extract_text`): fields by label or
pattern, address blocks, the line table by its `row` pattern, the totals cross-check, and
the quoted part of an e-mail reply left out. See "How a document is read" and "The message
body" in the package docstring (`gateway.extract.text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.extract.base import Draft, Extraction, ExtractionError, Found, parse_amount, parse_date
from gateway.extract.text.pdf import PdfPages
from gateway.extract.text.places import _city_line, _country
from gateway.extract.text.spec import (
    LINE_FIELDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    TextBlock,
    TextField,
    TextSpec,
    _field_kind,
)
from gateway.extract.text.values import (
    _after_label,
    _close,
    _currency,
    _kind_of,
    _label_re,
    _num,
    _readings,
    _show,
)
from gateway.model import Channel

if TYPE_CHECKING:
    from gateway.extract.template import EmailTemplate

# --------------------------------------------------------------------------- text


_PHRASE = re.compile(r"[^ ]+(?: [^ ]+)*")
_WHITESPACE = re.compile(r"\s")
_LONG_SPACE = re.compile(r" {3,}")
_COLUMN_SLACK = 3  # characters a column may wander between lines
_MAX_PLACES = 100  # places a label is looked at to tell whether its value is ambiguous
_MAX_ROW_WARNINGS = 20  # unread table lines named one by one; the rest are counted
_QUOTE_VERB = re.compile(r"(?i)\b(?:wrote|schrieb|a\s+écrit|escribió|schreef|ha\s+scritto)\b")
_QUOTE_START = re.compile(r"^\s*(?:on|am|le|el|op|il)\s", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*(?:from|von|de):\s+\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(?:sent|date|gesendet|datum|envoyé):\s+\S", re.IGNORECASE)
_OUTLOOK_SUBJECT = re.compile(r"^\s*(?:subject|betreff|objet):", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")  # bounded: no runaway


# "attachment po.pdf, page 2, line 7 (label ...)" or "..., page 2, lines 7-9 (...)": where a value was read.
_PLACE = re.compile(r", page (?P<page>\d+), lines? (?P<first>\d+)(?:-(?P<last>\d+))?")


@dataclass(frozen=True, slots=True)
class _Line:
    page: int
    number: int
    text: str  # what the template's patterns see: runs of 3+ spaces shortened to two
    phrases: tuple[tuple[int, str], ...]  # (column, text) in the line as written


def _expand_tabs(text: str) -> str:
    """Tabs to spaces at 8-column stops, at least two (a tab always separates phrases)."""
    if "\t" not in text:
        return text
    parts = text.split("\t")
    out = parts[0]
    for part in parts[1:]:
        width = 8 - len(out) % 8
        out += " " * (width if width >= 2 else width + 8) + part
    return out


def _wrote(text: str) -> bool:
    """'On <date>, <someone> wrote:' (or schrieb, a écrit, ...) ends the line."""
    return text.rstrip().endswith(":") and _QUOTE_VERB.search(text) is not None


def _quote_marker(raw: list[str], i: int) -> str | None:
    """Why the body ends at line `i` (a quoted earlier message or the signature), or None."""
    line = raw[i]
    if line.rstrip("\r") in ("-- ", "--"):
        return "the signature ('-- ')"
    if line.lstrip().startswith(">"):
        return "a quoted earlier message ('>')"
    if _ORIGINAL.match(line):
        return "a quoted earlier message ('Original Message')"
    nxt = raw[i + 1] if i + 1 < len(raw) else ""
    if _QUOTE_START.match(line) and (_wrote(line) or _wrote(f"{line.rstrip()} {nxt.strip()}")):
        return "a quoted earlier message ('... wrote:')"
    header = raw[i + 1 : i + 6]
    if (
        _OUTLOOK_FROM.match(line)
        and any(_OUTLOOK_SENT.match(x) for x in header)
        and any(_OUTLOOK_SUBJECT.match(x) for x in header)
    ):
        return "a quoted earlier message (a 'From: / Sent:' header)"
    return None


@dataclass(slots=True)
class _Row:
    index: int
    last: int
    texts: dict[str, str]
    quantity: Decimal
    quantity_confidence: float
    unit_price: Decimal | None = None
    unit_price_confidence: float = 1.0
    line_total: Decimal | None = None


@dataclass(slots=True)
class _Table:
    rows: list[_Row] = field(default_factory=list)
    region: set[int] = field(default_factory=set)
    header: int | None = None
    unmatched: list[int] = field(default_factory=list)


def extract_text(
    pages: list[str], label: str, template: EmailTemplate, channel: Channel
) -> Extraction:
    """The order in `pages` (one string per PDF page, or ``[body]``), read with the
    template's ``text:`` section.

    `label` starts every provenance string: ``attachment po.pdf`` (then ``, page 1, line
    12 (label 'PO Number')``) or ``message body`` (``, line 4``). `channel` is Channel.PDF
    for a PDF (confidence at most 0.9, pages are named) or Channel.EMAIL for a body (it
    ends at a quoted earlier message or the signature). Given a `PdfPages`, the PDF
    reader's messages become warnings and image-only pages a review flag.
    """
    if template.text is None:
        raise ExtractionError(
            "the partner's e-mail template has no text: section", reason="EXTRACT_NO_TEMPLATE"
        )
    return _Reader(pages, label, template, template.text, channel).read()


class _Reader:
    def __init__(
        self,
        pages: list[str],
        label: str,
        template: EmailTemplate,
        spec: TextSpec,
        channel: Channel,
    ) -> None:
        self.label = label
        self.template = template
        self.spec = spec
        self.pdf = channel is Channel.PDF
        self.base = 0.9 if self.pdf else 1.0
        self.paged = self.pdf or len(pages) > 1
        self.draft = Draft(channel)
        self.gaps: list[str] = []  # places where order lines may have been missed
        self.lines = self._prepare(pages, body=channel is Channel.EMAIL)
        labels = [lab for rule in spec.fields.values() for lab in rule.labels]
        labels += [lab for block in spec.blocks.values() for lab in block.labels]
        self.label_res = {lab: _label_re(lab) for lab in labels}
        alternatives = "|".join(
            r"\s*".join(re.escape(w) for w in lab.split())
            for lab in sorted(self.label_res, key=len, reverse=True)
        )
        # "PO: 1 Date: 2/3": a configured label with a colon inside a labelled phrase starts a new phrase.
        self.next_label = (
            re.compile(rf"(?i)(?<=[\s,;])(?=(?:{alternatives})\s*[:\uff1a])")
            if alternatives
            else None
        )
        # Any label at the start of a phrase, the longest first (Python takes the first alternative).
        self.any_label = (
            re.compile(rf"(?i)(?:{alternatives})(?!(?<=\w)\w)") if alternatives else None
        )
        if self.next_label is not None:
            self.lines = [self._split(line) for line in self.lines]
        lines_spec = spec.lines
        self.start = re.compile(lines_spec.start) if lines_spec.start else None
        self.ocr_lines = pages.ocr_lines if isinstance(pages, PdfPages) else {}
        if self.ocr_lines:
            read = ", ".join(str(n) for n in sorted(self.ocr_lines))
            self.draft.warnings.append(f"{label}: page(s) {read} are scans, read by OCR; values are at most as sure as the OCR was")
        if isinstance(pages, PdfPages):
            for message in pages.reader_messages:
                self.draft.warnings.append(f"{label}: the PDF reader reported: {message}")
            for number in pages.unread_pages:
                where = f"{label}, page {number}"
                self.draft.warnings.append(
                    f"{where} is an image without text; anything on it (order lines too) was not read"
                )
                self.gaps.append(f"{where} (an image without text)")

    # -- input

    def _prepare(self, pages: list[str], *, body: bool) -> list[_Line]:
        out: list[_Line] = []
        cut = 0
        for p, page in enumerate(pages, 1):
            # Cut before anything else looks at a line (one past the limit, to notice the cut).
            raw = [line[: MAX_LINE_CHARS + 1] for line in page.splitlines()]
            for n, text in enumerate(raw, 1):
                if body:
                    marker = _quote_marker(raw, n - 1)
                    if marker is not None:
                        self.draft.warnings.append(
                            f"{self.label}: read up to line {n - 1}; from line {n} on is {marker}, which was not read"
                        )
                        return out
                if len(out) >= MAX_LINES:
                    self.draft.warnings.append(
                        f"{self.label}: only the first {MAX_LINES} lines were read (the limit); the rest was ignored"
                    )
                    self.gaps.append(f"{self._at(p, n)} (the {MAX_LINES}-line limit)")
                    return out
                text = _expand_tabs(text.rstrip())
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS]
                    cut += 1
                    if cut == 1:
                        self.draft.warnings.append(
                            f"{self._at(p, n)}: longer than {MAX_LINE_CHARS} characters; cut there"
                        )
                text = _WHITESPACE.sub(" ", text)
                phrases = tuple((m.start(), m.group()) for m in _PHRASE.finditer(text))
                out.append(_Line(p, n, _LONG_SPACE.sub("  ", text), phrases))
        return out

    def _at(self, page: int, number: int) -> str:
        return (
            f"{self.label}, page {page}, line {number}"
            if self.paged
            else f"{self.label}, line {number}"
        )

    def where(self, i: int, note: str | None = None) -> str:
        line = self.lines[i]
        at = self._at(line.page, line.number)
        return f"{at} ({note})" if note else at

    def span(self, first: int, last: int, note: str) -> str:
        a, b = self.lines[first], self.lines[last]
        if first == last:
            return self.where(first, note)
        at = f"{self.label}, page {a.page}, lines" if self.paged else f"{self.label}, lines"
        return f"{at} {a.number}-{b.number} ({note})"

    def _split(self, line: _Line) -> _Line:
        """Line with its labelled phrases split where another label and a colon follow."""
        assert self.next_label is not None
        phrases: list[tuple[int, str]] = []
        for start, phrase in line.phrases:
            while (head := self._label_end(phrase)) and (m := self.next_label.search(phrase, head)):
                phrases.append((start, phrase[: m.start()].rstrip(" ,;")))
                start, phrase = start + m.start(), phrase[m.start() :]
            phrases.append((start, phrase))
        return (
            _Line(line.page, line.number, line.text, tuple(phrases))
            if len(phrases) > len(line.phrases)
            else line
        )

    def _label_end(self, phrase: str) -> int:
        """Where the longest configured label at the start of `phrase` ends (0: none)."""
        m = self.any_label.match(phrase) if self.any_label is not None else None
        return m.end() if m else 0

    def is_label(self, text: str) -> bool:
        return self._label_end(text) > 0

    # -- the whole document

    def read(self) -> Extraction:
        table = self._table()
        for party, block in self.spec.blocks.items():
            self._block(party, block, table.region)
        for path, rule in self.spec.fields.items():
            self._field(path, rule, table.region)
        if "currency" not in self.draft.fields and self.template.currency:
            self.draft.set(
                "currency",
                self.template.currency.upper(),
                f"the template (currency: {self.template.currency})",
                1.0,
            )
        self._stated_totals(table)
        self._check(table)
        if len(table.unmatched) > _MAX_ROW_WARNINGS:
            self.draft.warnings.append(
                f"{self.label}: {len(table.unmatched) - _MAX_ROW_WARNINGS} more lines of the order table were not read"
            )
        self._require(table)
        for row in table.rows:
            self.draft.add_line(self._found(row))
        extraction = self.draft.build()
        if self.ocr_lines:
            self._ocr_confidence(extraction)
        if self.gaps:
            more = f" and {len(self.gaps) - 1} more" if len(self.gaps) > 1 else ""
            extraction.confidence["lines"] = 0.5
            extraction.provenance["lines"] = f"{self.gaps[0]}{more}: order lines may be missing"
        return extraction

    def _ocr_confidence(self, extraction: Extraction) -> None:
        """Cap each value read from a scanned page by its lines' OCR confidence (the lowest
        word of the lowest line it spans), and say so in its provenance."""
        from gateway.extract.text.ocr import confidence_cap

        for path, where in extraction.provenance.items():
            m = _PLACE.search(where)
            if m is None or int(m["page"]) not in self.ocr_lines:
                continue
            lines = self.ocr_lines[int(m["page"])]
            first = int(m["first"])
            last = int(m["last"] or first)
            word = min((lines[n] for n in range(first, last + 1) if n in lines), default=None)
            if word is None:
                continue
            extraction.confidence[path] = min(extraction.confidence.get(path, 1.0), confidence_cap(word))
            extraction.provenance[path] = f"{where} [OCR, lowest word {word:.0f}%]"

    # -- header fields

    def _field(self, path: str, rule: TextField, region: set[int]) -> None:
        kind = _field_kind(path)
        found: list[tuple[Any, str, float]] = []

        def enough() -> bool:
            """Enough places seen: a list takes every value; a single value only needs
            to know whether another place disagrees."""
            if len(found) >= _MAX_PLACES:
                return True
            return kind != "list" and bool(found) and found[-1][0] != found[0][0]

        if rule.pattern:
            pattern = re.compile(rule.pattern)
            for i, line in enumerate(self.lines):
                if i in region:
                    continue
                m = pattern.search(line.text)
                if m and m.group(1):
                    got = self._convert(kind, path, m.group(1))
                    if got is not None:
                        found.append((got[0], self.where(i, "pattern"), min(self.base, got[1])))
                        if enough():
                            break
        else:
            for rank, lab in enumerate(rule.labels):
                level = self.base if rank == 0 else self._less(self.base)
                for candidates in self._labelled(lab, level, region):
                    for value, where, confidence in candidates:
                        got = self._convert(kind, path, value)
                        if got is not None:
                            found.append((got[0], where, min(confidence, got[1])))
                            break  # one value per place the label is written
                    if enough():
                        break
                if found:
                    break
        if not found:
            return
        if kind == "list":  # notes: every distinct value, in document order
            values = list(dict.fromkeys(v for v, _, _ in found))
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            self.draft.set(path, values, found[0][1] + more, min(c for _, _, c in found))
            return
        value, where, confidence = found[0]
        others = [(v, w) for v, w, _ in found[1:] if v != value]
        if others:
            confidence = min(confidence, 0.6)
            self.draft.warnings.append(
                f"{path}: {_show(value)} at {where}, but {_show(others[0][0])} at {others[0][1]}; the first was taken"
            )
        self.draft.set(path, value, where, confidence)

    def _less(self, level: float) -> float:
        """A notch less sure: an alternative label, or a value under its label."""
        return round(level - (0.05 if self.pdf else 0.1), 2)

    def _labelled(
        self, lab: str, level: float, region: set[int]
    ) -> Iterator[Iterator[tuple[str, str, float]]]:
        """For each place the label is written: the candidate values there, best first."""
        matcher = self.label_res[lab]
        for i, line in enumerate(self.lines):
            if i in region:
                continue
            for k, (_, phrase) in enumerate(line.phrases):
                m = matcher.match(phrase)
                if m and not self._longer_label(phrase, m.end()):
                    yield self._candidates(i, k, m.end(), lab, level, region)

    def _longer_label(self, phrase: str, end: int) -> bool:
        """Another configured label reads further into the phrase ('PO' in 'PO Number: 1')."""
        return self._label_end(phrase) > end

    def _candidates(
        self, i: int, k: int, end: int, lab: str, level: float, region: set[int]
    ) -> Iterator[tuple[str, str, float]]:
        line = self.lines[i]
        rest = _after_label(line.phrases[k][1], end)
        note = f"label '{lab}'"
        if rest:
            yield rest, self.where(i, note), level
            return
        if k + 1 < len(line.phrases) and not self.is_label(line.phrases[k + 1][1]):
            yield line.phrases[k + 1][1], self.where(i, note), level
        below = self._column_text(i + 1, i, k, region)
        if below is not None:
            yield (
                below,
                self.where(i + 1, f"under label '{lab}' on line {line.number}"),
                self._less(level),
            )

    def _columns(self, i: int, k: int) -> tuple[int, int | None]:
        """The column (first, end) of phrase k on line i; end is where the next phrase
        starts (None: to the end of the line)."""
        phrases = self.lines[i].phrases
        first = phrases[k][0] - _COLUMN_SLACK if k > 0 else -1
        end = phrases[k + 1][0] - _COLUMN_SLACK if k + 1 < len(phrases) else None
        return first, end

    def _column_text(
        self,
        j: int,
        i: int,
        k: int,
        region: set[int],
        columns: tuple[int, int | None] | None = None,
    ) -> str | None:
        """Line j's text in the column of phrase k on line i (same page), or None."""
        if j >= len(self.lines) or j in region or self.lines[j].page != self.lines[i].page:
            return None
        first, end = columns or self._columns(i, k)
        parts = [p for s, p in self.lines[j].phrases if s >= first and (end is None or s < end)]
        if not parts or self.is_label(parts[0]):
            return None
        return " ".join(parts)

    def _convert(self, kind: str, path: str, raw: str) -> tuple[Any, float] | None:
        text = raw.strip().rstrip(",;")
        if re.search(r"\d\.$", text):
            text = text[:-1]
        if not text:
            return None
        if kind in ("text", "list"):
            if path == "currency":
                return _currency(text)
            if path.endswith("email"):
                m = _EMAIL.search(text)
                return None if m is None else (m.group(), 1.0 if m.group() == text else 0.8)
            return text, 1.0
        if kind == "date":
            got = parse_date(
                text, formats=self.template.date_formats, day_first=self.template.day_first
            )
            if got is None and len(text.split()) > 1:
                first = parse_date(
                    text.split()[0],
                    formats=self.template.date_formats,
                    day_first=self.template.day_first,
                )
                got = None if first is None else (first[0], min(first[1], 0.8))
            return got
        got_amount = parse_amount(text, decimal_comma=self.template.decimal_comma)
        if got_amount is None and len(text.split()) > 1:
            first_amount = parse_amount(text.split()[0], decimal_comma=self.template.decimal_comma)
            got_amount = (
                None if first_amount is None else (first_amount[0], min(first_amount[1], 0.8))
            )
        if got_amount is None:
            return None
        if kind == "integer":
            number = got_amount[0]
            return (int(number), got_amount[1]) if number == number.to_integral_value() else None
        return got_amount

    # -- address blocks

    def _block(self, party: str, block: TextBlock, region: set[int]) -> None:
        for rank, lab in enumerate(block.labels):
            level = self.base if rank == 0 else self._less(self.base)
            matcher = self.label_res[lab]
            for i, line in enumerate(self.lines):
                if i in region:
                    continue
                for k, (_, phrase) in enumerate(line.phrases):
                    m = matcher.match(phrase)
                    if m and not self._longer_label(phrase, m.end()):
                        taken = self._block_lines(i, k, m.end(), block.lines, region)
                        if taken:
                            self._party(party, lab, taken, level)
                            return

    def _block_lines(
        self, i: int, k: int, end: int, limit: int, region: set[int]
    ) -> list[tuple[str, int]]:
        line = self.lines[i]
        taken: list[tuple[str, int]] = []
        rest = _after_label(line.phrases[k][1], end)
        column_end = k
        if rest:
            taken.append((rest, i))
        elif k + 1 < len(line.phrases) and not self.is_label(line.phrases[k + 1][1]):
            taken.append((line.phrases[k + 1][1], i))
            column_end = k + 1
        first = line.phrases[k][0] - _COLUMN_SLACK if k > 0 else -1
        end_col = (
            line.phrases[column_end + 1][0] - _COLUMN_SLACK
            if column_end + 1 < len(line.phrases)
            else None
        )
        j = i + 1
        while len(taken) < limit:
            if (
                j < len(self.lines)
                and self.start is not None
                and self.start.search(self.lines[j].text)
            ):
                break
            text = self._column_text(j, i, k, region, (first, end_col))
            if text is None:
                break
            taken.append((text, j))
            j += 1
        return taken

    def _party(self, party: str, lab: str, taken: list[tuple[str, int]], level: float) -> None:
        note = f"block '{lab}'"
        parsed_level = min(level, 0.8)
        texts = [t for t, _ in taken]
        rows = [j for _, j in taken]
        if len(texts) > 1:
            code = _country(texts[-1])
            if code is not None:
                self.draft.set(
                    f"{party}.country", code, self.where(rows[-1], f"{note}, country"), parsed_level
                )
                texts.pop()
                rows.pop()
        if len(texts) > 1:
            place = _city_line(texts[-1])
            if place is not None:
                for key, value in place.items():
                    if key == "country":
                        if f"{party}.country" not in self.draft.fields:
                            self.draft.set(
                                f"{party}.country",
                                value,
                                self.where(rows[-1], f"{note}, country"),
                                parsed_level,
                            )
                    else:
                        self.draft.set(
                            f"{party}.{key}",
                            value,
                            self.where(rows[-1], f"{note}, {key}"),
                            parsed_level,
                        )
                texts.pop()
                rows.pop()
        self.draft.set(f"{party}.name", texts[0], self.where(rows[0], note), level)
        if len(texts) > 1:
            self.draft.set(
                f"{party}.address_lines", texts[1:], self.span(rows[1], rows[-1], note), level
            )

    # -- the line table

    def _table(self) -> _Table:
        spec = self.spec.lines
        row_re = re.compile(spec.row)
        stop = re.compile(spec.stop) if spec.stop else None
        cont = re.compile(spec.continuation) if spec.continuation else None
        skips = [re.compile(s) for s in spec.skip]
        start = self.start
        pages_with_header = {
            line.page for line in self.lines if start is not None and start.search(line.text)
        }
        table = _Table()
        inside = False
        page = 0
        for i, line in enumerate(self.lines):
            if line.page != page:
                page = line.page
                if inside and page in pages_with_header:
                    inside = False  # the table goes on after this page's header
            text = line.text
            if not inside:
                if start is None:
                    m = row_re.search(text) if text.strip() else None
                    if m:
                        self._row(table, i, m)
                elif start.search(text):
                    inside = True
                    table.region.add(i)
                    if table.header is None:
                        table.header = i
                continue
            if stop is not None and stop.search(text):
                inside = False
                continue
            table.region.add(i)
            if not text.strip():
                if spec.ends_at_blank_line and table.rows:
                    inside = False
                continue
            if any(s.search(text) for s in skips) or (start is not None and start.search(text)):
                continue
            m = row_re.search(text)
            if m:
                self._row(table, i, m)
            elif cont is not None and table.rows and (c := cont.search(text)):
                extra = (c.groupdict().get("description") or c.group()).strip()
                row = table.rows[-1]
                row.texts["description"] = f"{row.texts.get('description', '')} {extra}".strip()
                row.last = i
            else:
                self._unmatched(table, i, "does not match the row pattern")
        return table

    def _unmatched(self, table: _Table, i: int, why: str) -> None:
        table.unmatched.append(i)
        self.gaps.append(f"{self.where(i)} (a table line that was not read)")
        if len(table.unmatched) <= _MAX_ROW_WARNINGS:
            text = " ".join(self.lines[i].text.split())
            self.draft.warnings.append(
                f"{self.where(i)}: a line of the order table {why}, so it was not read: {_show(text, 80)}"
            )

    def _row(self, table: _Table, i: int, m: re.Match[str]) -> None:
        texts = {k: " ".join(v.split()) for k, v in m.groupdict().items() if v and v.strip()}
        dc = self.template.decimal_comma
        quantity = parse_amount(texts.get("quantity", ""), decimal_comma=dc)
        if quantity is None:
            self._unmatched(
                table, i, f"has no readable quantity ({texts.get('quantity', 'none')!r})"
            )
            return
        row = _Row(i, i, texts, quantity[0], quantity[1])
        for name in ("unit_price", "line_total"):
            if name in texts:
                got = parse_amount(texts[name], decimal_comma=dc)
                if got is None:
                    self._unmatched(
                        table, i, f"has an unreadable {name.replace('_', ' ')} ({texts[name]!r})"
                    )
                    return
                if name == "unit_price":
                    row.unit_price, row.unit_price_confidence = got
                else:
                    row.line_total = got[0]
        table.rows.append(row)
        table.region.add(i)

    def _found(self, row: _Row) -> dict[str, Found]:
        out: dict[str, Found] = {}
        for name in LINE_FIELDS:
            if name not in row.texts:
                continue
            where = self.where(row.index, f"row, {name}")
            if name == "quantity":
                out[name] = Found(row.quantity, where, min(self.base, row.quantity_confidence))
            elif name == "unit_price":
                out[name] = Found(row.unit_price, where, min(self.base, row.unit_price_confidence))
            elif name == "description" and row.last != row.index:
                out[name] = Found(
                    row.texts[name], self.span(row.index, row.last, "row, description"), self.base
                )
            else:
                out[name] = Found(row.texts[name], where, self.base)
        return out

    # -- totals and cross-checks

    def _stated_totals(self, table: _Table) -> None:
        rows = {r.index for r in table.rows}
        for path, pattern in (
            ("totals.total", self.spec.lines.total),
            ("totals.subtotal", self.spec.lines.subtotal),
        ):
            if pattern is None or path in self.draft.fields:
                continue
            regex = re.compile(pattern)
            for i, line in enumerate(self.lines):
                m = regex.search(line.text) if i not in rows else None
                if m and m.group(1):
                    got = parse_amount(m.group(1), decimal_comma=self.template.decimal_comma)
                    if got is not None:
                        self.draft.set(
                            path, got[0], self.where(i, path.split(".")[1]), min(self.base, got[1])
                        )
                        break

    def _check(self, table: _Table) -> None:
        dc = self.template.decimal_comma
        for row in table.rows:
            if row.line_total is None or row.unit_price is None:
                continue
            readings = {
                name: _readings(row.texts[name], dc)
                for name in ("quantity", "unit_price", "line_total")
            }
            if _close(row.quantity * row.unit_price, row.line_total):
                combos = [
                    (q, p, t)
                    for q in readings["quantity"]
                    for p in readings["unit_price"]
                    for t in readings["line_total"]
                    if _close(q * p, t)
                ]
                if len(combos) == 1:  # the line total settles an ambiguous 1,000
                    if len(readings["quantity"]) > 1:
                        row.quantity_confidence = max(row.quantity_confidence, 0.8)
                    if len(readings["unit_price"]) > 1:
                        row.unit_price_confidence = max(row.unit_price_confidence, 0.8)
                continue
            row.quantity_confidence = min(row.quantity_confidence, 0.5)
            row.unit_price_confidence = min(row.unit_price_confidence, 0.5)
            hint = ""
            if any(
                _close(q * p, t)
                for q in readings["quantity"]
                for p in readings["unit_price"]
                for t in readings["line_total"]
            ):
                hint = " (read with the other decimal mark it would add up: check the template's decimal_comma)"
            self.draft.warnings.append(
                f"{self.where(row.index)}: {_num(row.quantity)} x {_num(row.unit_price)} = {_num(row.quantity * row.unit_price)}, "
                f"but the line says {_num(row.line_total)}{hint}; its quantity and unit price need checking"
            )
        path = "totals.subtotal" if "totals.subtotal" in self.draft.fields else "totals.total"
        stated = self.draft.fields.get(path)
        if stated is None or not table.rows:
            return
        if any(r.unit_price is None for r in table.rows):
            self.draft.warnings.append(
                f"{path} was not checked against the lines: not every line has a unit price"
            )
            return
        total = sum(
            (r.quantity * r.unit_price for r in table.rows if r.unit_price is not None), Decimal(0)
        )
        slack = max(Decimal("0.01"), Decimal("0.005") * len(table.rows))
        if abs(total - Decimal(stated.value)) <= slack:
            return
        self.draft.lower(path, 0.5)
        for row in table.rows:
            row.unit_price_confidence = min(row.unit_price_confidence, 0.6)
        self.draft.warnings.append(
            f"the {len(table.rows)} lines add up to {_num(total)}, but {path} is {_num(Decimal(stated.value))} "
            f"({stated.where}); the total and the unit prices need checking"
        )

    def _require(self, table: _Table) -> None:
        if "po_number" not in self.draft.fields:
            rule = self.spec.fields.get("po_number")
            if rule is None:
                tried = "the template's text.fields has no po_number"
            elif rule.labels:
                tried = "looked for the labels " + ", ".join(repr(lab) for lab in rule.labels)
            else:
                tried = f"searched each line for the pattern {rule.pattern!r}"
            raise ExtractionError(
                f"no PO number was found in the {_kind_of(self.label)} ({tried})",
                reason="EXTRACT_NO_PO",
            )
        if table.rows:
            return
        spec = self.spec.lines
        if spec.start is None:
            tried = f"no line matches the row pattern {spec.row!r}"
        elif table.header is None:
            tried = f"no line matches the table header pattern text.lines.start {spec.start!r}"
        else:
            tried = (
                f"the table header is at {self.where(table.header)}, but no line under it matches the row pattern "
                f"{spec.row!r}"
                + (
                    f" (the first: {_show(' '.join(self.lines[table.unmatched[0]].text.split()), 80)})"
                    if table.unmatched
                    else ""
                )
            )
        raise ExtractionError(
            f"no order lines were found in the {_kind_of(self.label)}: {tried}",
            reason="EXTRACT_NO_LINES",
        )
