"""order_routes: the route of each accepted order (issue 10: warehouse, carrier, parts)

Revision ID: 0011
Revises: 0010_teams
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_routes",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_routes"),
    )


def downgrade() -> None:
    op.drop_table("order_routes")
