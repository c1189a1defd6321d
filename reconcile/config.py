"""Loading and checking ``reconcile.toml``.

Every problem is a :class:`ConfigError` whose message is one line naming the file, the key and the
problem; the CLI prints it and exits 2 before anything is written. Secrets are read from a file
(which must not be readable by group or others) or an environment variable, never inline, and are
never part of a message.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "AccountConfig", "ReportingConfig", "TaxConfig", "Config", "load_config", "resolve_config_path", "resolve_db_url", "DEFAULT_DB_URL"]

DEFAULT_DB_URL = "sqlite:///reconcile.db"
DEFAULT_BASE_URL = "https://api.backpack.exchange"

METHODS = ("fifo", "lifo", "hifo", "lofo", "average", "uk", "acb", "total-average", "moving-average")
SCOPES = ("universal", "account")
JURISDICTIONS = ("us", "uk", "de", "ca", "au", "jp", "generic")
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
PERP_METHODS = ("average", "fifo")  # ledger.booking.perps.PERP_METHODS


class ConfigError(Exception):
    """A configuration problem: one line naming the file, the key and the problem."""


@dataclass(frozen=True)
class AccountConfig:
    name: str
    api_key: str
    base_url: str = DEFAULT_BASE_URL
    api_secret_file: str | None = None
    api_secret_env: str | None = None
    window_ms: int = 5000
    rate_per_second: float = 20.0
    #: Pace of historical market data requests (klines): the exchange allows 30 a minute.
    kline_rate_per_minute: float = 30.0
    #: The WebSocket endpoint for ``reconcile watch`` (None: derived from base_url; docs/watch.md).
    ws_url: str | None = None
    #: Where the secret came from, for messages ("file secret.txt", "env BPX_SECRET"); never the secret.
    _secret_source: str = field(default="", repr=False)

    def read_secret(self, where: str = "config") -> str:
        """Read the API secret now (from its file or variable). Raises ConfigError naming the key."""
        if self.api_secret_file:
            path = Path(self.api_secret_file)
            try:
                st = path.stat()
            except OSError:
                raise ConfigError(f"{where}: accounts[{self.name}].api_secret_file: {path} does not exist or cannot be read") from None
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{where}: accounts[{self.name}].api_secret_file: {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 {path}"
                )
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:  # never the bytes: they may be the secret
                raise ConfigError(f"{where}: accounts[{self.name}].api_secret_file: {path} is not UTF-8 text (the secret is base64, ASCII)") from None
            except OSError as exc:
                raise ConfigError(f"{where}: accounts[{self.name}].api_secret_file: {path}: {exc.strerror}") from None
            if not secret:
                raise ConfigError(f"{where}: accounts[{self.name}].api_secret_file: {path} is empty")
            return secret
        if self.api_secret_env:
            secret = os.environ.get(self.api_secret_env, "").strip()
            if not secret:
                raise ConfigError(f"{where}: accounts[{self.name}].api_secret_env: environment variable {self.api_secret_env} is not set")
            return secret
        raise ConfigError(f"{where}: accounts[{self.name}]: missing secret: set api_secret_file or api_secret_env")

    def __repr__(self) -> str:
        return f"AccountConfig(name={self.name!r}, api_key={self.api_key!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class ReportingConfig:
    currency: str = "USD"
    jurisdiction: str = "us"
    method: str = "fifo"
    scope: str | None = None  # None: the jurisdiction's default (docs/methods.md)
    #: Stablecoins valued 1:1 against USD (docs/pricing.md).
    stablecoin_policy: str = "par"
    fx_file: str | None = None
    price_file: str | None = None
    opening_lots: str | None = None
    transfer_fee_policy: str = "disposal"
    method_by_year: dict[int, str] = field(default_factory=dict)
    #: The finest kline bar used for prices: 1m (default), 1h or 1d (docs/pricing.md).
    price_resolution: str = "1m"
    #: Perpetual matching method, average or fifo; None: the jurisdiction's default (docs/perps.md).
    perp_method: str | None = None
    #: jp average methods: exact unit costs (default), or rounded to whole yen (up, half-up) (docs/methods.md).
    unit_cost_rounding: str = "exact"
    #: IANA zone of the tax day for the configured jurisdiction (None: its own, e.g. America/Toronto for ca).
    tax_timezone: str | None = None


FORM_1099DA_STATUSES = ("basis-reported", "basis-not-reported", "none")


@dataclass(frozen=True)
class TaxConfig:
    """``[tax]``: what the user's tax documents say. ``form_1099da[(account, year)]`` is what the 1099-DA
    for that account and year says: ``basis-reported`` (Form 8949 box G/J), ``basis-not-reported`` (H/K)
    or ``none`` (no 1099-DA: I/L, the default). Before 2025 the same statuses choose A/D, B/E, C/F."""

    form_1099da: dict[tuple[str, int], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    path: Path | None
    database_url: str | None = None
    accounts: tuple[AccountConfig, ...] = ()
    reporting: ReportingConfig = ReportingConfig()
    tax: TaxConfig = TaxConfig()

    def account(self, name: str) -> AccountConfig:
        for a in self.accounts:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.accounts) or "none"
        raise ConfigError(f"{self.path or 'config'}: no account named {name!r} (configured: {known})")


_TOP_KEYS = {"database", "accounts", "reporting", "tax"}
_DB_KEYS = {"url"}
_ACCOUNT_KEYS = {"name", "api_key", "api_secret_file", "api_secret_env", "base_url", "window_ms", "rate_per_second", "kline_rate_per_minute", "ws_url"}
_REPORTING_KEYS = {
    "currency",
    "jurisdiction",
    "method",
    "scope",
    "stablecoin_policy",
    "fx_file",
    "price_file",
    "opening_lots",
    "transfer_fee_policy",
    "method_by_year",
    "unit_cost_rounding",
    "tax_timezone",
    "perp_method",
    "price_resolution",
}


def _check_keys(where: str, section: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: {section}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _typed(where: str, key: str, value: Any, typ: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and typ is not bool:
        raise ConfigError(f"{where}: {key}: expected {what}, got a boolean")
    if not isinstance(value, typ):
        raise ConfigError(f"{where}: {key}: expected {what}, got {type(value).__name__}")
    return value


def resolve_config_path(explicit: str | None) -> Path | None:
    """``--config`` over ``RECONCILE_CONFIG`` over ``./reconcile.toml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RECONCILE_CONFIG")
    if env:
        return Path(env)
    default = Path("reconcile.toml")
    return default if default.exists() else None


