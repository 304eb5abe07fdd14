"""Builds small, valid X12 850 interchanges for tests (counts and control numbers right)."""

from __future__ import annotations


def po(po_number: str, lines: list[tuple[str, str, str]] | None = None, *, st: str = "0001", purpose: str = "00", date: str = "20261127") -> list[str]:
    """One ST..SE transaction set; lines are (quantity, price, sku)."""
    lines = lines or [("2", "9.99", "SKU-1")]
    body = [f"ST*850*{st}", f"BEG*{purpose}*SA*{po_number}**{date}", "N1*ST*Store 1*92*S001"]
    for i, (qty, price, sku) in enumerate(lines, 1):
        body.append(f"PO1*{i}*{qty}*EA*{price}*PE*VP*{sku}")
    body.append(f"CTT*{len(lines)}")
    body.append(f"SE*{len(body) + 1}*{st}")
    return body


def interchange(transactions: list[list[str]], *, icn: str = "000000001", sender: str = "ACMERETAIL", gcn: str = "1") -> str:
    isa = f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*WIDGETCO       *261127*0930*U*00401*{icn}*0*P*>"
    segs = [isa, f"GS*PO*{sender}*WIDGETCO*20261127*0930*{gcn}*X*004010"]
    for tx in transactions:
        segs.extend(tx)
    segs += [f"GE*{len(transactions)}*{gcn}", f"IEA*1*{icn}"]
    return "~\n".join(segs) + "~\n"


def file_with_orders(po_numbers: list[str], *, icn: str = "000000001", sender: str = "ACMERETAIL") -> bytes:
    txs = [po(n, st=f"{i + 1:04d}") for i, n in enumerate(po_numbers)]
    return interchange(txs, icn=icn, sender=sender).encode()
