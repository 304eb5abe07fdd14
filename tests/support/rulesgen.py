"""A seeded mix of orders for the rules' end-to-end tests: master data as CSV files, X12 850 and
cXML orders whose expected decision, reason codes and 855 line codes are known.

Every order's quantities derive from its index, so no two orders share content by accident
(the duplicates rule would rightly hold them); the `dup` pairs share it on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

Line = tuple[str, str, str, str | None, str | None]  # quantity, uom, price ('' none), sku, buyer part

ITEMS = """sku,description,gtin,base_uom,uoms,pack_size,discontinued
W-1,Blue widget,00012345678905,EA,CA=12,,false
W-2,Red gadget,,EA,,,false
W-OLD,Old widget,,EA,,,true
W-PACK,Widget in packs of 6,,EA,,6,false
W-BIG,Big machine,,EA,,,false
TSHIRT-BLK-M,T-shirt black M,,EA,,,false
ESPRESSO-01,Espresso machine,,EA,,,false
"""
XREFS = "partner,buyer_part_number,sku\nacme,BP-1,W-2\n"
PRICES = """sku,unit_price,currency,uom,customer
W-1,10.00,USD,,
W-2,5.00,USD,,
W-OLD,1.00,USD,,
W-PACK,2.00,USD,,
W-BIG,1000.00,USD,,
TSHIRT-BLK-M,19.99,USD,,
ESPRESSO-01,199.99,USD,,
"""
ACCOUNTS = """code,name,partner,email,credit_limit,open_balance
ACME,Acme Retail,acme,buyer@acme.example,10000000,0
SMALL,Small Shop,,,500,100
WEB,Jane Doe,,jane.doe@example.com,,
NEWBIE,New Customer,,new@example.com,,
"""

RULES = """\
{masterdata}rules:
  - type: required_fields
    channels: [shopify, woocommerce]
    fields: [customer_email, ship_to]
  - type: address
    po_box_carriers: [UPSN]
  - type: catalogue
  - type: price
    tolerance_percent: 1
  - type: payment
  - type: credit
  - type: risk
    hold_above: 50000
  - type: duplicates
  - type: expression
    name: remote region
    when: 'ship_region == "AK"'
    code: REMOTE_REGION
    message: Alaska goes by freight forwarder; check the carrier
