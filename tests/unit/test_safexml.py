"""parse_xml: the attacks of reliability.md X1-X3 are refused, nothing is ever fetched.

Every attack test plants a canary (a file, or a TCP server on 127.0.0.1) that the document
points at, and checks that the canary's content appears nowhere (error message, position,
logs) and that the server saw no connection.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import io
import logging
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.errors import MappingError, ParseError
from gateway.formats.safexml import (
    MAX_BYTES,
    RootTag,
    XPaths,
    parse_xml,
    read_limited,
    sniff_root,
    xs_date,
    xs_decimal,
)

CANARY = "CANARY-7d1e0b-passwd-like"


@pytest.fixture
def canary_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f"root:x:0:0:{CANARY}:/root:/bin/bash\n")
    return path


@pytest.fixture
def canary_dtd(tmp_path: Path) -> Path:
    path = tmp_path / "evil.dtd"
    path.write_text(f'<!ENTITY c "{CANARY}">\n')
    return path


class _Listener:
    """A TCP server on 127.0.0.1 that counts connections (a DTD host that must stay unasked)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    try:
        yield server
    finally:
        server.close()


def refused(
    data: bytes, reason: str, caplog: pytest.LogCaptureFixture, **limits: int
) -> ParseError:
    with caplog.at_level(logging.DEBUG), pytest.raises(ParseError) as info:
        parse_xml(data, **limits)
    exc = info.value
    assert exc.reason == reason, (exc.reason, exc.message)
    assert exc.message and exc.position
    for text in (str(exc), exc.message, exc.position, caplog.text):
        assert CANARY not in text
        assert "root:x:0:0" not in text
    return exc


# -- X1: XXE, parameter entities, external DTDs ---------------------------------------------------


def test_xxe_file_entity_is_refused(canary_file: Path, caplog: pytest.LogCaptureFixture):
    doc = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{canary_file}">]><x>&e;</x>'
    exc = refused(doc.encode(), "XML_FORBIDDEN", caplog)
    assert "declares entities" in exc.message
    assert exc.position == "line 1"


def test_xxe_etc_passwd_is_refused(caplog: pytest.LogCaptureFixture):
    doc = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    exc = refused(doc, "XML_FORBIDDEN", caplog)
    assert "root:" not in str(exc)


def test_xxe_in_attribute_is_refused(canary_file: Path, caplog: pytest.LogCaptureFixture):
    doc = f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{canary_file}">]><x a="&e;"/>'
    refused(doc.encode(), "XML_FORBIDDEN", caplog)


def test_parameter_entity_is_refused(canary_dtd: Path, caplog: pytest.LogCaptureFixture):
    doc = f'<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{canary_dtd}"> %p;]><x>&c;</x>'
    refused(doc.encode(), "XML_FORBIDDEN", caplog)


def test_parameter_entity_over_the_network_is_refused_unasked(
    listener: _Listener, caplog: pytest.LogCaptureFixture
):
    url = f"http://127.0.0.1:{listener.port}/evil.dtd"
    doc = f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{url}"> %p;]><x>&c;</x>'
    refused(doc.encode(), "XML_FORBIDDEN", caplog)
    assert listener.connections == 0


def test_network_dtd_with_internal_subset_is_refused(
    listener: _Listener, caplog: pytest.LogCaptureFixture
):
    url = f"http://127.0.0.1:{listener.port}/cXML.dtd"
    doc = f'<!DOCTYPE cXML SYSTEM "{url}" [<!ENTITY x "y">]><cXML>&x;</cXML>'
    exc = refused(doc.encode(), "XML_FORBIDDEN", caplog)
    assert "DOCTYPE" in exc.message
    assert listener.connections == 0


def test_internal_subset_without_entities_is_refused(caplog: pytest.LogCaptureFixture):
    exc = refused(b"<!DOCTYPE x [<!ELEMENT x ANY>]><x/>", "XML_FORBIDDEN", caplog)
    assert "internal DTD subset" in exc.message


def test_external_dtd_is_accepted_but_never_fetched(listener: _Listener):
    url = f"http://127.0.0.1:{listener.port}/schemas/cXML/1.2.014/cXML.dtd"
    root = parse_xml(f'<!DOCTYPE cXML SYSTEM "{url}"><cXML payloadID="1"/>'.encode())
    assert root.tag == "cXML"
    assert root.getroottree().docinfo.system_url == url
    assert listener.connections == 0


def test_entity_from_an_unloaded_external_dtd_is_refused(
    canary_dtd: Path, caplog: pytest.LogCaptureFixture
):
    # Without the check, libxml2 keeps &c; as an unresolved node (text) or drops it (attribute).
    for body in ("<x>&c;</x>", '<x a="&c;"/>'):
        doc = f'<!DOCTYPE x SYSTEM "file://{canary_dtd}">{body}'
        exc = refused(doc.encode(), "XML_FORBIDDEN", caplog)
        assert "&c;" in exc.message


