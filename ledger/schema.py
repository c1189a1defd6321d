"""The ledger's tables: typed SQLAlchemy 2.x models.

Double entry: a journal entry has postings; every entry's postings sum to zero per asset (enforced
by :func:`ledger.journal.post_entries`, the only writer). Each entry names its source (venue account,
endpoint, the record's natural key) and links to the raw record as received from the exchange.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Asset(Base):
    """A unit of account: a coin (SOL), a stablecoin (USDC), a fiat currency, or a perp contract."""

    __tablename__ = "assets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), unique=True)


class Account(Base):
    """A ledger account, hierarchical by ``:`` (docs/posting-rules.md lists the tree)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    #: Assets, Liabilities, Equity, Income or Expenses: the name's first component.
    type: Mapped[str] = mapped_column(String(16))


class RawRecord(Base):
    """One record exactly as the exchange returned it; the natural key makes imports idempotent."""

    __tablename__ = "raw_records"
    # Only the natural-key index: a (venue_account, endpoint, record_time) index no query needed
    # misled PostgreSQL, on stale statistics mid-sync, into scanning a whole endpoint for each page's
    # key lookup (0.3 s a page at a million records).
    __table_args__ = (UniqueConstraint("venue_account", "endpoint", "natural_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue_account: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    natural_key: Mapped[str] = mapped_column(String(255))
    #: The JSON text as received (decimals stay strings).
    payload: Mapped[str] = mapped_column(Text)
    record_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: posted | memo (kept, posts nothing by rule) | unknown (no rule: reported) | pending (status not final)
    status: Mapped[str] = mapped_column(String(16), default="posted")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class JournalEntry(Base):
    """A balanced journal entry, traceable to the raw record it came from."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_time", "timestamp"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Derived from the source (venue account, endpoint, natural key, leg): unique and stable.
    entry_key: Mapped[str] = mapped_column(String(400), unique=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    venue_account: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    source_key: Mapped[str] = mapped_column(String(255))
    raw_record_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("raw_records.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    postings: Mapped[list["Posting"]] = relationship(back_populates="entry", order_by="Posting.id")


class Posting(Base):
    """One leg of an entry: a signed quantity of one asset in one account."""

    __tablename__ = "postings"
    # No (account, asset) index: balances are whole-table aggregates, and the index made bulk
    # posting 40 % slower (benchmarks/posting_bench.py).
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("journal_entries.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("accounts.id"))
    asset_id: Mapped[int] = mapped_column(Integer, ForeignKey("assets.id"))
    #: Signed quantity of the asset, exact (debit positive, credit negative).
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    #: Optional unit price of the asset in ``price_currency`` (the reporting currency) at the entry's time.
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    price_currency: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: Where ``unit_price`` came from (docs/pricing.md), or ``unpriced: <reason>`` with ``unit_price`` NULL.
    price_source: Mapped[str | None] = mapped_column(String(255), nullable=True)
    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class SyncState(Base):
    """Per venue account and endpoint: where the last sync stopped (the high-water mark)."""

    __tablename__ = "sync_state"
    venue_account: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The client's resume point as JSON text (opaque to the ledger).
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The newest record time seen.
    high_water: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Snapshot(Base):
    """The exchange's own figures for one venue account at one moment (taken at each sync)."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_account_time", "venue_account", "taken_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue_account: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The state responses as received (balances, collateral, positions, borrow/lend positions), JSON.
    payload: Mapped[str] = mapped_column(Text)
    lines: Mapped[list["SnapshotLine"]] = relationship(back_populates="snapshot", order_by="SnapshotLine.id")


class SnapshotLine(Base):
    """One exchange-reported quantity: a wallet (Spot, Lent, Borrowed, Perp) and an asset."""

    __tablename__ = "snapshot_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(BigId, ForeignKey("snapshots.id", ondelete="CASCADE"), index=True)
    wallet: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(64))
    #: The exchange's figure, exact, signed like the ledger's account (a liability is negative).
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    #: Breakdown as reported (e.g. available/locked/staked), JSON.
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshot: Mapped[Snapshot] = relationship(back_populates="lines")


class CheckResult(Base):
    """The outcome of one reconciliation check (``reconcile check`` and the end of each sync)."""

    __tablename__ = "check_results"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue_account: Mapped[str] = mapped_column(String(64))
    snapshot_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("snapshots.id", ondelete="SET NULL"), nullable=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column()
    differences: Mapped[int] = mapped_column(Integer)
    #: Per-line comparison and likely causes, JSON.
    detail: Mapped[str] = mapped_column(Text)


class PriceBar(Base):
    """One cached exchange kline (docs/pricing.md): ``symbol`` quoted in its quote asset, ``interval`` 1m, 1h or 1d."""

    __tablename__ = "price_bars"
    __table_args__ = (UniqueConstraint("symbol", "interval", "start"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    interval: Mapped[str] = mapped_column(String(8))
    #: The bar covers [start, start + interval), UTC.
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Prices of one base unit in the quote asset, exact as received; ``close`` is the one valuation uses.
    open: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    high: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    low: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    close: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PriceFetch(Base):
    """A span of klines already asked for (so a second run asks for nothing already held, bars or not)."""

    __tablename__ = "price_fetches"
    __table_args__ = (Index("ix_price_fetches_symbol_interval", "symbol", "interval", "start"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    interval: Mapped[str] = mapped_column(String(8))
    #: Covered span [start, end), UTC; only closed bars count as covered.
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ok | no-market (the exchange lists no such symbol)
    status: Mapped[str] = mapped_column(String(16))
    bars: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ValuationState(Base):
    """What the last valuation was computed from (currency, policy, user files' digests)."""

    __tablename__ = "valuation_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    valued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The reporting currency and stablecoin policy the valuation used (NULL: kept by an older version).
    currency: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stablecoin_policy: Mapped[str | None] = mapped_column(String(16), nullable=True)


class LiveFill(Base):
    """A fill seen on the account stream (``reconcile watch``): provisional, never a journal entry.

    ``fill_key`` is the natural key the REST fill will carry (``raw_records.natural_key``,
    ``fills:<tradeId>:<orderId>:<side>:<symbol>``; RFQ fills ``rfqFill:<rfqId>:<quoteId>`` or
    ``quoteFill:<quoteId>:<rfqId>``), or ``ws:...`` for a fill without a trade id (matched by order,
    quantity, price and time); the next sync confirms the row and retires it (docs/watch.md).
    """

    __tablename__ = "live_fills"
    __table_args__ = (UniqueConstraint("venue_account", "fill_key"), Index("ix_live_fills_status", "venue_account", "status"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue_account: Mapped[str] = mapped_column(String(64))
    fill_key: Mapped[str] = mapped_column(String(255))
    symbol: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_id: Mapped[str] = mapped_column(String(64))
    #: Bid/Ask; empty for a quoter's RFQ fill (its side is REST only)
    side: Mapped[str] = mapped_column(String(8))
    #: None for an RFQ fill whose event has no base quantity (the quoter's, or one sized in quote)
    quantity: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    fee: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    fee_symbol: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The engine time ``T`` of the event (µs on the wire), UTC.
    engine_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: provisional | confirmed (a REST fill matched) | mismatch (matched by key, values differ: REST wins)
    #: | unconfirmed (two syncs covered its time and no REST fill matched: reported)
    status: Mapped[str] = mapped_column(String(16))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Syncs that covered ``engine_time`` without a matching REST fill.
    missed_syncs: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The event's ``data`` as received, JSON.
    payload: Mapped[str] = mapped_column(Text)


class LiveGap(Base):
    """A span the live view may have missed events in (a disconnect, a cumulative quantity that skipped)."""

    __tablename__ = "live_gaps"
    __table_args__ = (Index("ix_live_gaps_account", "venue_account", "filled_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue_account: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    #: disconnected | fills skipped
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When a sync that covers ``end`` ran (the REST history fills the gap).
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LivePosition(Base):
    """The latest ``account.positionUpdate`` state of one perp market (a cache, never booked)."""

    __tablename__ = "live_positions"
    venue_account: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    entry_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    mark_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    engine_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text)


class LiveMark(Base):
    """The latest ``markPrice.<symbol>`` event."""

    __tablename__ = "live_marks"
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    mark_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    engine_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LiveStream(Base):
    """Per venue account: the state of ``reconcile watch``'s connection."""

    __tablename__ = "live_streams"
    venue_account: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: connected | disconnected | stopped
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
