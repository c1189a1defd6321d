"""Valuation: a reporting-currency unit price and its source for every holding posting (pure).

No session, no network, no clock: entries, settings, the user's price and FX tables and a bar
lookup go in; one :class:`Valued` per (entry, asset) comes out. ``docs/pricing.md`` is the
specification; the store side (streaming postings, cached bars, writing) is ``ledger/prices.py``.

Lookup order for one asset at one instant (first that answers wins):

1. the user price file (an override of anything fetched);
2. the same entry's trade price, for the base asset of a spot-trade, rfq-fill, quote-fill or dust
   entry: ``quote quantity / base quantity x value of one quote unit``;
3. the stablecoin policy (USDC, USDT; ``par`` = 1 USD, ``market`` = USDT at the USDT_USDC bar);
4. the close of the ``<ASSET>_USDC`` kline containing the instant: 1m, else 1h, else 1d;
5. otherwise unpriced, with the reason (never a zero).

A USD value becomes EUR, GBP, CAD, AUD or JPY through the user's FX table (units of the currency per 1 USD, the
rate of the event's UTC date or of the latest earlier date at most ``FX_LOOKBACK_DAYS`` before).
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple, Protocol

from .inputs import InputError
from .money import EXACT, D, MoneyError, plain

__all__ = [
    "STABLECOINS",
    "FIAT",
    "TRADE_KINDS",
    "RESOLUTIONS",
    "INTERVAL_SECONDS",
    "KLINE_QUOTE",
    "FX_LOOKBACK_DAYS",
    "USER_PRICE_VALIDITY",
    "UNPRICED",
    "ValuationSettings",
    "UserPrice",
    "UserPrices",
    "FxRates",
    "FxGap",
    "parse_price_csv",
    "parse_fx_csv",
    "Bars",
    "PostingIn",
    "EntryIn",
    "Valued",
    "Valuer",
    "is_holding_account",
    "kline_symbol",
    "bar_start",
]

#: Assets the stablecoin policy values (docs/pricing.md). USDC is the exchange's unit of account:
#: every kline used is ``<ASSET>_USDC`` and USDC itself is 1 USD under either policy.
STABLECOINS = ("USDC", "USDT")
#: Reporting currencies (and the fiat currencies a user price may be given in).
FIAT = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
#: Entry kinds whose base asset is valued from the entry's own quote leg.
TRADE_KINDS = frozenset({"spot-trade", "rfq-fill", "quote-fill", "dust"})
#: Kline intervals tried, finest first.
RESOLUTIONS = ("1m", "1h", "1d")
INTERVAL_SECONDS = {"1m": 60, "1h": 3600, "1d": 86400}
#: Every kline looked up is ``<ASSET>_<KLINE_QUOTE>``.
KLINE_QUOTE = "USDC"
#: A missing FX date may use the latest earlier rate at most this many days before (weekends and
#: the ECB's TARGET holidays: Good Friday to Easter Monday is the longest gap, 4 days).
FX_LOOKBACK_DAYS = 4
#: A user price row covers its asset from its time until the next row for that asset, at most this long.
USER_PRICE_VALIDITY = timedelta(days=1)
#: ``postings.price_source`` of a posting that could not be valued starts with this.
UNPRICED = "unpriced: "

_UTC = timezone.utc
_ONE = Decimal(1)
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValuationSettings:
    """The choices a valuation depends on (the CLI builds it from ``[reporting]``)."""

    currency: str = "USD"
    #: ``par``: USDC and USDT are 1 USD. ``market``: USDC is 1 USD, USDT is valued at the USDT_USDC bar.
    stablecoin_policy: str = "par"
    #: The finest kline interval looked up (``1m``; ``1h`` or ``1d`` need far fewer requests).
    finest: str = "1m"

    def __post_init__(self) -> None:
        if self.currency not in FIAT:
            raise ValueError(f"reporting currency {self.currency!r} is not one of {', '.join(FIAT)}")
        if self.stablecoin_policy not in ("par", "market"):
            raise ValueError(f"stablecoin policy {self.stablecoin_policy!r} is not one of par, market")
        if self.finest not in RESOLUTIONS:
            raise ValueError(f"finest interval {self.finest!r} is not one of {', '.join(RESOLUTIONS)}")

    @property
    def intervals(self) -> tuple[str, ...]:
        return RESOLUTIONS[RESOLUTIONS.index(self.finest):]


# -- user files ------------------------------------------------------------------------------------
def _rows(lines: Iterable[str], name: str, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV rows as dicts with the header's names; blank lines and ``#`` comments skipped."""
    reader = csv.reader(lines)
    header: list[str] | None = None
    for row in reader:
        lineno = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = [c.lower() for c in cells]
            missing = [c for c in columns if c not in header]
            if missing:
                raise InputError(f"{name}:{lineno}: header must name the columns {', '.join(columns)} (missing {', '.join(missing)})")
            continue
        if len(cells) != len(header):
            raise InputError(f"{name}:{lineno}: expected {len(header)} fields, found {len(cells)}")
        yield lineno, dict(zip(header, cells))
    if header is None:
        raise InputError(f"{name}:1: empty file: expected a header naming {', '.join(columns)}")


