"""The database schema as SQLAlchemy Core tables (the hot path uses Core, not ORM objects).

The migrations in ``bridge/storage/migrations/versions`` create exactly these tables; change both
together (a new migration, never an edit of an applied one).

Two column types keep SQLite and PostgreSQL alike:
- :class:`Money` is ``NUMERIC(18,4)`` on PostgreSQL and an integer count of 1/10,000 units on
  SQLite, whose NUMERIC is a float in disguise (``balance - 0.8`` would drift). Both give
  exact :class:`~decimal.Decimal` values back and exact arithmetic inside SQL.
- :class:`UTCDateTime` stores naive UTC and always returns timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 4
_SCALE = Decimal(10) ** MONEY_SCALE
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


class Money(TypeDecorator):
    """Exact money: NUMERIC(18,4) on PostgreSQL, BIGINT ten-thousandths on SQLite."""

    impl = Numeric(18, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value).quantize(_QUANTUM)
        if dialect.name == "sqlite":
            return int(value * _SCALE)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / _SCALE).quantize(_QUANTUM)
        return Decimal(value).quantize(_QUANTUM)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out; stored naive (UTC) on both databases."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # SQLite aggregate results may come back as text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id, salted
    Column("balance", Money, nullable=False, server_default="0"),  # == sum(ledger.amount)
    Column("currency", String(3), nullable=False),
    Column("default_sender_id", String(16)),  # None = config.default_sender_id
    Column("allowed_sender_ids", JSON, nullable=False),  # list of str, besides the default
    Column("callback_url", String(2048)),  # default delivery-report URL
    Column("rate_limit_per_minute", Integer),  # None = config.rate_limit_per_minute
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Standard Webhooks signing secret "whsec_<base64>" (migration 0003_webhooks); None until
    # first needed; the previous one still signs until rotated_at + webhook_secret_overlap_seconds
    Column("webhook_secret", String(64)),
    Column("webhook_secret_previous", String(64)),
    Column("webhook_secret_rotated_at", UTCDateTime),
    Column("callback_events", String(8)),  # "final" | "all" for its sends; None = "final"
    Column("inbound_url", String(2048)),  # where its inbound messages are POSTed (0005_inbound)
    # the charge UPDATE already refuses to overdraw; this makes it impossible by construction
    CheckConstraint("balance >= 0", name="balance_not_negative"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(8), nullable=False, unique=True),  # the visible part: sb_<key_id>_...
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False),  # sha256 hex of the whole key
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),  # updated lazily, at most once a minute per process
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),  # time-ordered (bridge.ids)
    Column("batch_id", String(26), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("destination", String(20), nullable=False),  # E.164, with '+'
    Column("sender_id", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("encoding", String(8), nullable=False),  # "gsm" or "ucs2"
    Column("parts", Integer, nullable=False),
    Column("price", Money, nullable=False),  # what this message cost (parts x route price)
    Column("state", String(12), nullable=False),
    Column("client_reference", String(128)),
    Column("callback_url", String(2048)),
    Column("callback_events", String(8)),  # "final" | "all" when callback_url is set (0003)
    Column("created_at", UTCDateTime, nullable=False),  # also the time it was `accepted`
    Column("updated_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime),
    Column("submitted_at", UTCDateTime),
    Column("done_at", UTCDateTime),
    # (send_at or created) + the send's validity (default config.validity_seconds): the queue
    # gives up then (expired, refunded) and it is the submit_sm validity_period (its end:
    # absolute UTC, or the time left, per the connection's validity_form)
    Column("expires_at", UTCDateTime, nullable=False),
    Column("send_at", UTCDateTime),  # a scheduled send's time (0004_scheduling); None = at once
    Column("smsc_message_ids", Text),  # JSON list, one per part
    Column("error_code", String(32)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("connection", String(64)),
    Column("possible_duplicate", Boolean, nullable=False, server_default=false()),
    Index("ix_messages_state_created_at", "state", "created_at"),
    # The releaser's due scan and rebuild (bridge.delivery.release): only `scheduled` rows are in
    # it, so the send path's INSERT of ordinary messages pays nothing for it (0004_scheduling).
    Index(
        "ix_messages_scheduled_send_at",
        "send_at",
        sqlite_where=text("state = 'scheduled'"),
        postgresql_where=text("state = 'scheduled'"),
    ),
    # Listing and search (migration 0006_message_search): each filter of GET /api/v2/sms walks
    # one of these newest first, keyset on (created_at, id), with no sort (docs/api.md). The
    # batch index leads with batch_id so it also serves the flusher's "WHERE batch_id IN".
    Index("ix_messages_account_id_created_at_id", "account_id", "created_at", "id"),
    Index(
        "ix_messages_batch_id_account_id_created_at_id",
        "batch_id",
        "account_id",
        "created_at",
        "id",
    ),
    Index(
        "ix_messages_account_id_client_reference_created_at_id",
        "account_id",
        "client_reference",
        "created_at",
        "id",
    ),
    Index("ix_messages_account_id_state_created_at_id", "account_id", "state", "created_at", "id"),
    Index(
        "ix_messages_account_id_destination_created_at_id",
        "account_id",
        "destination",
        "created_at",
        "id",
    ),
)

# The columns of a message that make its outbound stream entry (bridge.redis.outbox), for
# whoever re-enqueues messages (the sweeper, the reconciler): OutboundMessage.from_row(row).
OUTBOUND_COLUMNS = tuple(
    messages.c[name]
    for name in (
        "id",
        "batch_id",
        "account_id",
        "destination",
        "sender_id",
        "text",
        "encoding",
        "parts",
        "price",
        "expires_at",
    )
)

# Transitions after `accepted`/`queued`: those two times live in messages.created_at/queued_at
# (written in bulk on the hot path), every later transition adds a row here.
message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(26), ForeignKey("messages.id"), nullable=False, index=True),
    Column("state", String(12), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # charge | refund | topup
    Column("amount", Money, nullable=False),  # signed: charges negative
    Column("batch_id", String(26)),  # charge: the request's batch
    Column("message_id", String(26)),  # refund: the message refunded
    # "charge:<batch>" / "refund:<message>": the database refuses a second one
    Column("dedupe_key", String(64), unique=True),
    Column("note", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response_json", Text, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    UniqueConstraint("account_id", "key"),
)


# --- delivery engine tables (migration 0002_settlement) -------------------------------------
# One row per part of a message that got a delivery receipt. The database, not Redis, is the
# truth for multipart aggregation: a message is delivered once every part has a final
# `delivered` row; the first final non-delivered part decides its failure state. The primary key
# makes a repeated receipt for the same part a no-op; a non-final row (ENROUTE, ACCEPTD,
# UNKNOWN) is upgraded once, by the part's first final receipt.
message_parts = Table(
    "message_parts",
    metadata,
    Column("message_id", String(26), ForeignKey("messages.id"), primary_key=True),
    Column("part_index", Integer, primary_key=True),  # 0-based, the order of smsc_message_ids
    Column("smsc_message_id", String(64), nullable=False),  # as the receipt quoted it
    Column("stat", String(8), nullable=False),  # the SMSC's word: DELIVRD, UNDELIV, ENROUTE...
    Column("state", String(12), nullable=False),  # ours: delivered, undelivered, enroute...
    Column("final", Boolean, nullable=False),
    Column("error_code", String(32)),
    Column("done_at", UTCDateTime),  # the receipt's done date (naive SMSC time read as UTC)
    Column("received_at", UTCDateTime, nullable=False),  # when the bridge stored it
)

# --- delivery webhooks (migration 0003_webhooks) ---------------------------------------------
# The transactional outbox of message events: settlement inserts a row in the transaction that
# changes a message's state (messages with a callback_url only); the relay XADDs it to the
# sb:webhooks stream and then deletes it; a periodic sweep relays rows left behind (a crash
# between the commit and the XADD, Redis down). ``body`` is the exact JSON text POSTed, fixed at
# commit time, so a relayed duplicate carries the same event id and bytes.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("event_id", String(64), primary_key=True),  # evt_<message id>_<state>: stable
    Column("message_id", String(26), nullable=False),  # no FK: a transient row, cheap to write
    Column("account_id", Integer, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),  # the sweep's age test
)

# --- inbound messages and opt-outs (migration 0005_inbound; bridge/inbound/) ----------------
# One row per whole mobile-originated message, written by the session thread before the
# deliver_sm is acknowledged. ``dedupe_key`` makes an SMSC redelivery of a stored MO a no-op
# (bridge.inbound.store.dedupe_key). ``account_id`` None = unrouted (visible to operators).
# ``webhook_url`` is the outbox column: set while the inbound webhook event still has to be
# XADDed to sb:webhooks, cleared once it was (the relay and its sweep; bridge.inbound.relay).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(26), primary_key=True),  # time-ordered (bridge.ids)
    Column("account_id", Integer, ForeignKey("accounts.id")),  # None = unrouted
    Column("connection", String(64), nullable=False),  # the [[smsc]] name it came in on
    Column("number", String(24), nullable=False),  # the handset: E.164 (+digits) or as sent
    Column("to", String(24), nullable=False),  # the short code / long number, digits as sent
    Column("keyword", String(32)),  # the first word, upper case (None: no text)
    Column("text", Text, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("action", String(8)),  # "optout" | "optin" when its first word was one of those
    Column("dedupe_key", String(64), nullable=False, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("webhook_url", String(2048)),  # outbox: the inbound_url still to be relayed to
    # GET /api/v2/inbox walks one of these newest first, keyset on (received_at, id)
    Index("ix_inbound_messages_account_id_received_at_id", "account_id", "received_at", "id"),
    Index(
        "ix_inbound_messages_account_id_number_received_at_id",
        "account_id",
        "number",
        "received_at",
        "id",
    ),
    Index(
        "ix_inbound_messages_account_id_to_received_at_id", "account_id", "to", "received_at", "id"
    ),
    Index(
        "ix_inbound_messages_account_id_keyword_received_at_id",
        "account_id",
        "keyword",
        "received_at",
        "id",
    ),
    Index(
        "ix_inbound_messages_webhook_pending",
        "received_at",
        sqlite_where=text("webhook_url IS NOT NULL"),
        postgresql_where=text("webhook_url IS NOT NULL"),
    ),
)

# The numbers that opted out of an account's messages (an inbound STOP, or the API); a send
# to one is refused for that number and not charged. The send path reads it by primary key.
optouts = Table(
    "optouts",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("number", String(24), primary_key=True),  # E.164, as sends store destinations
    Column("source", String(8), nullable=False),  # "sms" (an inbound keyword) or "api"
    Column("inbound_id", String(26)),  # the inbound message that opted it out, if any
    Column("created_at", UTCDateTime, nullable=False),
)

# The audit and GET /api/v2/sms/{id} look refunds up by message.
Index("ix_ledger_message_id", ledger.c.message_id)
