"""The split tokenizer of gateway.formats.edifact gives exactly what pydifact's
character-by-character tokenizer gives (issue 14, EDIFACT throughput): the same segments, and
the same syntax error after the same segments, on valid and on mutated input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError

from gateway.formats.edifact import tokenizer as edifact

FIXTURES = Path(__file__).parents[1] / "fixtures" / "edifact"


def chars(c: str = ":", e: str = "+", t: str = "'", r: str = "?") -> Characters:
    return Characters(  # type: ignore[no-untyped-call]
        component_separator=c,
        data_separator=e,
        decimal_point=".",
        escape_character=r,
        reserved=" ",
        segment_terminator=t,
    )


def run(fn: Any, text: str, ch: Characters) -> tuple[list[list[Any]], str | None]:
    out: list[list[Any]] = []
    try:
        for seg in fn(text, ch):
            out.append(seg)
    except EDISyntaxError as exc:
        return out, str(exc)
    return out, None


def agree(text: str, ch: Characters) -> None:
    assert run(edifact._tokenize, text, ch) == run(edifact._pydifact_tokenize, text, ch), repr(text)


def test_the_fixtures_take_the_split_path_and_agree():
    """Every fixture body (UNA removed) is tokenized by the split path, identically."""
    ch = chars()
    for path in sorted(FIXTURES.glob("*.edi")):
        text = path.read_text("latin-1")
        body = text[9:] if text.startswith("UNA") else text
        body = body.replace("'\r\n", "'").replace("'\n", "'")
        if edifact._split_segments(body, ch) is not None:
            agree(body, ch)
    valid = "UNB+UNOA:3+S+R+240101:1200+1'UNH+1+ORDERS:D:96A:UN'FTX+AAI+++a?+b?:c??d?'e'UNT+3+1'UNZ+1+1'"
    assert edifact._split_segments(valid, ch) is not None
    agree(valid, ch)


def test_release_pairs_are_literals():
    """reliability E10: `?+`, `?:`, `?'`, `??` are literal; a release before an ordinary char
    stands for that char."""
    segs, error = run(edifact._tokenize, "FTX+A?+B?:C?'D??E?F:G'", chars())
    assert error is None
    assert segs == [["FTX", ["A+B:C'D?EF", "G"]]]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="AB1:+'?? \r\n", max_size=40))
def test_agrees_with_pydifact_on_arbitrary_text(text: str):
    agree(text, chars())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet="AB1*^~$!\\] \n", max_size=40),
    st.sampled_from(["*^~!", "^*$\\", "]^~!", "*^\n!"]),
)
def test_agrees_with_pydifact_on_custom_separators(text: str, seps: str):
    agree(text, chars(seps[1], seps[0], seps[2], seps[3]))


_VALID = (FIXTURES / "orders_full_d96a.edi").read_text("latin-1")[9:].replace("'\n", "'")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_VALID)),
            st.sampled_from(["insert", "delete"]),
            st.text(alphabet="?+:' \nA", min_size=1, max_size=3),
        ),
        max_size=5,
    )
)
def test_agrees_with_pydifact_on_a_mutated_interchange(mutations: list[tuple[int, str, str]]):
    text = _VALID
    for pos, kind, chunk in mutations:
        text = (
            text[:pos] + chunk + text[pos:]
            if kind == "insert"
            else text[:pos] + text[pos + len(chunk) :]
        )
    agree(text, chars())
