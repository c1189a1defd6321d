"""The ledger's tables, as SQLAlchemy Core ``Table`` objects (``metadata`` holds them all).

Queries name columns as ``JournalEntry.c.timestamp``. No ORM: every read and write is a Core
statement, and a command does not pay for importing and configuring the ORM at start-up
(about 0.2 s of every command).

Double entry: a journal entry has postings; every entry's postings sum to zero per asset (enforced
by :func:`ledger.journal.post_entries`, the only writer). Each entry names its source (venue account,
endpoint, the record's natural key) and links to the raw record as received from the exchange.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from .types import ExactDecimal, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: A unit of account: a coin (SOL), a stablecoin (USDC), a fiat currency, or a perp contract.
Asset = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", String(64), unique=True, nullable=False),
)


#: A ledger account, hierarchical by ``:`` (docs/posting-rules.md lists the tree).
Account = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), unique=True, nullable=False),
    # Assets, Liabilities, Equity, Income or Expenses: the name's first component.
    Column("type", String(16), nullable=False),
)


#: One record exactly as the exchange returned it; the natural key makes imports idempotent.
RawRecord = Table(
    "raw_records",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("venue_account", String(64), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("natural_key", String(255), nullable=False),
    # The JSON text as received (decimals stay strings).
    Column("payload", Text, nullable=False),
    Column("record_time", UTCDateTime(), nullable=True),
    Column("fetched_at", UTCDateTime(), nullable=False),
    # posted | memo (kept, posts nothing by rule) | unknown (no rule: reported) | pending (status not final)
    Column("status", String(16), default="posted", nullable=False),
    Column("note", Text, nullable=True),
    # Only the natural-key index: a (venue_account, endpoint, record_time) index no query needed
    # misled PostgreSQL, on stale statistics mid-sync, into scanning a whole endpoint for each page's
    # key lookup (0.3 s a page at a million records).
    UniqueConstraint("venue_account", "endpoint", "natural_key"),
)


#: A balanced journal entry, traceable to the raw record it came from.
JournalEntry = Table(
    "journal_entries",
    metadata,
    Column("id", BigId, primary_key=True),
    # Derived from the source (venue account, endpoint, natural key, leg): unique and stable.
    Column("entry_key", String(400), unique=True, nullable=False),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("venue_account", String(64), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("raw_record_id", BigId, ForeignKey("raw_records.id", ondelete="RESTRICT"), nullable=True, index=True),
    Index("ix_journal_entries_time", "timestamp"),
)


#: One leg of an entry: a signed quantity of one asset in one account.
Posting = Table(
    "postings",
    metadata,
    # No (account, asset) index: balances are whole-table aggregates, and the index made bulk
    # posting 40 % slower (benchmarks/posting_bench.py).
    Column("id", BigId, primary_key=True),
    Column("entry_id", BigId, ForeignKey("journal_entries.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("asset_id", Integer, ForeignKey("assets.id"), nullable=False),
    # Signed quantity of the asset, exact (debit positive, credit negative).
    Column("quantity", ExactDecimal(), nullable=False),
    # Optional unit price of the asset in ``price_currency`` (the reporting currency) at the entry's time.
    Column("unit_price", ExactDecimal(), nullable=True),
    Column("price_currency", String(16), nullable=True),
    # Where ``unit_price`` came from (docs/pricing.md), or ``unpriced: <reason>`` with ``unit_price`` NULL.
    Column("price_source", String(255), nullable=True),
)


#: Per venue account and endpoint: where the last sync stopped (the high-water mark).
SyncState = Table(
    "sync_state",
    metadata,
    Column("venue_account", String(64), primary_key=True),
    Column("endpoint", String(64), primary_key=True),
    # The client's resume point as JSON text (opaque to the ledger).
    Column("cursor", Text, nullable=True),
    # The newest record time seen.
    Column("high_water", UTCDateTime(), nullable=True),
    Column("records", BigInteger, default=0, nullable=False),
    Column("last_synced_at", UTCDateTime(), nullable=True),
)


#: The exchange's own figures for one venue account at one moment (taken at each sync).
Snapshot = Table(
    "snapshots",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("venue_account", String(64), nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
    # The state responses as received (balances, collateral, positions, borrow/lend positions), JSON.
    Column("payload", Text, nullable=False),
    Index("ix_snapshots_account_time", "venue_account", "taken_at"),
)


#: One exchange-reported quantity: a wallet (Spot, Lent, Borrowed, Perp) and an asset.
SnapshotLine = Table(
    "snapshot_lines",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("snapshot_id", BigId, ForeignKey("snapshots.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("wallet", String(16), nullable=False),
    Column("asset", String(64), nullable=False),
    # The exchange's figure, exact, signed like the ledger's account (a liability is negative).
    Column("quantity", ExactDecimal(), nullable=False),
    # Breakdown as reported (e.g. available/locked/staked), JSON.
    Column("detail", Text, nullable=True),
)


#: The outcome of one reconciliation check (``reconcile check`` and the end of each sync).
CheckResult = Table(
    "check_results",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("venue_account", String(64), nullable=False),
    Column("snapshot_id", BigId, ForeignKey("snapshots.id", ondelete="SET NULL"), nullable=True),
    Column("checked_at", UTCDateTime(), nullable=False),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("differences", Integer, nullable=False),
    # Per-line comparison and likely causes, JSON.
    Column("detail", Text, nullable=False),
)


#: One cached exchange kline (docs/pricing.md): ``symbol`` quoted in its quote asset, ``interval`` 1m, 1h or 1d.
PriceBar = Table(
    "price_bars",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("interval", String(8), nullable=False),
    # The bar covers [start, start + interval), UTC.
    Column("start", UTCDateTime(), nullable=False),
    # Prices of one base unit in the quote asset, exact as received; ``close`` is the one valuation uses.
    Column("open", ExactDecimal(), nullable=True),
    Column("high", ExactDecimal(), nullable=True),
    Column("low", ExactDecimal(), nullable=True),
    Column("close", ExactDecimal(), nullable=True),
    Column("fetched_at", UTCDateTime(), nullable=False),
    UniqueConstraint("symbol", "interval", "start"),
)


#: A span of klines already asked for (so a second run asks for nothing already held, bars or not).
PriceFetch = Table(
    "price_fetches",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("interval", String(8), nullable=False),
    # Covered span [start, end), UTC; only closed bars count as covered.
    Column("start", UTCDateTime(), nullable=False),
    Column("end", UTCDateTime(), nullable=False),
    # ok | no-market (the exchange lists no such symbol)
    Column("status", String(16), nullable=False),
    Column("bars", Integer, nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Index("ix_price_fetches_symbol_interval", "symbol", "interval", "start"),
)


#: What the last valuation was computed from (currency, policy, user files' digests).
ValuationState = Table(
    "valuation_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("valued_at", UTCDateTime(), nullable=False),
    # The reporting currency and stablecoin policy the valuation used (NULL: kept by an older version).
    Column("currency", String(16), nullable=True),
    Column("stablecoin_policy", String(16), nullable=True),
)


#: A fill seen on the account stream (``reconcile watch``): provisional, never a journal entry.
#:
#: ``fill_key`` is the natural key the REST fill will carry (``raw_records.natural_key``,
#: ``fills:<tradeId>:<orderId>:<side>:<symbol>``; RFQ fills ``rfqFill:<rfqId>:<quoteId>`` or
#: ``quoteFill:<quoteId>:<rfqId>``), or ``ws:...`` for a fill without a trade id (matched by order,
#: quantity, price and time); the next sync confirms the row and retires it (docs/watch.md).
LiveFill = Table(
    "live_fills",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("venue_account", String(64), nullable=False),
    Column("fill_key", String(255), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("trade_id", String(32), nullable=True),
    Column("order_id", String(64), nullable=False),
    # Bid/Ask; empty for a quoter's RFQ fill (its side is REST only)
    Column("side", String(8), nullable=False),
    # None for an RFQ fill whose event has no base quantity (the quoter's, or one sized in quote)
    Column("quantity", ExactDecimal(), nullable=True),
    Column("price", ExactDecimal(), nullable=False),
    Column("fee", ExactDecimal(), nullable=True),
    Column("fee_symbol", String(64), nullable=True),
    # The engine time ``T`` of the event (µs on the wire), UTC.
    Column("engine_time", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # provisional | confirmed (a REST fill matched) | mismatch (matched by key, values differ: REST wins)
    # | unconfirmed (two syncs covered its time and no REST fill matched: reported)
    Column("status", String(16), nullable=False),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    # Syncs that covered ``engine_time`` without a matching REST fill.
    Column("missed_syncs", Integer, default=0, nullable=False),
    Column("note", Text, nullable=True),
    # The event's ``data`` as received, JSON.
    Column("payload", Text, nullable=False),
    UniqueConstraint("venue_account", "fill_key"), Index("ix_live_fills_status", "venue_account", "status"),
)


#: A span the live view may have missed events in (a disconnect, a cumulative quantity that skipped).
LiveGap = Table(
    "live_gaps",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("venue_account", String(64), nullable=False),
    Column("start", UTCDateTime(), nullable=False),
    Column("end", UTCDateTime(), nullable=False),
    # disconnected | fills skipped
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    # When a sync that covers ``end`` ran (the REST history fills the gap).
    Column("filled_at", UTCDateTime(), nullable=True),
    Index("ix_live_gaps_account", "venue_account", "filled_at"),
)


#: The latest ``account.positionUpdate`` state of one perp market (a cache, never booked).
LivePosition = Table(
    "live_positions",
    metadata,
    Column("venue_account", String(64), primary_key=True),
    Column("symbol", String(64), primary_key=True),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("entry_price", ExactDecimal(), nullable=True),
    Column("mark_price", ExactDecimal(), nullable=True),
    Column("engine_time", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("payload", Text, nullable=False),
)


#: The latest ``markPrice.<symbol>`` event.
LiveMark = Table(
    "live_marks",
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("mark_price", ExactDecimal(), nullable=False),
    Column("engine_time", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)


#: Per venue account: the state of ``reconcile watch``'s connection.
LiveStream = Table(
    "live_streams",
    metadata,
    Column("venue_account", String(64), primary_key=True),
    # connected | disconnected | stopped
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("last_message_at", UTCDateTime(), nullable=True),
    Column("events", BigInteger, default=0, nullable=False),
)
