"""outbox: one index per claimable state, so a claim costs what its batch costs, not the backlog

Due pending rows are read in (next_attempt_at, id) order and expired in-flight rows in
(lease_until, id) order, each by its own indexed query with its own limit.

Revision ID: 0005_dispatch
Revises: 0004
"""
from alembic import op

revision = "0005_dispatch"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at", "id"], unique=False)
    op.create_index("ix_outbox_lease", "outbox", ["state", "lease_until", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_lease", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"], unique=False)
