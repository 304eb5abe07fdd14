"""outbox rows carry documents: acknowledgements and confirmation e-mails move from `acks`

Revision ID: 0007
Revises: 0006

An outbox row now says what it delivers (`kind`): an order ("order", as before), or a document
we generated (997, 999, TA1, 855, CONTRL, ORDRSP, MAILREPLY) with its `message_id`,
`partner`, `control_number` and `body` (bytes, as sent); `connector` names the document's
channel and `order_id` is empty for a document that answers no order. One dispatcher claims,
retries, dead-letters and replays both.

Every `acks` row moves to the outbox, the sent ones too: they are the history of what a
message was answered with, and re-processing a message asks whether it was answered before.
Its state is kept (held included; a `held` row has no channel, its connector is "-"). The
unique (order_id, connector) constraint becomes a unique index over order rows only: an order
may be answered by several documents on one channel.

Downgrade moves the documents back into a recreated `acks` table.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KIND_IS_ORDER = sa.text("kind = 'order'")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="order"))
        batch.add_column(sa.Column("message_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("partner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("control_number", sa.String(length=30), nullable=True))
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch.alter_column("order_id", existing_type=sa.String(length=36), nullable=True)
        batch.drop_constraint("uq_outbox_order_connector", type_="unique")
    op.create_index(
        "uq_outbox_order_connector", "outbox", ["order_id", "connector"], unique=True,
        sqlite_where=_KIND_IS_ORDER, postgresql_where=_KIND_IS_ORDER,
    )
    op.create_index(op.f("ix_outbox_message_id"), "outbox", ["message_id"], unique=False)

    bind = op.get_bind()
    body = "convert_to(body, 'UTF8')" if bind.dialect.name == "postgresql" else "CAST(body AS BLOB)"
    op.execute(
        "INSERT INTO outbox (order_id"  # noqa: S608 - {body} is one of two fixed expressions
        ", connector, idempotency_key, state, attempts, created_at, updated_at, "
        "first_attempt_at, next_attempt_at, lease_until, last_error, action, replays, kind, message_id, partner, "
        "control_number, body) "
        f"SELECT order_id, COALESCE(channel, '-'), 'ack-' || CAST(id AS VARCHAR(20)), state, attempts, created_at, "
        "COALESCE(sent_at, created_at), first_attempt_at, COALESCE(next_attempt_at, created_at), lease_until, error, "
        f"'create', 0, kind, message_id, partner, control_number, {body} FROM acks ORDER BY id"
    )
    op.drop_table("acks")


def downgrade() -> None:
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
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acks")),
    )
    op.create_index(op.f("ix_acks_message_id"), "acks", ["message_id"], unique=False)
    op.create_index(op.f("ix_acks_order_id"), "acks", ["order_id"], unique=False)
    op.create_index(op.f("ix_acks_state"), "acks", ["state"], unique=False)
    bind = op.get_bind()
    body = "convert_from(body, 'UTF8')" if bind.dialect.name == "postgresql" else "CAST(body AS TEXT)"
    op.execute(
        "INSERT INTO acks (created_at"  # noqa: S608 - {body} is one of two fixed expressions
        ", message_id, order_id, partner, kind, control_number, body, state, channel, "
        "sent_at, error, attempts, first_attempt_at, next_attempt_at, lease_until) "
        "SELECT created_at, message_id, order_id, partner, kind, control_number, "
        f"COALESCE({body}, ''), state, CASE WHEN connector = '-' THEN NULL ELSE connector END, "
        "CASE WHEN state = 'sent' THEN updated_at END, last_error, attempts, first_attempt_at, next_attempt_at, "
        "lease_until FROM outbox WHERE kind <> 'order' ORDER BY id"
    )
    op.execute("DELETE FROM outbox WHERE kind <> 'order'")
    op.drop_index(op.f("ix_outbox_message_id"), table_name="outbox")
    op.drop_index("uq_outbox_order_connector", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.create_unique_constraint("uq_outbox_order_connector", ["order_id", "connector"])
        batch.alter_column("order_id", existing_type=sa.String(length=36), nullable=False)
        batch.drop_column("body")
        batch.drop_column("control_number")
        batch.drop_column("partner")
        batch.drop_column("message_id")
        batch.drop_column("kind")
