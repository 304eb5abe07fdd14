"""Text we did not write, made safe to show (gateway.redact.printable)."""

from __future__ import annotations

from gateway.redact import printable


def test_unprintable_characters_are_replaced_and_the_text_cut_at_the_limit() -> None:
    sent = "PO 1\r\nX-Injected: yes\x1b[31m\u2028é"
    assert printable(sent) == "PO 1??X-Injected: yes?[31m?é"
    assert printable(sent, replacement=" ") == "PO 1  X-Injected: yes [31m é"
    assert printable(sent, 6) == "PO 1??"  # the limit counts the text's characters, as sent
    assert printable("", 3) == "" and printable("abc", 0) == ""
