"""outbox parts: one delivery per part of a split order (issue 10, routing)

An order the routing split over warehouses reaches a shipping connector once per part
(gateway.parts): `part` is the part's number (0: the whole order, as every row before this
revision), `part_of` how many parts the order was split into (0: not split). One delivery of
an order per connector becomes one per connector and part.

Revision ID: 0021_outbox_parts
Revises: 0020_breakers
"""
import sqlalchemy as sa
from alembic import op

revision = "0021_outbox_parts"
down_revision = "0020_breakers"
branch_labels = None
depends_on = None

_KIND_IS_ORDER = sa.text("kind = 'order'")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("part", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("part_of", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("uq_outbox_order_connector", table_name="outbox")
    op.create_index(
        "uq_outbox_order_connector", "outbox", ["order_id", "connector", "part"], unique=True,
        sqlite_where=_KIND_IS_ORDER, postgresql_where=_KIND_IS_ORDER,
    )


def downgrade() -> None:
    # Parts past the first cannot stay under one row per order and connector: a downgrade
    # keeps each split delivery's first part (the others' history stays in `events`).
    op.execute("DELETE FROM outbox WHERE kind = 'order' AND part > 1")
    op.drop_index("uq_outbox_order_connector", table_name="outbox")
    op.create_index(
        "uq_outbox_order_connector", "outbox", ["order_id", "connector"], unique=True,
        sqlite_where=_KIND_IS_ORDER, postgresql_where=_KIND_IS_ORDER,
    )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("part_of")
        batch.drop_column("part")