def load_config(path: Path | None) -> Config:
    """Parse and check a config file; ``None`` gives the empty default config."""
    if path is None:
        return Config(path=None)
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: TOML syntax error: {exc}") from None
    _check_keys(where, "", data, _TOP_KEYS)

    db_url = None
    if "database" in data:
        db = _typed(where, "database", data["database"], dict, "a table")
        _check_keys(where, "database.", db, _DB_KEYS)
        if "url" in db:
            db_url = _typed(where, "database.url", db["url"], str, "a string")

    accounts: list[AccountConfig] = []
    raw_accounts = _typed(where, "accounts", data.get("accounts", []), list, "an array of tables ([[accounts]])")
    seen: set[str] = set()
    for i, acc in enumerate(raw_accounts):
        sec = f"accounts[{i}]"
        _typed(where, sec, acc, dict, "a table")
        _check_keys(where, sec + ".", acc, _ACCOUNT_KEYS)
        if "api_secret" in acc:  # pragma: no cover - caught by _check_keys; kept for the message
            raise ConfigError(f"{where}: {sec}.api_secret: never put the secret inline; use api_secret_file or api_secret_env")
        for req in ("name", "api_key"):
            if req not in acc:
                raise ConfigError(f"{where}: {sec}.{req}: missing required key")
        name = _typed(where, f"{sec}.name", acc["name"], str, "a string")
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}: {sec}.name: {name!r} must be letters, digits, - or _")
        if name in seen:
            raise ConfigError(f"{where}: {sec}.name: duplicate account name {name!r}")
        seen.add(name)
        api_key = _typed(where, f"{sec}.api_key", acc["api_key"], str, "a string")
        secret_file = acc.get("api_secret_file")
        secret_env = acc.get("api_secret_env")
        if secret_file is not None:
            _typed(where, f"{sec}.api_secret_file", secret_file, str, "a string")
            p = Path(secret_file)
            if not p.is_absolute():
                secret_file = str((path.parent / p))
        if secret_env is not None:
            _typed(where, f"{sec}.api_secret_env", secret_env, str, "a string")
        if secret_file and secret_env:
            raise ConfigError(f"{where}: {sec}: set only one of api_secret_file and api_secret_env")
        if not secret_file and not secret_env:
            raise ConfigError(f"{where}: {sec}: missing secret: set api_secret_file or api_secret_env")
        base_url = _typed(where, f"{sec}.base_url", acc.get("base_url", DEFAULT_BASE_URL), str, "a string")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: {sec}.base_url: {base_url!r} is not an http(s) URL")
        window = _typed(where, f"{sec}.window_ms", acc.get("window_ms", 5000), int, "an integer")
        if not 1 <= window <= 60000:
            raise ConfigError(f"{where}: {sec}.window_ms: {window} is outside 1..60000")
        rate = _typed(where, f"{sec}.rate_per_second", acc.get("rate_per_second", 20), (int, float), "a number")
        if rate <= 0:
            raise ConfigError(f"{where}: {sec}.rate_per_second: must be positive")
        kline_rate = _typed(where, f"{sec}.kline_rate_per_minute", acc.get("kline_rate_per_minute", 30), (int, float), "a number")
        if kline_rate <= 0:
            raise ConfigError(f"{where}: {sec}.kline_rate_per_minute: must be positive")
        ws_url = acc.get("ws_url")
        if ws_url is not None and not (isinstance(ws_url, str) and ws_url.startswith(("ws://", "wss://"))):
            raise ConfigError(f"{where}: {sec}.ws_url: {ws_url!r} is not a ws:// or wss:// URL")
        accounts.append(
            AccountConfig(
                name=name,
                ws_url=ws_url,
                api_key=api_key,
                base_url=base_url.rstrip("/"),
                api_secret_file=secret_file,
                api_secret_env=secret_env,
                window_ms=window,
                rate_per_second=float(rate),
                kline_rate_per_minute=float(kline_rate),
            )
        )

    reporting = ReportingConfig()
    if "reporting" in data:
        rep = _typed(where, "reporting", data["reporting"], dict, "a table")
        _check_keys(where, "reporting.", rep, _REPORTING_KEYS)
        values: dict[str, Any] = {}
        for key, allowed in (("currency", CURRENCIES), ("jurisdiction", JURISDICTIONS), ("method", METHODS), ("scope", SCOPES)):
            if key in rep:
                v = _typed(where, f"reporting.{key}", rep[key], str, "a string")
                v = v.upper() if key == "currency" else v.lower()
                if v not in allowed:
                    raise ConfigError(f"{where}: reporting.{key}: {rep[key]!r} is not one of {', '.join(allowed)}")
                values[key] = v
        if "stablecoin_policy" in rep:
            v = _typed(where, "reporting.stablecoin_policy", rep["stablecoin_policy"], str, "a string")
            if v not in ("par", "market"):
                raise ConfigError(f"{where}: reporting.stablecoin_policy: {v!r} is not one of par, market")
            values["stablecoin_policy"] = v
        if "transfer_fee_policy" in rep:
            v = _typed(where, "reporting.transfer_fee_policy", rep["transfer_fee_policy"], str, "a string")
            if v not in ("disposal", "add-to-basis"):
                raise ConfigError(f"{where}: reporting.transfer_fee_policy: {v!r} is not one of disposal, add-to-basis")
            values["transfer_fee_policy"] = v
        for key in ("fx_file", "price_file", "opening_lots"):
            if key in rep:
                v = _typed(where, f"reporting.{key}", rep[key], str, "a string")
                p = Path(v)
                values[key] = str(p if p.is_absolute() else path.parent / p)
        if "unit_cost_rounding" in rep:
            v = _typed(where, "reporting.unit_cost_rounding", rep["unit_cost_rounding"], str, "a string")
            if v not in ("exact", "up", "half-up"):
                raise ConfigError(f"{where}: reporting.unit_cost_rounding: {v!r} is not one of exact, up, half-up")
            values["unit_cost_rounding"] = v
        if "tax_timezone" in rep:
            v = _typed(where, "reporting.tax_timezone", rep["tax_timezone"], str, "a string")
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(v)
            except Exception:  # noqa: BLE001 - any zone that does not resolve is a config error
                raise ConfigError(f"{where}: reporting.tax_timezone: {v!r} is not an IANA time zone (e.g. America/Vancouver)") from None
            values["tax_timezone"] = v
        if "price_resolution" in rep:
            v = _typed(where, "reporting.price_resolution", rep["price_resolution"], str, "a string")
            if v not in ("1m", "1h", "1d"):
                raise ConfigError(f"{where}: reporting.price_resolution: {v!r} is not one of 1m, 1h, 1d")
            values["price_resolution"] = v
        if "perp_method" in rep:
            v = _typed(where, "reporting.perp_method", rep["perp_method"], str, "a string").lower()
            if v not in PERP_METHODS:
                raise ConfigError(f"{where}: reporting.perp_method: {rep['perp_method']!r} is not one of {', '.join(PERP_METHODS)}")
            values["perp_method"] = v
        if "method_by_year" in rep:
            mby = _typed(where, "reporting.method_by_year", rep["method_by_year"], dict, "a table of year = method")
            out: dict[int, str] = {}
            for y, m in mby.items():
                if not (isinstance(y, str) and y.isdigit() and len(y) == 4):
                    raise ConfigError(f"{where}: reporting.method_by_year.{y}: key must be a four-digit year")
                if m not in METHODS:
                    raise ConfigError(f"{where}: reporting.method_by_year.{y}: {m!r} is not one of {', '.join(METHODS)}")
                out[int(y)] = m
            values["method_by_year"] = out
        if "method" not in values and "jurisdiction" in values:  # the jurisdiction's own default (uk, ca, jp: their pooled methods)
            from ledger.booking.jurisdictions import jurisdiction as _jurisdiction

            values["method"] = _jurisdiction(values["jurisdiction"]).default_method
        reporting = ReportingConfig(**values)

    tax = _tax(where, data.get("tax"))
    return Config(path=path, database_url=db_url, accounts=tuple(accounts), reporting=reporting, tax=tax)


