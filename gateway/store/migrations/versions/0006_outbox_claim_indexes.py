"""outbox: one index per claimable state (a claim costs what its batch costs, not the
backlog), and outbox.replays (how often a person replayed the delivery)

Due pending rows are read in (next_attempt_at, id) order and expired in-flight rows in
(lease_until, id) order, each by its own indexed query with its own limit. A replay starts
the attempt count afresh; `replays` tells its attempts apart in the history (issue 14 #11).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("replays", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at", "id"], unique=False)
    op.create_index("ix_outbox_lease", "outbox", ["state", "lease_until", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_lease", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"], unique=False)
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("replays")
