"""Layers 2 and 3 of the EDIFACT reader: tokenize one interchange and check what pydifact does
not (UNT, UNE, UNZ counts and references, segments outside a message, a message cut off),
yielding its events. See the package docstring (`gateway.formats.edifact`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

from pydifact.exceptions import EDISyntaxError

from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.edifact.message import (
    EdifactMessage,
    _bad_tag,
    _component,
    _Locator,
    _ung_version,
    _unh_version,
)
from gateway.formats.edifact.scan import _Raw
from gateway.formats.edifact.syntax import (
    _find_last_terminator,
    _normalize,
    _patterns,
    _released,
    _skip_gap,
    _tag_ok,
    _unbreak,
)
from gateway.formats.edifact.tokenizer import _characters, _syntax_message, _tokenize

# --------------------------------------------------------------------------------------------
# Layers 2 and 3: tokenize and check one interchange


@dataclasses.dataclass(slots=True)
class _FileState:
    name: str
    doc_index: int = 0  # of the next message in the file
    segments: int = 0  # segments of the file read so far
    interchange_keys: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(slots=True)
class _Group:
    envelope: Envelope
    reference: str | None
    where: str
    messages: int = 0


class _Interchange:
    """Reads the messages of one interchange and yields its events, closing event last."""

    def __init__(self, raw: _Raw, index: int, state: _FileState):
        self.raw = raw
        self.text = raw.text
        self.state = state
        self.syntax = raw.syntax
        self.pats = _patterns(raw.syntax.terminator, raw.syntax.release)
        self.chars = _characters(raw.syntax, raw.text)
        self.errors: list[str] = []
        self.digest = hashlib.sha256()
        unb = raw.unb
        self.envelope = Envelope(
            standard="edifact",
            sender_id=_component(unb, 2, 0),
            sender_qualifier=_component(unb, 2, 1),
            receiver_id=_component(unb, 3, 0),
            receiver_qualifier=_component(unb, 3, 1),
            interchange_control_number=_component(unb, 5, 0),
            test_indicator=_component(unb, 11, 0),
            ack_requested=_component(unb, 9, 0) == "1",
            interchange_index=index,
        )
        self._envelopes: dict[tuple[Envelope, str | None], Envelope] = {}
        self.refs: set[str] = set()
        self.group: _Group | None = None  # the group open (UNG read, its UNE not yet)
        self.groups = 0
        self.messages = 0
        self.unz: list[Any] | None = None  # the first UNZ, and where it is
        self.unz_where = ""

    # -- the walk ---------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        raw, text, state = self.raw, self.text, self.state
        yield self._opened()
        cuts = self._cuts()
        line = raw.line + text.count("\n", 0, raw.unb_start)
        line_pos = raw.unb_start
        first = cuts[0] if cuts else len(text)
        lead = _skip_gap(text, raw.unb_end + 1)
        if lead < first:
            line += text.count("\n", line_pos, lead)
            line_pos = lead
            self._outside(lead, first, line, "UNB")

        for k, at in enumerate(cuts):
            end = cuts[k + 1] if k + 1 < len(cuts) else len(text)
            line += text.count("\n", line_pos, at)
            line_pos = at
            tag = text[at : at + 3]
            if not tag.isalpha():  # a hard-wrapped tag ("U\nNH")
                tag = _unbreak(text[at : at + 8])[:3]
            if tag == "UNH":
                self.messages += 1
                if self.group is not None:
                    self.group.messages += 1
                yield self._message(at, end, line, self.group)
                continue
            where = f"segment {state.segments + 1} (line {line})"
            segs = self._outside(at, end, line, tag, service=True)
            self._service(tag, segs[0] if segs else [tag], where)
        yield self._closed()

    def _opened(self) -> InterchangeOpened:
        """The opening event, once the UNB's reference is checked and the UNA and UNB are
        counted and digested."""
        env, state, syntax = self.envelope, self.state, self.syntax
        if env.interchange_control_number is None:
            self.errors.append("the UNB has no interchange control reference (0020)")
        key = env.interchange_key
        if key is not None:
            if key in state.interchange_keys:
                self.errors.append(
                    f"UNB 0020 {env.interchange_control_number} from this sender repeats an "
                    "earlier interchange in the same file"
                )
            state.interchange_keys.add(key)
        opened = InterchangeOpened(envelope=env, warnings=list(self.raw.warnings))
        if syntax.una is not None:
            self.digest.update(syntax.una.encode("utf-8"))
            state.segments += 1
        self.digest.update(self.raw.unb_norm.encode("utf-8"))
        state.segments += 1
        return opened

    def _cuts(self) -> list[int]:
        """Offsets of the UNH / UNG / UNE / UNZ tags after the UNB, where the text is cut."""
        text, release, pats = self.text, self.syntax.release, self.pats
        chunk_re, gap = pats.chunk, pats.gap
        cuts: list[int] = []
        search = self.raw.unb_end
        while True:
            m = chunk_re.search(text, search)
            if m is None:
                return cuts
            if release is not None and _released(text, m.start(), release, gap):
                search = m.start() + 1
                continue
            cuts.append(m.start(1))
            search = m.end()

    def _service(self, tag: str, head: list[Any], where: str) -> None:
        """A UNG opens a group, a UNE closes it (its count and reference checked); the first
        UNZ is kept for the end."""
        group = self.group
        if tag == "UNG":
            if group is not None:
                self.errors.append(
                    f"the UNG at {where} opens a group before the UNE of group "
                    f"{group.reference}"
                )
            self.groups += 1
            reference = _component(head, 5, 0)
            self.group = _Group(
                envelope=dataclasses.replace(
                    self.envelope,
                    group_control_number=reference,
                    functional_id=_component(head, 1, 0),
                    version=_ung_version(head[7] if len(head) > 7 else None),
                ),
                reference=reference,
                where=where,
            )
        elif tag == "UNE":
            if group is None:
                self.errors.append(f"the UNE at {where} closes no group (no UNG before it)")
            else:
                self._check_count(
                    head,
                    group.messages,
                    f"UNE 0060 at {where}",
                    f"messages in group {group.reference}",
                )
                ref = _component(head, 2, 0)
                if ref != group.reference:
                    self.errors.append(
                        f"UNE 0048 {ref!r} at {where} does not match UNG 0048 "
                        f"{group.reference!r}"
                    )
            self.group = None
        elif self.unz is None:  # UNZ
            self.unz, self.unz_where = head, where

    def _closed(self) -> InterchangeClosed:
        """The closing event: a group left open and the UNZ (present, counts, reference)
        checked."""
        env, group, unz, unz_where = self.envelope, self.group, self.unz, self.unz_where
        if group is not None:
            self.errors.append(f"the group {group.reference} opened at {group.where} has no UNE")
        if unz is None:
            self.errors.append(
                "the interchange has no UNZ trailer: the file may be cut off, so messages may "
                "be missing"
            )
        else:
            if self.groups:
                self._check_count(unz, self.groups, f"UNZ 0036 at {unz_where}", "groups")
            else:
                self._check_count(unz, self.messages, f"UNZ 0036 at {unz_where}", "messages")
            ref = _component(unz, 2, 0)
            if ref != env.interchange_control_number:
                self.errors.append(
                    f"UNZ 0020 {ref!r} at {unz_where} does not match UNB 0020 "
                    f"{env.interchange_control_number!r}"
                )
        return InterchangeClosed(
            envelope=env,
            digest=self.digest.hexdigest(),
            errors=self.errors + self.raw.problems,
            document_count=self.messages,
            complete=unz is not None and group is None,
        )

    def _check_count(self, seg: list[Any], actual: int, label: str, what: str) -> None:
        value = _component(seg, 1, 0)
        if value is None or not (value.isascii() and value.isdigit()) or int(value) != actual:
            self.errors.append(f"{label} says {value!r} but there are {actual} {what}")

    # -- pieces outside messages ------------------------------------------------------------

    def _tokenize_piece(
        self, start: int, end: int, line: int
    ) -> tuple[list[list[Any]], str | None, _Locator, int]:
        """Tokenize text[start:end]: (segments, problem or None, locator, segments counted)."""
        syntax = self.syntax
        locator = _Locator(self.text, start, end, line, self.pats, syntax.terminator)
        norm = _normalize(self.text[start:end], syntax, self.pats)
        self.digest.update(norm.encode("utf-8"))
        problem: str | None = None
        body = norm
        if body[-1:] != syntax.terminator or _released(body, len(body) - 1, syntax.release, ""):
            body = body[: _find_last_terminator(body, syntax) + 1]
            problem = "the last segment has no segment terminator (the input is cut off)"
        segs: list[list[Any]] = []
        try:
            for seg in _tokenize(body, self.chars):
                segs.append(seg)
        except EDISyntaxError as exc:
            bad = len(segs)
            return (
                segs,
                f"{_syntax_message(exc)} (line {locator.line_of(bad)})",
                locator,
                max(locator.count(), bad + 1),
            )
        for k, seg in enumerate(segs):
            if seg[0].__class__ is not str or not _tag_ok(seg[0]):
                problem = f"{_bad_tag(seg[0], syntax)} (line {locator.line_of(k)})"
                return segs[:k], problem, locator, max(locator.count(), len(segs))
        return segs, problem, locator, len(segs) + (1 if problem else 0)

    def _outside(
        self, start: int, end: int, line: int, after: str, *, service: bool = False
    ) -> list[list[Any]]:
        """A UNG/UNE/UNZ piece, or segments between the UNB and the first message.

        Returns the segments; anything that is not the service segment itself is reported.
        """
        state = self.state
        where = f"segment {state.segments + 1} (line {line})"
        segs, problem, locator, n = self._tokenize_piece(start, end, line)
        if problem is not None:
            self.errors.append(f"the {after} at {where} cannot be read: {problem}")
        for k, seg in enumerate(segs):
            if service and k == 0 and seg[0] == after:
                continue
            self.errors.append(
                f"segment {seg[0]} at segment {state.segments + 1 + k} (line "
                f"{locator.line_of(k)}) is outside any message and was ignored"
            )
        state.segments += n
        return segs if service and segs and segs[0][0] == after else []

    # -- messages ---------------------------------------------------------------------------

    def _message(
        self, start: int, end: int, line: int, group: _Group | None
    ) -> Document | DocumentRejected:
        """One UNH..UNT message: a Document, or a DocumentRejected saying why not."""
        state = self.state
        seg_no = state.segments + 1
        index = state.doc_index
        state.doc_index += 1
        position = f"segment {seg_no} (line {line})"
        envelope = group.envelope if group is not None else self.envelope
        segs, locator, truncated, syntax_problem = self._message_segments(
            start, end, line, seg_no
        )
        if syntax_problem is not None:
            return self._reject(envelope, segs, index, position, "EDIFACT_SYNTAX", syntax_problem)
        if not segs:
            return self._reject(
                envelope,
                segs,
                index,
                position,
                "EDIFACT_TRUNCATED",
                "the input ends inside the UNH segment",
            )
        unh = segs[0]
        ref = _component(unh, 1, 0)
        s009 = unh[2] if len(unh) > 2 else ""
        doc_type = (s009 if s009.__class__ is str else s009[0]).strip()
        problems: list[tuple[str, str]] = []
        if ref is None or not doc_type:
            problems.append(
                ("EDIFACT_UNH", "the UNH has no message reference (0062) or no message type (0065)")
            )
        elif ref in self.refs:
            problems.append(
                (
                    "EDIFACT_DUPLICATE_REF",
                    f"UNH 0062 {ref!r} repeats an earlier message of this interchange",
                )
            )
        if ref is not None:
            self.refs.add(ref)
        self._trailer(segs, ref, truncated, seg_no, locator, problems)
        if problems:
            return self._reject(
                envelope,
                segs,
                index,
                position,
                problems[0][0],
                "; ".join(m for _, m in problems),
            )
        return Document(
            envelope=self._doc_envelope(envelope, _unh_version(s009)),
            doc_type=doc_type,
            control_number=ref,
            body=EdifactMessage(segs, self.syntax.decimal, seg_no, locator),
            position=position,
            index=index,
        )

    def _message_segments(
        self, start: int, end: int, line: int, seg_no: int
    ) -> tuple[list[list[Any]], _Locator, bool, str | None]:
        """(segments, locator, whether the last segment was cut off, the syntax problem or
        None) of the message at text[start:end], digested and counted. With a problem, the
        segments are those read before it."""
        syntax, state = self.syntax, self.state
        locator = _Locator(self.text, start, end, line, self.pats, syntax.terminator)
        norm = _normalize(self.text[start:end], syntax, self.pats)
        self.digest.update(norm.encode("utf-8"))
        truncated = False
        body = norm
        if body[-1:] != syntax.terminator or _released(body, len(body) - 1, syntax.release, ""):
            body = body[: _find_last_terminator(body, syntax) + 1]
            truncated = True
        segs: list[list[Any]] = []
        try:
            for seg in _tokenize(body, self.chars):
                segs.append(seg)
        except EDISyntaxError as exc:
            bad = len(segs)
            state.segments += max(locator.count(), bad + 1)
            problem = (
                f"{_syntax_message(exc)} at segment {seg_no + bad} (line {locator.line_of(bad)})"
            )
            return segs, locator, truncated, problem
        n_segs = len(segs) + (1 if truncated else 0)
        for k, seg in enumerate(segs):
            tag = seg[0]
            if tag.__class__ is not str or not _tag_ok(tag):
                state.segments += max(locator.count(), n_segs)
                problem = (
                    f"{_bad_tag(tag, syntax)} at segment {seg_no + k} (line {locator.line_of(k)})"
                )
                return segs[:k], locator, truncated, problem
        state.segments += n_segs
        return segs, locator, truncated, None

    def _trailer(
        self,
        segs: list[list[Any]],
        ref: str | None,
        truncated: bool,
        seg_no: int,
        locator: _Locator,
        problems: list[tuple[str, str]],
    ) -> None:
        """Check the message's UNT (present, count, reference) into `problems`; what follows
        it up to the next UNH/UNG/UNE/UNZ is outside any message, reported and dropped."""
        unt_at = next((k for k in range(len(segs) - 1, 0, -1) if segs[k][0] == "UNT"), -1)
        if unt_at < 0:
            cause = (
                "its last segment has no terminator, the input is cut off"
                if truncated
                else "it ends at the next UNH/UNG/UNE/UNZ or at the end of the interchange"
            )
            problems.insert(0, ("EDIFACT_TRUNCATED", f"the message has no UNT trailer ({cause})"))
            return
        for k in range(unt_at + 1, len(segs)):
            self.errors.append(
                f"segment {segs[k][0]} at segment {seg_no + k} (line {locator.line_of(k)}) "
                "after a UNT is outside any message and was ignored"
            )
        if truncated:
            self.errors.append(
                f"the input ends inside a segment after the UNT of message {ref} (line "
                f"{locator.line_of(len(segs))})"
            )
        del segs[unt_at + 1 :]
        unt = segs[unt_at]
        count = _component(unt, 1, 0)
        if count is None or not (count.isascii() and count.isdigit()) or int(count) != len(segs):
            problems.append(
                (
                    "EDIFACT_UNT_COUNT",
                    f"UNT 0074 says {count!r} segments but the message has {len(segs)} "
                    "(UNH to UNT); a wrong count can mean lost segments, so ask the sender "
                    "to resend it",
                )
            )
        unt_ref = _component(unt, 2, 0)
        if unt_ref != ref:
            problems.append(
                ("EDIFACT_UNT_REF", f"UNT 0062 {unt_ref!r} does not match UNH 0062 {ref!r}")
            )

    def _doc_envelope(self, envelope: Envelope, version: str | None) -> Envelope:
        # Keyed by the envelope itself, not id(): a group's envelope freed at its UNE can be
        # reallocated at the same address for the next group's, and would match wrongly.
        key = (envelope, version)
        cached = self._envelopes.get(key)
        if cached is None:
            cached = dataclasses.replace(envelope, version=version)
            self._envelopes[key] = cached
        return cached

    def _reject(
        self,
        envelope: Envelope,
        segs: list[list[Any]],
        index: int,
        position: str,
        reason: str,
        message: str,
    ) -> DocumentRejected:
        unh = segs[0] if segs and segs[0][0] == "UNH" else ["UNH"]
        ref = _component(unh, 1, 0)
        s009 = unh[2] if len(unh) > 2 else ""
        doc_type = (s009 if s009.__class__ is str else s009[0]).strip() or None
        return DocumentRejected(
            envelope=self._doc_envelope(envelope, _unh_version(s009)),
            doc_type=doc_type,
            control_number=ref,
            reason=reason,
            message=f"message {doc_type or '?'} {ref or '(no reference)'} rejected: {message}",
            position=position,
            index=index,
        )
