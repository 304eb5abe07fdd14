"""acks: claims with a lease, attempts and a retry schedule, like outbox rows

Revision ID: 0005
Revises: 0004

An acknowledgement or confirmation e-mail is claimed (`in_flight` until `lease_until`)
before it is sent, its attempts counted, retried at `next_attempt_at`, and `dead` once the
retry policy gives up. The old terminal state `failed` becomes `dead` (replayable).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Plain ADD COLUMNs (SQLite does them in place) and one index for the claim query.
def upgrade() -> None:
    op.add_column("acks", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("acks", sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("acks", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("acks", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_acks_state"), "acks", ["state"], unique=False)
    op.execute("UPDATE acks SET state = 'dead' WHERE state = 'failed'")


def downgrade() -> None:
    op.execute("UPDATE acks SET state = 'failed' WHERE state = 'dead'")
    op.execute("UPDATE acks SET state = 'pending' WHERE state = 'in_flight'")
    op.drop_index(op.f("ix_acks_state"), table_name="acks")
    with op.batch_alter_table("acks", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("attempts")