def test_entity_like_text_in_comments_and_cdata_is_fine():
    doc = b'<!DOCTYPE x SYSTEM "x.dtd"><x><!-- &nbsp; --><![CDATA[&c;]]>&amp;&#65;&lt;</x>'
    assert parse_xml(doc).text == "&c;&A<"


def test_undeclared_entity_without_doctype_is_a_syntax_error(caplog: pytest.LogCaptureFixture):
    exc = refused(b"<x>&nbsp;</x>", "XML_SYNTAX", caplog)
    assert "nbsp" in exc.message
    assert exc.position == "line 1, column 10"


def test_utf16_xxe_is_refused(canary_file: Path, caplog: pytest.LogCaptureFixture):
    doc = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{canary_file}">]><x>&e;</x>'
    refused(doc.encode("utf-16"), "XML_FORBIDDEN", caplog)


def test_odd_doctype_is_refused(caplog: pytest.LogCaptureFixture):
    refused(b'<!DOCTYPE x PUBLIC "only-one-literal"><x/>', "XML_FORBIDDEN", caplog)


# -- X2: billion laughs, quadratic blow-up --------------------------------------------------------


def test_billion_laughs_is_refused(caplog: pytest.LogCaptureFixture):
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    doc = f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]><lolz>&a9;</lolz>'
    refused(doc.encode(), "XML_FORBIDDEN", caplog)


def test_quadratic_blowup_is_refused(caplog: pytest.LogCaptureFixture):
    doc = f'<!DOCTYPE x [<!ENTITY a "{"x" * 50_000}">]><x>{"&a;" * 1000}</x>'
    refused(doc.encode(), "XML_FORBIDDEN", caplog)


# -- X3: limits ---------------------------------------------------------------------------------


def test_300_deep_document_is_refused(caplog: pytest.LogCaptureFixture):
    exc = refused(b"<a>" * 300 + b"</a>" * 300, "XML_LIMIT", caplog)
    assert "deep" in exc.message.lower() or "depth" in exc.message.lower()


def test_depth_limit_is_ours_below_libxml2s(caplog: pytest.LogCaptureFixture):
    exc = refused(b"<a>" * 70 + b"</a>" * 70, "XML_LIMIT", caplog)
    assert "64 levels" in exc.message
    parse_xml(b"<a>" * 70 + b"</a>" * 70, max_depth=80)
    refused(b"<a>" * 11 + b"</a>" * 11, "XML_LIMIT", caplog, max_depth=10)


def test_20_mb_text_node_is_refused_before_parsing(caplog: pytest.LogCaptureFixture):
    exc = refused(b"<a>" + b"x" * (20 * 1024 * 1024) + b"</a>", "XML_LIMIT", caplog)
    assert f"{MAX_BYTES:,}" in exc.message


def test_20_mb_text_node_is_refused_by_libxml2_under_a_raised_limit(
    caplog: pytest.LogCaptureFixture,
):
    data = b"<a>" + b"x" * (20 * 1024 * 1024) + b"</a>"
    exc = refused(data, "XML_LIMIT", caplog, max_bytes=64 * 1024 * 1024)
    assert "Text node too long" in exc.message


def test_read_limited_reads_no_more_than_the_limit_plus_one():
    class Counting(io.BytesIO):
        asked = 0

        def read(self, size: int | None = -1) -> bytes:
            Counting.asked = size or -1
            return super().read(size)

    stream = Counting(b"<a>" + b"x" * 5000 + b"</a>")
    with pytest.raises(ParseError) as info:
        read_limited(stream, max_bytes=1000)
    assert info.value.reason == "XML_LIMIT"
    assert Counting.asked == 1001
    assert read_limited(io.BytesIO(b"<a/>"), max_bytes=4) == b"<a/>"


def test_read_limited_handles_short_reads():
    class Trickle:
        def __init__(self, data: bytes):
            self.data = data

        def read(self, size: int = -1) -> bytes:
            chunk, self.data = self.data[:7], self.data[7:]
            return chunk

    doc = b"<a>" + b"x" * 100 + b"</a>"
    assert read_limited(Trickle(doc), max_bytes=1000) == doc
    with pytest.raises(ParseError) as info:
        read_limited(Trickle(b"x" * 2000), max_bytes=1000)
    assert info.value.reason == "XML_LIMIT"


# -- syntax --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "position"),
    [
        (b"<a>\n<b></a>", "line 2, column 8"),
        (b"<a>", "line 1, column 4"),
        (b"not xml at all", "line 1, column 1"),
        (b"<a></a><b/>", "line 1, column 8"),
    ],
)
def test_syntax_errors_say_where(data: bytes, position: str, caplog: pytest.LogCaptureFixture):
    exc = refused(data, "XML_SYNTAX", caplog)
    assert exc.position == position
    assert exc.message.startswith("the input is not well-formed XML")