def _tax(where: str, raw: Any) -> TaxConfig:
    """``[tax.form_1099da]``: ``<account> = { <year> = "basis-reported" | "basis-not-reported" | "none" }``."""
    if raw is None:
        return TaxConfig()
    tax = _typed(where, "tax", raw, dict, "a table")
    _check_keys(where, "tax.", tax, {"form_1099da"})
    out: dict[tuple[str, int], str] = {}
    table = _typed(where, "tax.form_1099da", tax.get("form_1099da", {}), dict, "a table of account = { year = status }")
    for acct, years in table.items():
        _typed(where, f"tax.form_1099da.{acct}", years, dict, "a table of year = status")
        for y, status in years.items():
            if not (isinstance(y, str) and y.isdigit() and len(y) == 4):
                raise ConfigError(f"{where}: tax.form_1099da.{acct}.{y}: key must be a four-digit year")
            if status not in FORM_1099DA_STATUSES:
                raise ConfigError(f"{where}: tax.form_1099da.{acct}.{y}: {status!r} is not one of {', '.join(FORM_1099DA_STATUSES)}")
            out[(acct, int(y))] = status
    return TaxConfig(form_1099da=out)


def resolve_db_url(cli_db: str | None, config: Config) -> str:
    """``--db`` over ``RECONCILE_DB`` over the config file over ``sqlite:///reconcile.db``."""
    return cli_db or os.environ.get("RECONCILE_DB") or config.database_url or DEFAULT_DB_URL
