"""alerts: raised and sent alerts, the per-team rate limit, open episodes, source health (issue 12)

Revision ID: 0015_alerts
Revises: 0013_console
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_alerts"
down_revision = "0013_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("team", "kind", "key", name="uq_alerts_team_kind_key"),
    )
    op.create_index("ix_alerts_pending", "alerts", ["team", "kind", "sent_at"], unique=False)
    op.create_table(
        "alert_sends",
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team", "kind", name=op.f("pk_alert_sends")),
    )
    op.create_table(
        "alert_episodes",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_episodes")),
    )
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("watched_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_health")),
    )


def downgrade() -> None:
    op.drop_table("source_health")
    op.drop_table("alert_episodes")
    op.drop_table("alert_sends")
    op.drop_index("ix_alerts_pending", table_name="alerts")
    op.drop_table("alerts")
