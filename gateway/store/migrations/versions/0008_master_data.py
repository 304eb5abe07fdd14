"""master data: items, item cross references, prices, stock, accounts, stock reservations

Revision ID: 0008
Revises: 0007

What the order rules decide with (issue 10), loaded by `gateway data import KIND FILE`.
Every row records its source (the import file's name, or erp:<connector>) and updated_at.
Stock's `reserved` only moves through conditional updates (gateway.store.masterdata.StockKeeper)
so two orders can never take the same last unit, also across nodes.

"""
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def QTY() -> sa.Numeric[Decimal]:  # noqa: N802 - reads like the column type it is
    return sa.Numeric(18, 4)


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("gtin", sa.String(20), nullable=True),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("base_uom", sa.String(10), nullable=False),
        sa.Column("uoms", sa.JSON(), nullable=False),
        sa.Column("pack_size", QTY(), nullable=True),
        sa.Column("weight_kg", QTY(), nullable=True),
        sa.Column("length_cm", QTY(), nullable=True),
        sa.Column("width_cm", QTY(), nullable=True),
        sa.Column("height_cm", QTY(), nullable=True),
        sa.Column("discontinued", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_items")),
    )
    op.create_index(op.f("ix_items_gtin"), "items", ["gtin"])
    op.create_index(op.f("ix_items_source"), "items", ["source"])

    op.create_table(
        "item_xrefs",
        sa.Column("partner", sa.String(100), nullable=False),
        sa.Column("buyer_part_number", sa.String(100), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("partner", "buyer_part_number", name=op.f("pk_item_xrefs")),
    )
    op.create_index(op.f("ix_item_xrefs_sku"), "item_xrefs", ["sku"])
    op.create_index(op.f("ix_item_xrefs_source"), "item_xrefs", ["source"])

    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("customer", sa.String(100), nullable=False),
        sa.Column("price_list", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("unit_price", QTY(), nullable=False),
        sa.Column("uom", sa.String(10), nullable=True),
        sa.Column("min_quantity", QTY(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("key", name=op.f("uq_prices_key")),
    )
    op.create_index(op.f("ix_prices_sku"), "prices", ["sku"])
    op.create_index(op.f("ix_prices_source"), "prices", ["source"])

    op.create_table(
        "stock",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("warehouse", sa.String(50), nullable=False),
        sa.Column("on_hand", QTY(), nullable=False),
        sa.Column("reserved", QTY(), nullable=False, server_default="0"),
        sa.Column("reorder_point", QTY(), nullable=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sku", "warehouse", name=op.f("pk_stock")),
    )
    op.create_index(op.f("ix_stock_source"), "stock", ["source"])

    op.create_table(
        "accounts",
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("partner", sa.String(100), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("credit_limit", QTY(), nullable=True),
        sa.Column("open_balance", QTY(), nullable=False),
        sa.Column("payment_terms", sa.String(100), nullable=True),
        sa.Column("ship_to", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_partner"), "accounts", ["partner"])
    op.create_index(op.f("ix_accounts_email"), "accounts", ["email"])
    op.create_index(op.f("ix_accounts_source"), "accounts", ["source"])

    op.create_table(
        "stock_reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("line", sa.String(50), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("warehouse", sa.String(50), nullable=False),
        sa.Column("quantity", QTY(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_reservations")),
        sa.UniqueConstraint("order_id", "line", "warehouse", name="uq_stock_reservations_order_line"),
    )
    op.create_index(op.f("ix_stock_reservations_order_id"), "stock_reservations", ["order_id"])
    op.create_index("ix_stock_reservations_sku", "stock_reservations", ["sku", "warehouse"])


def downgrade() -> None:
    for table in ("stock_reservations", "accounts", "stock", "prices", "item_xrefs", "items"):
        op.drop_table(table)
