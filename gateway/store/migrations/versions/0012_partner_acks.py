"""outbox: partners' acknowledgements of our documents and their GS06 (issue 13)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("group_control_number", sa.String(length=30), nullable=True))
        batch.add_column(sa.Column("ack_status", sa.String(length=30), nullable=True))
        batch.add_column(sa.Column("ack_code", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("ack_errors", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ack_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ack_message_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_doc_interchange", "outbox", ["partner", "control_number"], unique=False)
    op.create_index("ix_outbox_doc_group", "outbox", ["partner", "group_control_number"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_doc_group", table_name="outbox")
    op.drop_index("ix_outbox_doc_interchange", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        for name in ("overdue_at", "ack_message_id", "ack_at", "ack_errors", "ack_code", "ack_status", "group_control_number"):
            batch.drop_column(name)