def _parse_time(text: str) -> datetime:
    """``YYYY-MM-DD`` (start of the UTC day) or ISO-8601 date-time; naive means UTC."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), _UTC)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=_UTC) if t.tzinfo is None else t.astimezone(_UTC)


def _decimal(text: str, what: str) -> Decimal:
    try:
        return D(text)
    except MoneyError:
        raise ValueError(f"{what} {text!r} is not a decimal number") from None


class UserPrice(NamedTuple):
    time: datetime
    price: Decimal
    currency: str
    source: str
    line: int


@dataclass(frozen=True)
class UserPrices:
    """The user's price file: per asset, rows sorted by time."""

    name: str = ""
    rows: dict[str, list[UserPrice]] = field(default_factory=dict)

    def lookup(self, asset: str, t: datetime) -> UserPrice | None:
        """The latest row for ``asset`` at or before ``t``, if less than USER_PRICE_VALIDITY before it."""
        rows = self.rows.get(asset)
        if not rows:
            return None
        i = bisect_right(rows, t, key=lambda r: r.time) - 1
        if i < 0 or t - rows[i].time >= USER_PRICE_VALIDITY:
            return None
        return rows[i]

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())


def parse_price_csv(lines: Iterable[str], name: str) -> UserPrices:
    """Parse a user price file (columns ``time,asset,price,currency,source``). Raises InputError."""
    out: dict[str, list[UserPrice]] = {}
    seen: dict[tuple[str, datetime], int] = {}
    for lineno, r in _rows(lines, name, ("time", "asset", "price", "currency", "source")):
        try:
            t = _parse_time(r["time"])
        except ValueError:
            raise InputError(f"{name}:{lineno}: time {r['time']!r} is not YYYY-MM-DD or an ISO-8601 date-time") from None
        asset = r["asset"].upper()
        if not asset:
            raise InputError(f"{name}:{lineno}: asset is empty")
        try:
            price = _decimal(r["price"], "price")
        except ValueError as exc:
            raise InputError(f"{name}:{lineno}: {exc}") from None
        if price < 0:
            raise InputError(f"{name}:{lineno}: price {r['price']} is negative")
        currency = r["currency"].upper()
        if currency not in FIAT:
            raise InputError(f"{name}:{lineno}: currency {r['currency']!r} is not one of {', '.join(FIAT)}")
        if (asset, t) in seen:
            raise InputError(f"{name}:{lineno}: second price for {asset} at {t.isoformat()} (first on line {seen[asset, t]})")
        seen[asset, t] = lineno
        out.setdefault(asset, []).append(UserPrice(t, price, currency, r["source"] or name, lineno))
    for rows in out.values():
        rows.sort(key=lambda r: r.time)
    return UserPrices(name, out)


class FxGap(InputError):
    """The FX file has no usable rate for a date an event needs."""


@dataclass(frozen=True)
class FxRates:
    """Units of ``currency`` per 1 USD, per date (``date,currency,rate``)."""

    name: str = ""
    rates: dict[str, dict[date, Decimal]] = field(default_factory=dict)

    def rate(self, currency: str, day: date) -> tuple[Decimal, date] | None:
        """The rate for ``day``, or the latest earlier one at most FX_LOOKBACK_DAYS before; None if none."""
        if currency == "USD":
            return _ONE, day
        table = self.rates.get(currency, {})
        for back in range(FX_LOOKBACK_DAYS + 1):
            d = day - timedelta(days=back)
            if d in table:
                return table[d], d
        return None


