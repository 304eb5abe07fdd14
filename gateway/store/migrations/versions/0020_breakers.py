"""breakers: each connector's circuit breaker, shared by every node (issue 11)

Revision ID: 0020_breakers
Revises: 0017_shipments
"""
import sqlalchemy as sa
from alembic import op

revision = "0020_breakers"
down_revision = "0017_shipments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("connector", sa.String(length=100), primary_key=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("breakers")
