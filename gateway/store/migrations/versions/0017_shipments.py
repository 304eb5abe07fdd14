"""shipments: shipments and invoices recorded on orders (issues 11 and 13)

Revision ID: 0017_shipments
Revises: 0015_alerts
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_shipments"
down_revision = "0015_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(length=36), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=True),
        sa.Column("service", sa.String(length=60), nullable=True),
        sa.Column("tracking", sa.String(length=400), nullable=True),
        sa.Column("number", sa.String(length=60), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("total", sa.Numeric(18, 4), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shipments_order_id", table_name="shipments")
    op.drop_table("shipments")