def parse_fx_csv(lines: Iterable[str], name: str) -> FxRates:
    """Parse an FX file (columns ``date,currency,rate``: 1 USD = rate units of currency). Raises InputError."""
    out: dict[str, dict[date, Decimal]] = {}
    seen: dict[tuple[str, date], int] = {}
    for lineno, r in _rows(lines, name, ("date", "currency", "rate")):
        try:
            day = date.fromisoformat(r["date"])
        except ValueError:
            raise InputError(f"{name}:{lineno}: date {r['date']!r} is not YYYY-MM-DD") from None
        currency = r["currency"].upper()
        if currency not in FIAT or currency == "USD":
            raise InputError(f"{name}:{lineno}: currency {r['currency']!r} is not one of {', '.join(c for c in FIAT if c != 'USD')} (rates are per 1 USD)")
        try:
            rate = _decimal(r["rate"], "rate")
        except ValueError as exc:
            raise InputError(f"{name}:{lineno}: {exc}") from None
        if rate <= 0:
            raise InputError(f"{name}:{lineno}: rate {r['rate']} must be positive")
        if (currency, day) in seen:
            raise InputError(f"{name}:{lineno}: second {currency} rate for {day} (first on line {seen[currency, day]})")
        seen[currency, day] = lineno
        out.setdefault(currency, {})[day] = rate
    return FxRates(name, out)


# -- entries in, values out ------------------------------------------------------------------------
class Bars(Protocol):
    """Cached klines, by symbol, interval and bar start (Unix seconds)."""

    def close(self, symbol: str, interval: str, start_s: int) -> Decimal | None: ...

    def why_missing(self, symbol: str, t: datetime, intervals: Sequence[str]) -> str: ...


class PostingIn(NamedTuple):
    id: int
    account: str
    asset: str
    quantity: Decimal


class EntryIn(NamedTuple):
    id: int
    key: str
    time: datetime
    kind: str
    postings: tuple[PostingIn, ...]


class Valued(NamedTuple):
    """The unit price of ``asset`` in ``entry_id`` (all its postings of that asset), or None and the reason."""

    entry_id: int
    asset: str
    unit_price: Decimal | None
    currency: str
    source: str


def is_holding_account(name: str) -> bool:
    """``Assets:Backpack:<acct>:Spot|Lent:<asset>`` or ``Liabilities:Backpack:<acct>:Borrowed:<asset>``."""
    parts = name.split(":", 4)  # the asset may hold a colon (exchange text, A-TEXT-1)
    if len(parts) != 5 or parts[1] != "Backpack":
        return False
    return (parts[0] == "Assets" and parts[3] in ("Spot", "Lent")) or (parts[0] == "Liabilities" and parts[3] == "Borrowed")


def kline_symbol(asset: str) -> str:
    return f"{asset}_{KLINE_QUOTE}"


