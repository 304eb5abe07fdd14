"""Benchmark of the e-mail path: parse a message and extract its orders.

Run: ``.venv/bin/python bench/bench_email.py [--runs 3] [--seconds 3]``. Prints one line per
figure, the best of `--runs` timed runs:

    email+edi parse+extract: N messages/s   a ~50 KB message (multipart/mixed: a text body,
                                            an HTML alternative, an X12 850 attachment of
                                            ~36 KB raw, base64-encoded, 280 lines) through
                                            `gateway.translate.translate` to Order objects
                                            (MIME walk, sender read, X12 parse, 850 mapping)
    email+csv parse+extract: N messages/s   the same size of message carrying a CSV order
                                            read with a column template
    email parse only: N messages/s          the e-mail parser's events, no mapping

Everything runs in this process on generated, deterministic input; nothing touches a store.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.formats.email import EmailParser  # noqa: E402
from gateway.translate import PartnerDirectory, Translated, translate  # noqa: E402


def _x12(rng: random.Random, lines: int) -> bytes:
    segs = ["ST*850*0001", f"BEG*00*SA*PO{rng.randint(10**6, 10**7)}**20261127", "REF*DP*042",
            "DTM*002*20261215", "N1*ST*ACME STORE 42*92*0042", "N3*100 MAIN STREET", "N4*SPRINGFIELD*IL*62701*US"]
    for i in range(1, lines + 1):
        segs.append(f"PO1*{i}*{rng.randint(1, 99)}*EA*{rng.randint(100, 9999) / 100:.2f}*PE*VP*SKU-{rng.randint(10**5, 10**6)}*UP*0{rng.randint(10**10, 10**11)}")
        segs.append(f"PID*F****WIDGET MODEL {rng.randint(1, 999)} IN BLUE, BOX OF TWELVE, PART {i}")
        segs.append(f"DTM*002*202612{rng.randint(10, 28)}")
    segs += [f"CTT*{lines}", f"SE*{len(segs) + 2}*0001"]
    body = "~".join(segs)
    isa = "ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*OURCOMPANY     *261127*1200*U*00401*000000001*0*P*>"
    return f"{isa}~GS*PO*ACMERETAIL*OURCOMPANY*20261127*1200*1*X*004010~{body}~GE*1*1~IEA*1*000000001~".encode()


def _message(attachment: bytes, filename: str, maintype: str, subtype: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Orders <orders@partner.example>"
    m["To"] = "orders@gateway.example"
    m["Subject"] = "PO attached"
    m["Message-ID"] = "<bench.1@partner.example>"
    text = "Hello,\n\nplease find our purchase order attached.\n\n" + ("Kind regards, Purchasing\n" * 40)
    m.set_content(text)
    m.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    m.make_mixed()
    m.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def _csv(rng: random.Random, lines: int) -> bytes:
    rows = ["PO Number,Item,Description,Qty,Unit Price"]
    for _ in range(lines):
        rows.append(f"PO-77001,SKU-{rng.randint(10**5, 10**6)},Widget model {rng.randint(1, 999)} in blue,{rng.randint(1, 99)},{rng.randint(100, 9999) / 100:.2f}")
    return ("\r\n".join(rows) + "\r\n").encode()


def _rate(fn: Callable[[], None], seconds: float, runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    rng = random.Random(850)
    edi_mail = _message(_x12(rng, 280), "po.x12", "application", "edi-x12")
    csv_mail = _message(_csv(rng, 640), "po.csv", "text", "csv")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "partner"
        folder.mkdir()
        (folder / "email.yaml").write_text(
            "table:\n  columns:\n    po_number: [PO Number]\n    lines.sku: [Item]\n"
            "    lines.description: [Description]\n    lines.quantity: [Qty]\n    lines.unit_price: [Unit Price]\n"
        )

        class _Partner:
            name = "partner"
            x12_ids: list[str] = []
            edifact_ids: list[str] = []
            cxml_ids: list[str] = []
            ubl_ids: list[str] = []

        directory = PartnerDirectory([_Partner()], mappings_root=Path(tmp))

        def run_edi() -> None:
            out = [e for e in translate(io.BytesIO(edi_mail), format="email") if isinstance(e, Translated)]
            assert len(out) == 1 and len(out[0].order.lines) == 280, out

        def run_csv() -> None:
            out = [e for e in translate(io.BytesIO(csv_mail), format="email", partner="partner", partners=directory) if isinstance(e, Translated)]
            assert len(out) == 1 and len(out[0].order.lines) == 640, out

        parser = EmailParser()

        def run_parse() -> None:
            for _ in parser.parse(io.BytesIO(edi_mail)):
                pass

        print(f"message sizes: EDI {len(edi_mail) / 1024:.0f} KB, CSV {len(csv_mail) / 1024:.0f} KB")
        print(f"email+edi parse+extract: {_rate(run_edi, args.seconds, args.runs):,.0f} messages/s")
        print(f"email+csv parse+extract: {_rate(run_csv, args.seconds, args.runs):,.0f} messages/s")
        print(f"email parse only: {_rate(run_parse, args.seconds, args.runs):,.0f} messages/s")


if __name__ == "__main__":
    main()
