"""messages.dedupe_key: a source's own identity of a message (an e-mail's Message-ID)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# A plain ADD COLUMN and a unique index: SQLite does both in place, where a batch "move and
# copy" of messages would trip over the foreign keys that point at it.
def upgrade() -> None:
    op.add_column("messages", sa.Column("dedupe_key", sa.String(length=400), nullable=True))
    op.create_index(op.f("ix_messages_dedupe_key"), "messages", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_dedupe_key"), table_name="messages")
    op.drop_column("messages", "dedupe_key")