def bar_start(t: datetime, interval: str) -> int:
    """Unix seconds of the start of the ``interval`` bar containing ``t``."""
    s = int((t - _EPOCH) // timedelta(seconds=1))
    return s - s % INTERVAL_SECONDS[interval]


def _stamp(s: int) -> str:
    return datetime.fromtimestamp(s, _UTC).strftime("%Y-%m-%dT%H:%MZ")


class _Price(NamedTuple):
    value: Decimal  # per unit, in ``currency``
    currency: str
    source: str


class Valuer:
    """Values entries one at a time. FX gaps are collected in :attr:`fx_gaps` (the caller raises)."""

    def __init__(self, settings: ValuationSettings, bars: Bars, *, user_prices: UserPrices | None = None,
                 fx: FxRates | None = None) -> None:
        self.settings = settings
        self.bars = bars
        self.user = user_prices or UserPrices()
        self.fx = fx
        self.fx_gaps: dict[str, set[date]] = {}
        self._intervals = settings.intervals

    # -- one asset, no trade context --------------------------------------------------------------
    def _kline(self, asset: str, t: datetime) -> _Price | str:
        symbol = kline_symbol(asset)
        for iv in self._intervals:
            start = bar_start(t, iv)
            close = self.bars.close(symbol, iv, start)
            if close is not None:
                return _Price(close, "USD", f"kline {symbol} {iv} {_stamp(start)} close")
        return self.bars.why_missing(symbol, t, self._intervals)

    def _direct(self, asset: str, t: datetime) -> _Price | str:
        """Override, then fiat, stablecoin policy, klines. A str is the reason it is unpriced."""
        row = self.user.lookup(asset, t)
        if row is not None:
            return _Price(row.price, row.currency, f"user {row.source} ({self.user.name}:{row.line})")
        if asset in FIAT:
            return _Price(_ONE, asset, "fiat")
        if asset in STABLECOINS:
            if self.settings.stablecoin_policy == "par" or asset == KLINE_QUOTE:
                return _Price(_ONE, "USD", "stablecoin par")
            p = self._kline(asset, t)
            return p if isinstance(p, str) else p._replace(source="stablecoin market, " + p.source)
        return self._kline(asset, t)

    def _to_reporting(self, p: _Price, day: date) -> _Price | str:
        cur = self.settings.currency
        if p.currency == cur:
            return p
        value, notes = p.value, []
        for c, op in ((p.currency, "from"), (cur, "to")):
            if c == "USD":
                continue
            found = self.fx.rate(c, day) if self.fx is not None else None
            if found is None:
                self.fx_gaps.setdefault(c, set()).add(day)
                where = self.fx.name if self.fx is not None else "no FX file configured"
                return f"no {c} rate for {day} ({where})"
            rate, used = found
            value = EXACT.divide(value, rate) if op == "from" else EXACT.multiply(value, rate)
            notes.append(f"fx {c} {used}")
        return _Price(value, cur, p.source + "; " + ", ".join(notes))

    # -- one entry -------------------------------------------------------------------------------------
    def value_entry(self, e: EntryIn) -> list[Valued]:
        need: list[str] = []
        for p in e.postings:
            if p.asset not in need and is_holding_account(p.account):
                need.append(p.asset)
        if not need:
            return []
        day = e.time.astimezone(_UTC).date()
        found: dict[str, _Price | str] = {}
        if e.kind in TRADE_KINDS:
            legs = [(p.asset, p.quantity) for p in e.postings if p.account == "Equity:Trading"]
            if len(legs) == 2 and legs[0][0] != legs[1][0]:
                (base, bq), (quote, qq) = legs
                q = self._direct(quote, e.time)
                q = q if isinstance(q, str) else self._to_reporting(q, day)
                found[quote] = q
                if self.user.lookup(base, e.time) is None and bq != 0:
                    if isinstance(q, str):
                        found[base] = f"trade price needs {quote}, which is {q}"
                    else:
                        rate = EXACT.divide(abs(qq), abs(bq))
                        found[base] = _Price(EXACT.multiply(rate, q.value), q.currency, f"trade @{plain(rate)} {quote}")
        out = []
        for asset in need:
            p = found.get(asset)
            if p is None:
                p = self._direct(asset, e.time)
                if not isinstance(p, str):
                    p = self._to_reporting(p, day)
            if isinstance(p, str):
                out.append(Valued(e.id, asset, None, self.settings.currency, (UNPRICED + p)[:255]))
            else:
                out.append(Valued(e.id, asset, p.value, p.currency, p.source[:255]))
        return out

    def fx_gap_error(self) -> FxGap | None:
        """One line naming the file and the first missing date, or None when no rate was missing."""
        if not self.fx_gaps:
            return None
        cur = min(self.fx_gaps)
        days = sorted(self.fx_gaps[cur])
        more = sum(len(v) for v in self.fx_gaps.values()) - 1
        name = self.fx.name if self.fx is not None else "reporting.fx_file (not set)"
        tail = f" and {more} other date(s)" if more else ""
        return FxGap(
            f"{name}: no {cur} rate for {days[0]}{tail} (a date uses its own rate or one at most "
            f"{FX_LOOKBACK_DAYS} days earlier); add the missing rows"
        )
