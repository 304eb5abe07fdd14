"""order versions, field provenance, outbox actions, control numbers, acknowledgements

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("supersedes", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_supersedes"), ["supersedes"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action", sa.String(length=10), server_default="create", nullable=False))
        batch_op.add_column(sa.Column("target_reference", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("after_id", sa.Integer(), nullable=True))
    op.create_table(
        "control_numbers",
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "kind", name=op.f("pk_control_numbers")),
    )
    op.create_table(
        "acks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("partner", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("control_number", sa.String(length=30), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acks")),
    )
    with op.batch_alter_table("acks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acks_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acks_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_table("acks")
    op.drop_table("control_numbers")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("after_id")
        batch_op.drop_column("target_reference")
        batch_op.drop_column("action")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_supersedes"))
        batch_op.drop_column("provenance")
        batch_op.drop_column("supersedes")
        batch_op.drop_column("version")
