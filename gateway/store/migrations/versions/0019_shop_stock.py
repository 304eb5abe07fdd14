"""shop_stock: the stock level last published to each shop per SKU (issue 13)

Revision ID: 0019_shop_stock
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_shop_stock"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_stock",
        sa.Column("shop", sa.String(length=100), primary_key=True),
        sa.Column("sku", sa.String(length=100), primary_key=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shop_stock")