"""


def write_masterdata(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("items", ITEMS), ("xrefs", XREFS), ("prices", PRICES), ("accounts", ACCOUNTS)):
        (folder / f"{name}.csv").write_text(text)
    return folder


@dataclass
class Ship:
    street: str = "17 Market Square"
    city: str = "Dayton"
    region: str = "OH"
    postal: str = "45402"
    country: str = "US"


def x12_850(po: str, lines: list[Line], *, icn: int, ship: Ship | None = None, buyer: str | None = None, carrier: str | None = None, total: str | None = None) -> bytes:
    ship = ship or Ship()
    body = ["ST*850*0001", f"BEG*00*SA*{po}**20261201", "CUR*BY*USD"]
    if carrier:
        body.append(f"TD5*B*2*{carrier}*M*CARRIER")
    if buyer:
        body.append(f"N1*BY*Buyer {buyer}*92*{buyer}")
    body += ["N1*ST*Store*92*S1", f"N3*{ship.street}", f"N4*{ship.city}*{ship.region}*{ship.postal}*{ship.country}"]
    for n, (qty, uom, price, sku, bp) in enumerate(lines, 1):
        ids = (f"*VP*{sku}" if sku else "") + (f"*BP*{bp}" if bp else "")
        body.append(f"PO1*{n}*{qty}*{uom}*{price}*{'PE' if price else ''}{ids}")
    body.append(f"CTT*{len(lines)}")
    if total:
        body.append(f"AMT*TT*{total}")
    body.append(f"SE*{len(body) + 1}*0001")
    isa = f"ISA*00*          *00*          *ZZ*{'ACMERETAIL':<15}*ZZ*WIDGETCO       *261201*0930*U*00401*{icn:09d}*0*P*>"
    segs = [isa, f"GS*PO*ACMERETAIL*WIDGETCO*20261201*0930*{icn}*X*004010", *body, f"GE*1*{icn}", f"IEA*1*{icn:09d}"]
    return ("~\n".join(segs) + "~\n").encode()


def cxml_order(po: str, lines: list[Line], *, ship: Ship | None = None) -> bytes:
    ship = ship or Ship()
    items = "".join(
        f'<ItemOut lineNumber="{n}" quantity="{qty}"><ItemID><SupplierPartID>{escape(sku or "")}</SupplierPartID></ItemID>'
        f'<ItemDetail><UnitPrice><Money currency="USD">{price}</Money></UnitPrice><Description xml:lang="en">item</Description>'
        f"<UnitOfMeasure>{uom}</UnitOfMeasure></ItemDetail></ItemOut>"
        for n, (qty, uom, price, sku, _bp) in enumerate(lines, 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<cXML payloadID="{po}@acme.example" timestamp="2026-12-01T09:30:00+00:00"><Header>'
        '<From><Credential domain="NetworkID"><Identity>AN0100000001</Identity></Credential></From>'
        '<To><Credential domain="NetworkID"><Identity>AN0100000999</Identity></Credential></To>'
        '<Sender><Credential domain="NetworkID"><Identity>AN0100000001</Identity></Credential><UserAgent>t</UserAgent></Sender>'
        f'</Header><Request><OrderRequest><OrderRequestHeader orderID="{po}" orderDate="2026-12-01" type="new">'
        f'<ShipTo><Address isoCountryCode="{ship.country}"><Name xml:lang="en">Store</Name><PostalAddress><Street>{escape(ship.street)}</Street>'
        f"<City>{ship.city}</City><State>{ship.region}</State><PostalCode>{ship.postal}</PostalCode>"
        f'<Country isoCountryCode="{ship.country}">X</Country></PostalAddress></Address></ShipTo>'
        f"</OrderRequestHeader>{items}</OrderRequest></Request></cXML>\n"
    ).encode()


@dataclass
class Case:
    """One generated order and what the rules must decide about it."""

    name: str
    po: str
    file: str
    body: bytes
    outcome: str  # accept | hold | reject
    codes: list[str] = field(default_factory=list)  # reason codes of the deciding findings
    bak: str | None = None  # expected 855 BAK02 (None: no 855)
    acks: list[str] = field(default_factory=list)  # expected ACK01 per listed line


def _x12(name: str, outcome: str, codes: list[str], bak: str | None, acks: Callable[[int], list[str]] | list[str], make: Callable[[int], tuple[list[Line], dict[str, object]]]) -> Callable[[int], Case]:
    def build(i: int) -> Case:
        lines, kw = make(i)
        po = f"PO-{name}-{i:04d}"
        return Case(name, po, f"{i:05d}-{name}.edi", x12_850(po, lines, icn=i + 1, **kw), outcome, codes, bak, acks(i) if callable(acks) else acks)  # type: ignore[arg-type]

    return build


def _q(i: int) -> str:
    return str(1 + i)


X12_CASES: list[Callable[[int], Case]] = [
    _x12("normal", "accept", [], "AT", ["IA", "IA"], lambda i: ([(_q(i), "EA", "10.00", "W-1", None), ("2", "EA", "5.00", "W-2", None)], {})),
    _x12("unknown", "reject", ["UNKNOWN_SKU"], "RD", ["IR", "IR"], lambda i: ([("1", "EA", "10.00", "W-1", None), (_q(i), "EA", "3.00", "NOSUCHSKU-XYZ", None)], {})),
    _x12("discontinued", "reject", ["DISCONTINUED"], "RD", ["IR"], lambda i: ([(_q(i), "EA", "1.00", "W-OLD", None)], {})),
    _x12("uom", "reject", ["UOM_NOT_SOLD"], "RD", ["IR"], lambda i: ([(_q(i), "PL", "10.00", "W-1", None)], {})),
    _x12("pack", "hold", ["PACK_SIZE_MULTIPLE"], None, [], lambda i: ([(str(6 * (i + 1) + 1), "EA", "2.00", "W-PACK", None)], {})),
    _x12("priceoff", "hold", ["PRICE_OFF_LIST"], None, [], lambda i: ([(_q(i), "EA", "12.00", "W-1", None)], {})),
    _x12("postal", "hold", ["POSTAL_CODE_FORMAT"], None, [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"ship": Ship(postal="ABCDE")})),
    _x12("country", "reject", ["COUNTRY_UNKNOWN"], "RJ", [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"ship": Ship(country="ZZ", postal="99999")})),
    _x12("nohouse", "hold", ["HOUSE_NUMBER_MISSING"], None, [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"ship": Ship(street="Market Square")})),
    _x12("pobox", "hold", ["PO_BOX_NOT_DELIVERABLE"], None, [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"ship": Ship(street="PO Box 12"), "carrier": "UPSN"})),
    _x12("credit", "hold", ["CREDIT_EXCEEDED"], None, [], lambda i: ([(str(50 + i), "EA", "10.00", "W-1", None)], {"buyer": "SMALL"})),
    _x12("highvalue", "hold", ["HIGH_VALUE"], None, [], lambda i: ([(str(60 + i), "EA", "1000.00", "W-BIG", None)], {})),
    _x12("noprice", "accept", [], "AC", ["IP"], lambda i: ([(_q(i), "EA", "", "W-1", None)], {})),
    _x12("xref", "accept", [], "AT", ["IA"], lambda i: ([(_q(i), "EA", "5.00", None, "BP-1")], {})),
    _x12("total", "hold", ["TOTAL_MISMATCH"], None, [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"total": f"{(1 + i) * 10 + 7}.00"})),
    _x12("remote", "hold", ["REMOTE_REGION"], None, [], lambda i: ([(_q(i), "EA", "10.00", "W-1", None)], {"ship": Ship(street="1 Harbor Rd", city="Anchorage", region="AK", postal="99501")})),
]


def x12_mix(rounds: int, start: int = 0) -> list[Case]:
    """`rounds` orders of each X12 case (ids from `start`)."""
    out = []
    i = start
    for _ in range(rounds):
        for make in X12_CASES:
            out.append(make(i))
            i += 1
    return out


def cross_channel_pair(i: int) -> tuple[Case, Case]:
    """The same order from Acme by EDI and by cXML (another PO number): one is a duplicate."""
    lines: list[Line] = [(str(700 + i), "EA", "10.00", "W-1", None)]
    edi = Case("dup-edi", f"PO-dup-{i:04d}", f"{i:05d}-dup.edi", x12_850(f"PO-dup-{i:04d}", lines, icn=90000 + i), "accept", [], "AT", ["IA"])
    cx = Case("dup-cxml", f"CX-dup-{i:04d}", f"{i:05d}-dup.xml", cxml_order(f"CX-dup-{i:04d}", lines), "hold", ["DUPLICATE_CONTENT"])
    return edi, cx


def shopify_order(base: dict[str, object], name: str, *, email: str | None, status: str = "paid", espresso: int = 1, bill_country: str = "US") -> tuple[str, bytes]:
    """The Shopify fixture order with another customer, payment status and quantity; totals add up."""
    import copy
    import json

    order: dict[str, Any] = copy.deepcopy(base)  # type: ignore[assignment]
    order["name"], order["id"], order["email"], order["contact_email"] = name, abs(hash(name)) % 10**12, email, email
    order["financial_status"] = status
    items = order["line_items"]
    for item in items:
        if item["sku"] == "ESPRESSO-01":
            item["quantity"] = espresso
    lines = sum(Decimal(str(i["price"])) * i["quantity"] for i in items)
    order["total_line_items_price"] = order["subtotal_price"] = str(lines)
    order["total_price"] = str(lines + Decimal(str(order["total_tax"])) + Decimal("9.95") - Decimal(str(order["total_discounts"])))
    order["billing_address"] = {**order["billing_address"], "country_code": bill_country}
    if order.get("customer"):
        order["customer"] = {**order["customer"], "email": email}
    return f"{name.strip('#')}.json", json.dumps(order).encode()


def config(tmp: Path, *, outbound: Path, store_url: str | None = None, masterdata_in_store: bool = False) -> Path:
    """A gateway configuration with the rules, the master data and partner acme (855s on).
    `masterdata_in_store`: no masterdata folder; the CSV files are for `gateway data import`."""
    folder = write_masterdata(tmp / "masterdata")
    (tmp / "inbox").mkdir(exist_ok=True)
    cfg = tmp / "gateway.yaml"
    cfg.write_text(
        f"""\
