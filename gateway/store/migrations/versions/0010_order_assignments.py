"""order_assignments: the exception queue's team and person per waiting order (issue 10)

Revision ID: 0010_teams
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_teams"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_assignments",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("assigned_by", sa.String(length=100), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_assignments"),
    )
    op.create_index("ix_order_assignments_team", "order_assignments", ["team"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_assignments_team", table_name="order_assignments")
    op.drop_table("order_assignments")
