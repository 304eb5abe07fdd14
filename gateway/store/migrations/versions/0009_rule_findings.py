"""rule_findings and rule_decisions: what the rules found about each order (issue 10)

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("line", sa.String(length=40), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_findings"),
    )
    op.create_index("ix_rule_findings_order_id", "rule_findings", ["order_id"], unique=False)
    op.create_table(
        "rule_decisions",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_rule_decisions"),
    )
    op.create_index("ix_rule_decisions_account", "rule_decisions", ["account"], unique=False)
    op.create_index("ix_rule_decisions_fingerprint", "rule_decisions", ["fingerprint"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rule_decisions_fingerprint", table_name="rule_decisions")
    op.drop_index("ix_rule_decisions_account", table_name="rule_decisions")
    op.drop_table("rule_decisions")
    op.drop_index("ix_rule_findings_order_id", table_name="rule_findings")
    op.drop_table("rule_findings")