store:
  url: {store_url or f"sqlite:///{tmp / 'gateway.db'}"}
sources:
  - type: folder
    name: inbox
    path: {tmp / 'inbox'}
    archive: {tmp / 'archive'}
    failed: {tmp / 'failed'}
    poll_seconds: 0.2
    stable_seconds: 0
connectors:
  - type: file
    name: outbox
    path: {tmp / 'outbox'}
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    cxml_ids: ["NetworkID:AN0100000001"]
    acks:
      functional: false
      order_response: true
      outbound: {outbound}
processing:
  poll_seconds: 0.2
dispatch:
  poll_seconds: 0.2
"""
        + RULES.format(masterdata="" if masterdata_in_store else f"masterdata:\n  folder: {folder}\n")
    )
    return cfg


def read_855s(folder: Path) -> dict[str, tuple[str, list[str]]]:
    """PO number -> (BAK02, ACK01 of every listed line) of the 855s written to `folder`."""
    out: dict[str, tuple[str, list[str]]] = {}
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        for tx in text.split("ST*855*")[1:]:
            segs = [s.strip() for s in tx.split("~")]
            bak = next(s.split("*") for s in segs if s.startswith("BAK*"))
            acks = [s.split("*")[1] for s in segs if s.startswith("ACK*")]
            out[bak[3]] = (bak[2], acks)
    return out