def test_empty_input(caplog: pytest.LogCaptureFixture):
    assert refused(b" \n\t", "XML_SYNTAX", caplog).message == "the input is empty"


def test_text_is_refused_bytes_are_wanted():
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


def test_comments_are_removed_and_encodings_honoured():
    root = parse_xml(
        '<?xml version="1.0" encoding="ISO-8859-1"?><a><!-- x -->é</a>'.encode("latin-1")
    )
    assert root.text == "é"
    assert len(root) == 0
    assert parse_xml(codecs.BOM_UTF8 + "<a>ü</a>".encode()).text == "ü"
    assert parse_xml("<a>ü</a>".encode("utf-16")).text == "ü"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_parse_error(data: bytes):
    try:
        parse_xml(data)
    except ParseError as exc:
        assert exc.reason in ("XML_SYNTAX", "XML_FORBIDDEN", "XML_LIMIT")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_documents_parse_or_raise_parse_error(data: st.DataObject):
    base = bytearray(
        b'<?xml version="1.0"?><!DOCTYPE cXML SYSTEM "http://x/cXML.dtd">'
        b'<cXML payloadID="1"><Request><OrderRequest a="&amp;">t</OrderRequest></Request></cXML>'
    )
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(base) - 1))
        base[at] = data.draw(st.sampled_from(list(b"<>&;[]!%\"'x\x00\xff")))
    with contextlib.suppress(ParseError):
        parse_xml(bytes(base))


# -- sniffing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"<cXML payloadID='1'>", RootTag(None, "cXML", None)),
        (b'\xef\xbb\xbf\n  <?xml version="1.0"?>\n<!-- c -->\n<cXML>', RootTag(None, "cXML", None)),
        (
            b'<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.014/cXML.dtd"><cXML>',
            RootTag(None, "cXML", None),
        ),
        (b'<!DOCTYPE x [<!ENTITY e "v">]>\n<x>', RootTag(None, "x", None)),
        (
            b'<Order xmlns:cbc="urn:cbc" xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2">',
            RootTag(None, "Order", "urn:oasis:names:specification:ubl:schema:xsd:Order-2"),
        ),
        (
            b"<ord:Order xmlns:ord='urn:o'\n xmlns='urn:default'>",
            RootTag("ord", "Order", "urn:o"),
        ),
        ("<cXML>".encode("utf-16"), RootTag(None, "cXML", None)),
    ],
)
def test_sniff_root(head: bytes, expected: RootTag):
    assert sniff_root(head) == expected


@pytest.mark.parametrize("head", [b"", b"ISA*00*", b"<!-- never closed", b"<?xml", b"{}", b"<1a>"])
def test_sniff_root_gives_none_for_non_xml(head: bytes):
    assert sniff_root(head) is None


def test_sniff_root_looks_only_at_the_first_4_kb():
    assert sniff_root(b"<!--" + b"x" * 5000 + b"--><cXML>") is None


# -- paths and values ----------------------------------------------------------------------------


def test_xpaths_index_repeated_and_listed_names():
    root = etree.fromstring(
        b'<r xmlns:c="urn:c"><c:L><v>1</v></c:L><c:L><v>2</v><w>3</w></c:L><one><v/></one></r>'
    )
    paths = XPaths({"urn:c": "cac"}, frozenset({"one"}))
    second = root[1]
    assert paths.of(second[0]) == "/r/cac:L[2]/v"
    assert paths.of(root[2][0]) == "/r/one[1]/v"
    used = {second[0]}
    assert list(paths.leaves(root, used)) == ["/r/cac:L[1]/v=1", "/r/cac:L[2]/w=3"]


def test_xs_decimal():
    assert xs_decimal(" 12.50 ", "/p") == Decimal("12.50")
    assert xs_decimal("-.5", "/p") == Decimal("-0.5")
    for bad in ("1e3", "NaN", "1,5", "1 000", "", "Infinity", "0x10", "1e999999", "9" * 17):
        with pytest.raises(MappingError) as info:
            xs_decimal(bad, "/a/@b")
        assert info.value.reason == "XML_BAD_NUMBER"
        assert info.value.position == "/a/@b"


def test_xs_date():
    assert xs_date("2025-01-27T07:35:36+00:00", "/p") == dt.date(2025, 1, 27)
    assert xs_date("2025-01-27T23:59:59-08:00", "/p") == dt.date(2025, 1, 27)
    assert xs_date("2024-02-29", "/p") == dt.date(2024, 2, 29)
    assert xs_date("2024-02-29Z", "/p") == dt.date(2024, 2, 29)
    for bad in ("2023-02-29", "27.01.2025", "20250127", "", "2025-1-2"):
        with pytest.raises(MappingError) as info:
            xs_date(bad, "/p")
        assert info.value.reason == "XML_BAD_DATE"
