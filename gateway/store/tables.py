"""The store's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Every state change is a row update plus an `events` row in the same transaction, so any
crash resumes from the last committed state and every order has a history.

    messages ──< orders ──< outbox         (an order to a connector; an acknowledgement or
        │           │          │             confirmation e-mail to a channel: its kind says)
        └───────────┴──────────┴──< events
    messages ──< interchanges         (one row per EDI interchange seen: duplicate detection)

Master data (0008, gateway.store.masterdata): items ──< item_xrefs, prices, stock ──<
stock_reservations; accounts. Each row records its source and when it was last updated.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TZ = DateTime(timezone=True)

# Message states: received -> parsed | quarantined (a repeat of stored bytes is only an event)
messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("received_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("source", String(100), nullable=False),  # configured source name, or "cli"
    Column("source_ref", String(1000), nullable=True),  # where it came from, display only
    Column("display_name", String(255), nullable=True),  # sanitized, never used as a path
    Column("sha256", String(64), nullable=False, unique=True),
    # The source's own identity of the message, when it has one ("<source>|message-id:<...>"):
    # the same e-mail delivered again with other bytes (new Received headers) is recognised.
    Column("dedupe_key", String(400), nullable=True, index=True, unique=True),
    Column("size", Integer, nullable=False),
    Column("format", String(20), nullable=True),
    Column("partner", String(100), nullable=True),
    Column("state", String(20), nullable=False, index=True),
    Column("reason", String(60), nullable=True),
    Column("error", Text, nullable=True),
    Column("warnings", JSON, nullable=False, default=list),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", TZ, nullable=True),
    Column("order_count", Integer, nullable=False, default=0),
    Column("rejected_count", Integer, nullable=False, default=0),
)

message_bodies = Table(
    "message_bodies",
    metadata,
    Column("message_id", String(36), ForeignKey("messages.id"), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

interchanges = Table(
    "interchanges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False, unique=True),  # standard|qualifier:sender|control number
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False, index=True),
    Column("digest", String(64), nullable=True),
    Column("created_at", TZ, nullable=False),
)

# Order states: mapped -> validated -> dispatched ; quarantined ; dead
orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("doc_index", Integer, nullable=False),  # position in the message: reprocessing is idempotent
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("partner", String(100), nullable=True),
    Column("po_number", String(100), nullable=True, index=True),
    Column("purpose", String(20), nullable=True),
    Column("order_date", Date, nullable=True),
    Column("order_key", String(300), nullable=True, index=True),  # partner|sender|po_number
    Column("content_hash", String(64), nullable=True),
    Column("state", String(20), nullable=False, index=True),
    Column("reason", String(60), nullable=True),
    Column("error", Text, nullable=True),
    Column("position", String(200), nullable=True),
    Column("line_count", Integer, nullable=False, default=0),
    Column("data", JSON, nullable=True),  # the canonical order; null for a rejected document
    # Versions: a change or cancellation of an order is a new row, version + 1, pointing at
    # the version it supersedes; the history of both shows the difference.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    Column("supersedes", String(36), nullable=True, index=True),
    Column("provenance", JSON, nullable=True),  # field path -> where in the input it came from
    UniqueConstraint("message_id", "doc_index", name="uq_orders_message_doc"),
)

# One delivery per row, whatever is delivered (gateway.store.outbox):
#   kind "order"        an order to one connector (`order_id`, `connector` is its name)
#   kind 997, 999, TA1, 855, CONTRL, ORDRSP, MAILREPLY
#                       a document we generated, `body` as it is sent, to one channel
#                       (`connector` names it: folder:<path>, sftp:<partner>, mail:<address>, smtp)
# States (gateway.states.DeliveryState): pending -> in_flight -> sent ; pending (retry) ; dead ;
# held (a document whose partner has no outbound channel: shown, never claimed).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=True),  # a document may answer no order
    Column("connector", String(100), nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("first_attempt_at", TZ, nullable=True),
    Column("next_attempt_at", TZ, nullable=False),
    Column("lease_until", TZ, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("receipt", JSON, nullable=True),
    Column("action", String(10), nullable=False, default="create", server_default="create"),  # create|update|cancel
    Column("target_reference", String(200), nullable=True),  # the target's id of the order being changed
    # An update or cancel waits until the delivery of the version it changes was sent.
    Column("after_id", Integer, nullable=True),
    # Times a person replayed this delivery from dead letters: a replay counts attempts afresh.
    Column("replays", Integer, nullable=False, default=0, server_default="0"),
    # What is delivered: "order", or the kind of document (0007, which moved the acks table here).
    Column("kind", String(10), nullable=False, default="order", server_default="order"),
    Column("message_id", String(36), nullable=True, index=True),  # a document: the message it answers
    Column("partner", String(100), nullable=True),  # a document: the partner it goes to
    Column("control_number", String(30), nullable=True),  # a document: its own interchange control number
    Column("body", LargeBinary, nullable=True),  # a document: the bytes sent, as they are
    # A document's X12 GS06 (0012): a partner's 997/999 names our group by it (AK1 02).
    Column("group_control_number", String(30), nullable=True),
    # The partner's acknowledgement of a document (0012, gateway.acks.inbound): accepted,
    # accepted_with_errors or rejected; its code, errors, when it was read and the message holding it.
    Column("ack_status", String(30), nullable=True),
    Column("ack_code", String(10), nullable=True),
    Column("ack_errors", Text, nullable=True),
    Column("ack_at", TZ, nullable=True),
    Column("ack_message_id", String(36), nullable=True),
    # When a document became overdue (not acknowledged within the partner's acks.expect_within_minutes).
    Column("overdue_at", TZ, nullable=True),
    # A split order's part (0021, gateway.parts): its number (0: the whole order) and how many
    # parts the order was split into (0: not split). A shipping connector gets one row per part.
    Column("part", Integer, nullable=False, default=0, server_default="0"),
    Column("part_of", Integer, nullable=False, default=0, server_default="0"),
    # One delivery of an order per connector and part; documents are not orders (several per order and channel).
    Index(
        "uq_outbox_order_connector", "order_id", "connector", "part", unique=True,
        sqlite_where=text("kind = 'order'"), postgresql_where=text("kind = 'order'"),
    ),
    # One index per claimable state: pending by due time, in flight by lease end (0006).
    Index("ix_outbox_due", "state", "next_attempt_at", "id"),
    Index("ix_outbox_lease", "state", "lease_until", "id"),
    # Matching a partner's acknowledgement to the document it answers (0012).
    Index("ix_outbox_doc_interchange", "partner", "control_number"),
    Index("ix_outbox_doc_group", "partner", "group_control_number"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", TZ, nullable=False),
    Column("message_id", String(36), nullable=True, index=True),
    Column("order_id", String(36), nullable=True, index=True),
    Column("outbox_id", Integer, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=True),
)


# Outbound control numbers (ISA13, GS06, UNB 0020, ...) per partner and kind, allocated
# with an atomic UPDATE ... RETURNING-free read-modify-write inside a write transaction.
control_numbers = Table(
    "control_numbers",
    metadata,
    Column("partner", String(100), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("value", Integer, nullable=False),
)

# -- master data (0008): what the rules decide with (gateway.masterdata.model) ------------------

QTY = Numeric(18, 4)  # quantities and money: exact on PostgreSQL, 4 decimals on SQLite

items = Table(
    "items",
    metadata,
    Column("sku", String(100), primary_key=True),
    Column("gtin", String(20), nullable=True, index=True),
    Column("description", String(500), nullable=True),
    Column("base_uom", String(10), nullable=False),
    Column("uoms", JSON, nullable=False),  # unit sold -> base units in one, as strings: {"CA": "12"}
    Column("pack_size", QTY, nullable=True),
    Column("weight_kg", QTY, nullable=True),
    Column("length_cm", QTY, nullable=True),
    Column("width_cm", QTY, nullable=True),
    Column("height_cm", QTY, nullable=True),
    Column("discontinued", Boolean, nullable=False),
    Column("source", String(255), nullable=False, index=True),
    Column("updated_at", TZ, nullable=False),
)

# A partner's own part number for one of our SKUs (buyer part number -> sku).
item_xrefs = Table(
    "item_xrefs",
    metadata,
    Column("partner", String(100), primary_key=True),
    Column("buyer_part_number", String(100), primary_key=True),
    Column("sku", String(100), nullable=False, index=True),
    Column("source", String(255), nullable=False, index=True),
    Column("updated_at", TZ, nullable=False),
)

# List prices (customer '') and contract prices; `key` is every column that tells two apart.
prices = Table(
    "prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False, unique=True),  # sku|customer|list|currency|uom|min|from
    Column("sku", String(100), nullable=False, index=True),
    Column("customer", String(100), nullable=False),  # an account code or partner; '' = list price
    Column("price_list", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unit_price", QTY, nullable=False),
    Column("uom", String(10), nullable=True),
    Column("min_quantity", QTY, nullable=False),
    Column("valid_from", Date, nullable=True),
    Column("valid_to", Date, nullable=True),
    Column("source", String(255), nullable=False, index=True),
    Column("updated_at", TZ, nullable=False),
)

# Stock per SKU and warehouse, in base units. `reserved` only ever moves through
# gateway.store.masterdata.StockKeeper's conditional updates; an import sets on_hand only.
stock = Table(
    "stock",
    metadata,
    Column("sku", String(100), primary_key=True),
    Column("warehouse", String(50), primary_key=True),
    Column("on_hand", QTY, nullable=False),
    Column("reserved", QTY, nullable=False, server_default="0"),
    Column("reorder_point", QTY, nullable=True),
    Column("source", String(255), nullable=False, index=True),
    Column("updated_at", TZ, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("partner", String(100), nullable=True, index=True),
    Column("email", String(320), nullable=True, index=True),  # stored lower case
    Column("channel", String(20), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("credit_limit", QTY, nullable=True),
    Column("open_balance", QTY, nullable=False),
    Column("payment_terms", String(100), nullable=True),
    Column("ship_to", JSON, nullable=False),  # allowed ship-to addresses; [] = any
    Column("source", String(255), nullable=False, index=True),
    Column("updated_at", TZ, nullable=False),
)

# Stock held for one order line in one warehouse (states: gateway.states.ReservationState).
# The route of an accepted order (gateway.routing): warehouse, carrier, service and its parts.
order_routes = Table(
    "order_routes",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("route", JSON, nullable=False),
    Column("created_at", TZ, nullable=False),
)

stock_reservations = Table(
    "stock_reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(100), nullable=False, index=True),
    Column("line", String(50), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("warehouse", String(50), nullable=False),
    Column("quantity", QTY, nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    UniqueConstraint("order_id", "line", "warehouse", name="uq_stock_reservations_order_line"),
    Index("ix_stock_reservations_sku", "sku", "warehouse"),
)

# What the rules found about each order (gateway.rules): every finding with its outcome, reason
# code and line, and one decision row per decided order (its matched account and content
# fingerprint: the order history the rules read). No foreign key: `gateway reprocess` forgets
# a refused order's findings with it (gateway.store.findings.forget).
rule_findings = Table(
    "rule_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("rule", String(100), nullable=False),
    Column("outcome", String(10), nullable=False),  # accept | hold | reject
    Column("code", String(60), nullable=False),
    Column("message", Text, nullable=False),
    Column("line", String(40), nullable=True),  # the line number as sent, else its position; null: the order
    Column("data", JSON, nullable=True),
    Column("created_at", TZ, nullable=False),
)

rule_decisions = Table(
    "rule_decisions",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("outcome", String(10), nullable=False),
    Column("account", String(100), nullable=True, index=True),
    Column("fingerprint", String(64), nullable=True, index=True),
    Column("decided_at", TZ, nullable=False),
    Column("decided_by", String(200), nullable=True),  # null: the rules; else the person who approved or rejected
)

# The exception queue's teams (0010, gateway.store.assignments): which team (and person) an
# order waiting for a person belongs to, and when the team was told and reminded. The row is
# written in the transaction that queues the notification: an order is announced once.
order_assignments = Table(
    "order_assignments",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("team", String(63), nullable=True, index=True),  # null: no team matched
    Column("assignee", String(100), nullable=True),  # a person, given by `gateway assign`
    Column("assigned_by", String(100), nullable=True),
    Column("assigned_at", TZ, nullable=False),
    Column("notified_at", TZ, nullable=True),  # the team was told (null: nothing to tell)
    Column("reminded_at", TZ, nullable=True),  # the team was told again, past its limit
)

# The stock level last published to each shop (connectors/shopstock), per SKU: the next push
# sends only what changed since.
shop_stock = Table(
    "shop_stock",
    metadata,
    Column("shop", String(100), primary_key=True),
    Column("sku", String(100), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("pushed_at", TZ, nullable=False),
)

# What happened to an order after it was sent (0017, gateway.store.shipments): one row per
# shipment or invoice recorded (`gateway ship` / `gateway invoice`, the operator API, a
# connector reporting back). `data` holds what was reported (lines, tracking, amounts).
shipments = Table(
    "shipments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # shipment | invoice
    Column("carrier", String(60), nullable=True),
    Column("service", String(60), nullable=True),
    Column("tracking", String(400), nullable=True),  # tracking numbers, comma separated
    Column("number", String(60), nullable=True),  # the invoice number
    Column("day", Date, nullable=True),  # ship date or invoice date
    Column("total", QTY, nullable=True),  # the invoice total
    Column("data", JSON, nullable=False),
    Column("recorded_by", String(100), nullable=True),
    Column("created_at", TZ, nullable=False),
)
