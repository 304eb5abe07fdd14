"""Fixture data for the Tryton test server, written once into the cached database (proteus).

A company (USD) the admin user works in, sales invoiced manually (so no chart of accounts is
needed) and shipped on order, the customer party ACME with an address, and salable goods:
WID-1 (unit), GAD-9 (kilogram), SKU-1 .. SKU-20 (unit). Run by scripts/services/tryton-test.sh
with the Tryton venv's python: ``python tryton_fixture.py trytond.conf``.
"""

import sys
from decimal import Decimal

from proteus import Model, config

from trytond.modules.company.tests.tools import create_company

conf = sys.argv[1]
config.set_trytond("erp", config_file=conf)

create_company()

Configuration = Model.get("sale.configuration")
sale_config = Configuration(1)
sale_config.sale_invoice_method = "manual"
sale_config.sale_shipment_method = "order"
sale_config.save()

Uom = Model.get("product.uom")
unit, = Uom.find([("name", "=", "Unit")])
kilogram, = Uom.find([("name", "=", "Kilogram")])

Template = Model.get("product.template")


def product(code: str, name: str, uom, price: str) -> None:
    template = Template(name=name, code=code, type="goods", default_uom=uom, salable=True, sale_uom=uom,
                        list_price=Decimal(price))
    template.save()


product("WID-1", "Widget", unit, "2.50")
product("GAD-9", "Gadget", kilogram, "19.99")
for n in range(1, 21):
    product(f"SKU-{n}", f"Stock item {n}", unit, "9.99")

Party = Model.get("party.party")
acme = Party(name="Acme Retail", code="ACME")
acme.addresses[0].street = "1 Main Street"
acme.addresses[0].city = "Springfield"
acme.addresses[0].postal_code = "12345"
acme.save()
print("fixture written")
