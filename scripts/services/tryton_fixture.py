"""Fixture data for the Tryton test server, written once into the cached database (proteus).

A company (USD) the admin user works in, sales invoiced manually and shipped on order, the
customer party ACME with an address, and salable goods: WID-1 (unit), GAD-9 (kilogram),
SKU-1 .. SKU-20 (unit). For invoices coming back (gateway.tracking): the minimal chart of
accounts, fiscal years 2024-2032 with monthly periods and invoice sequences, and the goods'
account category (revenue account, a 10 % customer tax "Tax 0.10"), so a test can invoice a sale
(invoice method "order") and post the invoice. Sales the gateway creates carry no taxes and
stay invoiced manually. Run by scripts/services/tryton-test.sh
with the Tryton venv's python: ``python tryton_fixture.py trytond.conf``.
"""

import sys
from decimal import Decimal

from proteus import Model, config

import datetime as dt

from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, create_tax, get_accounts
from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences
from trytond.modules.company.tests.tools import create_company

conf = sys.argv[1]
config.set_trytond("erp", config_file=conf)

create_company()
create_chart()
# A fiscal year for each of several years: the cached database outlives the year it was built
# in (one year per call: SQLite cannot validate a hundred periods at once).
for year in range(2024, 2033):
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(today=(dt.date(year, 1, 1), dt.date(year, 12, 31))))
    fiscalyear.click("create_period")
accounts = get_accounts()
tax = create_tax(Decimal("0.10"))
tax.save()
Category = Model.get("product.category")
goods = Category(name="Goods", accounting=True, account_revenue=accounts["revenue"], account_expense=accounts["expense"])
goods.customer_taxes.append(tax)
goods.save()

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
                        list_price=Decimal(price), account_category=goods)
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
