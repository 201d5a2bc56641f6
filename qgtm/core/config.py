"""Configuration: defaults, a TOML file, then environment variables, in that order.

Environment overrides are `QGTM_MODE`, `QGTM_SOURCE` and `QGTM_<SECTION>__<KEY>`
(for example `QGTM_ENGINE__SPEED=4`). Secrets never live here: broker and API keys
come from keyring.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, get_type_hints

from qgtm.core.enums import Mode, Source
from qgtm.core.types import RiskLimits


class ConfigError(ValueError):
    """The configuration is invalid; the message says which key and why."""


def _require(ok: bool, message: str) -> None:
    """A section's own check: ValueError, reported by _build as one line naming it."""
    if not ok:
        raise ValueError(message)


def _money(value: str, name: str, positive: bool = False) -> None:
    """`value` (a money amount kept as text for Decimal) is a finite number >= 0 (> 0)."""
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{name} must be a number of dollars, got {value!r}") from None
    bound = "> 0" if positive else ">= 0"
    _require(
        amount.is_finite() and (amount > 0 if positive else amount >= 0),
        f"{name} must be {bound}, got {value!r}",
    )


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """The synthetic demo market."""

    seed: int = 7
    start: date = date(2008, 1, 2)
    end: date = date(2025, 12, 31)

    def __post_init__(self) -> None:
        _require(self.start < self.end, f"start {self.start} must be before end {self.end}")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The trading engine and its replay clock."""

    speed: float = 1.0  # simulated sessions per second; 0 runs as fast as possible
    start: date | None = None  # first replay session; default: 5 years of history in
    # a market of 10 years or more (Research backtests on them), else one year of warm-up
    initial_cash: str = "1000000"
    strategies: tuple[str, ...] = ("tsmom",)
    gross_target: float = 0.6

    def __post_init__(self) -> None:
        _require(self.speed >= 0, f"speed must be >= 0 (0 = as fast as possible), got {self.speed}")
        _money(self.initial_cash, "initial_cash", positive=True)
        _require(self.gross_target > 0, f"gross_target must be > 0, got {self.gross_target}")


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """Paper execution costs and the smallest trade worth sending."""

    slippage_bps: float = 5.0
    commission_per_share: str = "0.005"
    min_trade_value: str = "5000"
    spread_bps: float = 2.0  # quoted spread; each paper fill pays half of it
    participation_cap: float = 0.10  # algo children take at most this share of bucket volume
    latency_ms: int = 50  # paper fills arrive this long after their bucket starts
    vwap_adv_fraction: float = 0.01  # orders above 1% of ADV are worked as VWAP
    twap_adv_fraction: float = 0.05  # above 5% of ADV: TWAP with the participation cap
    adv_window: int = 20  # sessions in the average daily volume
    broker: str = "paper"  # paper | alpaca (keys from keyring, never this file)
    alpaca_url: str = ""  # override Alpaca's REST base URL (default: the paper endpoint)
    alpaca_stream_url: str = ""  # override the trade_updates websocket URL

    def __post_init__(self) -> None:
        _require(
            self.broker in BROKERS,
            f"broker must be one of {', '.join(BROKERS)}, got {self.broker!r}",
        )
        _money(self.commission_per_share, "commission_per_share")
        _money(self.min_trade_value, "min_trade_value")
        for name in (
            "slippage_bps",
            "spread_bps",
            "latency_ms",
            "vwap_adv_fraction",  # 0: every order is worked as an algo
            "twap_adv_fraction",
        ):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(
            0 < self.participation_cap <= 1,
            f"participation_cap must be in (0, 1], got {self.participation_cap}",
        )
        _require(self.adv_window >= 1, f"adv_window must be >= 1, got {self.adv_window}")


BROKERS = ("paper", "alpaca")
"""Where orders go: the paper simulator or Alpaca (keys from the keyring)."""


ALLOCATION_METHODS = ("equal", "inverse_vol", "erc", "hrp")


@dataclass(frozen=True, slots=True)
class PortfolioConfig:
    """The allocator: weighting method, adaptive leverage bounds, the no-trade band."""

    method: str = "inverse_vol"  # equal | inverse_vol | erc | hrp
    cov_window: int = 63  # sessions of returns behind the covariance estimate
    max_leverage: float = 1.0  # multiplier on engine.gross_target at no drawdown
    min_leverage: float = 0.25  # multiplier once the drawdown reaches dampen_full
    dampen_start: float = 0.05  # drawdown where dampening begins
    dampen_full: float = 0.20  # drawdown where min_leverage applies
    no_trade_band: float = 0.005  # weight changes smaller than this are not traded

    def __post_init__(self) -> None:
        if self.method not in ALLOCATION_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(ALLOCATION_METHODS)}, got {self.method!r}"
            )
        if not 0 <= self.min_leverage <= self.max_leverage:
            raise ValueError("leverage bounds need 0 <= min_leverage <= max_leverage")
        if not 0 <= self.dampen_start < self.dampen_full:
            raise ValueError("drawdown dampening needs 0 <= dampen_start < dampen_full")
        if self.no_trade_band < 0 or self.cov_window < 3:
            raise ValueError("no_trade_band must be >= 0 and cov_window >= 3")


@dataclass(frozen=True, slots=True)
class LearnConfig:
    """Self-learning loop: decay thresholds, retrain gates, shadow duration."""

    enabled: bool = True
    window: int = 63  # sessions of strategy returns the decay monitor looks at
    warning_sharpe: float = 0.0
    decayed_sharpe: float = -0.75
    warning_hit_rate: float = 0.47
    decayed_hit_rate: float = 0.44
    warning_exposure_drift: float = 1.0
    decayed_exposure_drift: float = 1.5
    training_window: int = 756  # sessions of history a retrain may use
    min_oos_sharpe: float = 0.0  # walk-forward out-of-sample gate
    max_pbo: float = 0.5  # probability of backtest overfitting gate
    walk_forward_train: int = 252  # sessions each walk-forward fold fits on
    walk_forward_test: int = 63  # sessions each fold holds out
    pbo_splits: int = 8  # CSCV blocks (C(8, 4) = 70 combinations)
    shadow_sessions: int = 126  # simulated sessions a candidate shadows production
    promotion_p_value: float = 0.05
    cooldown_sessions: int = 126  # no new retrain of a strategy within this after the last

    def __post_init__(self) -> None:
        for name in (
            "window",
            "training_window",
            "walk_forward_train",
            "walk_forward_test",
            "shadow_sessions",
        ):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.cooldown_sessions >= 0, "cooldown_sessions must be >= 0")
        # CSCV splits the sessions into an even number of blocks (Bailey et al. 2017)
        _require(
            self.pbo_splits >= 2 and self.pbo_splits % 2 == 0,
            f"pbo_splits must be even and >= 2, got {self.pbo_splits}",
        )
        for name in ("max_pbo", "warning_hit_rate", "decayed_hit_rate"):
            value = getattr(self, name)
            _require(0 <= value <= 1, f"{name} must be in [0, 1], got {value}")
        _require(
            0 < self.promotion_p_value < 1,
            f"promotion_p_value must be in (0, 1), got {self.promotion_p_value}",
        )


DECISIONS = ("live", "signal")
"""How a backtest decides (backtest.result.BacktestSettings.decision): "live" runs the
live engine's allocator and every risk check, "signal" a quick inverse-vol ranking."""

KILL_RESETS = ("hold", "daily")
"""How a backtest, which has no operator, lets kill tiers step down
(killswitch.tier_after_close): "hold" never, "daily" the daily-loss tiers each session."""


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """What backtests add to the live book's settings: costs the paper broker does not
    charge, and how the kill switch steps down without an operator. `qgtm backtest
    --impact / --borrow / --kill-reset` override them for one run."""

    impact_bps_at_full_adv: float = 0.0  # impact in bps at 100% of ADV, linear below
    borrow_bps_annual: float = 0.0  # yearly fee on the value of shorts, charged each close
    kill_reset: str = "hold"  # hold: tiers stay, as live with nobody to reset; or daily

    def __post_init__(self) -> None:
        if self.kill_reset not in KILL_RESETS:
            raise ValueError(
                f"kill_reset must be one of {', '.join(KILL_RESETS)}, got {self.kill_reset!r}"
            )
        for name in ("impact_bps_at_full_adv", "borrow_bps_annual"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class TuiConfig:
    """Terminal preferences."""

    theme: str = "qgtm-dark"
    refresh_hz: float = 4.0
    keymap: Mapping[str, str] = field(default_factory=dict)  # binding id -> keys

    def __post_init__(self) -> None:
        _require(self.refresh_hz > 0, f"refresh_hz must be > 0, got {self.refresh_hz}")


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """Where the engine's outbox sends signals; empty url = record only, send nothing.

    The shared HMAC secret comes from $QGTM_PUBLISH_SECRET or the keyring, never from here.
    """

    url: str = ""
    batch_size: int = 100
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.max_backoff > 0, f"max_backoff must be > 0, got {self.max_backoff}")


REFRESH_SOURCES = ("alpaca", "fred", "cftc", "eia", "lbma")


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Daemon operations: reconciliation, heartbeat/watchdog, supervision, metrics."""

    recon_interval_s: float = 60.0
    recon_qty_tolerance: float = 0.05  # |broker - local| / max(|broker|, |local|) auto-adjusted
    recon_value_tolerance: float = 0.01  # relative market-value difference that is reported
    heartbeat_interval_s: float = 5.0
    watchdog: bool = True
    watchdog_timeout_s: float = 60.0
    task_max_restarts: int = 5  # failures of one task within task_window_s before escalation
    task_window_s: float = 300.0
    task_backoff_s: float = 1.0
    data_refresh_cron: str = "0 18 * * mon-fri"  # crontab (New York time)
    # Sources the data-refresh job fetches (alpaca, fred, cftc, eia, lbma); empty = the
    # engine's own market source only: alpaca bars with source=alpaca, nothing in demo.
    refresh_sources: tuple[str, ...] = ()
    metrics: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108

    def __post_init__(self) -> None:
        for name in (
            "recon_interval_s",
            "heartbeat_interval_s",
            "watchdog_timeout_s",
            "task_window_s",
        ):
            _require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        for name in (
            "recon_qty_tolerance",
            "recon_value_tolerance",
            "task_backoff_s",
            "task_max_restarts",
        ):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(
            0 <= self.metrics_port <= 65535,
            f"metrics_port must be in 0..65535 (0: any free port), got {self.metrics_port}",
        )
        _require(
            len(self.data_refresh_cron.split()) == 5,
            "data_refresh_cron must be a crontab line of 5 fields (minute hour day month "
            f"weekday), got {self.data_refresh_cron!r}",
        )
        unknown = [s for s in self.refresh_sources if s not in REFRESH_SOURCES]
        if unknown:
            raise ValueError(
                f"refresh_sources: unknown {', '.join(unknown)} "
                f"(choose from {', '.join(REFRESH_SOURCES)})"
            )


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration of one book."""

    mode: Mode = Mode.PAPER
    source: Source = Source.DEMO
    demo: DemoConfig = field(default_factory=DemoConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    tui: TuiConfig = field(default_factory=TuiConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    learn: LearnConfig = field(default_factory=LearnConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)

    @property
    def is_demo(self) -> bool:
        """True when trading the built-in synthetic market."""
        return self.source is Source.DEMO


_SECTIONS = (
    "demo",
    "engine",
    "risk",
    "execution",
    "tui",
    "publish",
    "portfolio",
    "live",
    "learn",
    "backtest",
)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turn a TOML or environment value into the field's declared type."""
    text = str(value).strip()
    try:
        if annotation in (Mode, Source):
            return annotation(text.lower())
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return text.lower() in _TRUE
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if annotation is str:
            return text
        if annotation in (date, date | None):
            if value in (None, ""):
                return None
            return value if isinstance(value, date) else date.fromisoformat(text)
        if annotation == Mapping[str, str]:
            if not isinstance(value, Mapping):
                raise ValueError("expected a table of binding id = keys")
            return {str(k): str(v) for k, v in value.items()}
        if annotation == tuple[str, ...]:
            items = value if isinstance(value, list | tuple) else text.split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
    except ValueError as exc:
        raise ConfigError(f"config key {key}: cannot use {value!r} ({exc})") from exc
    raise ConfigError(f"config key {key}: unsupported type {annotation}")


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown config key(s) in [{prefix}]: {', '.join(sorted(unknown))}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"[{prefix}]: {exc}") from exc


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("QGTM_"):
            continue
        key = name.removeprefix("QGTM_").lower()
        if key in ("mode", "source"):
            merged[key] = value
        elif "__" in key:
            section, _, field_name = key.partition("__")
            if section in _SECTIONS:
                merged.setdefault(section, {})[field_name] = value
    return merged


def config_from_mapping(raw: Mapping[str, Any]) -> Config:
    """Validate a nested mapping (as read from TOML) into a Config."""
    top_unknown = set(raw) - {"mode", "source", *_SECTIONS}
    if top_unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(sorted(top_unknown))}")
    hints = get_type_hints(Config)
    kwargs: dict[str, Any] = {}
    for key in ("mode", "source"):
        if key in raw:
            kwargs[key] = _coerce(raw[key], hints[key], key)
    for section in _SECTIONS:
        if section in raw:
            if not isinstance(raw[section], Mapping):
                raise ConfigError(f"[{section}] must be a table")
            kwargs[section] = _build(hints[section], raw[section], section)
    config = Config(**kwargs)
    if config.source is Source.ALPACA and "broker" not in raw.get("execution", {}):
        # source=alpaca trades through the Alpaca broker unless the file says otherwise.
        config = dataclasses.replace(
            config, execution=dataclasses.replace(config.execution, broker="alpaca")
        )
    return config


def config_to_toml(config: Config) -> str:
    """The configuration as TOML that `load_config` reads back to the same Config
    (`qgtm config` prints it; save it as config.toml to start from the effective one).
    Keys with no value (None) are left out: TOML has no null, and absent means default."""
    import tomli_w

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items() if v is not None}
        if isinstance(value, Decimal):
            return str(value)
        return value

    raw: dict[str, Any] = {"mode": config.mode.value, "source": config.source.value}
    for section in _SECTIONS:
        fields = dataclasses.asdict(getattr(config, section))
        raw[section] = {k: plain(v) for k, v in fields.items() if v is not None}
    return tomli_w.dumps(raw)


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, overlaid by the TOML file at `path` (if it exists), then by env vars."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    for key, value in _env_overrides(environ).items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return config_from_mapping(raw)


def live_trading_allowed(config: Config, environ: Mapping[str, str] | None = None) -> bool:
    """Live orders need all three: mode=live, LIVE_TRADING_ENABLED=true, a real broker source."""
    environ = os.environ if environ is None else environ
    return (
        config.mode is Mode.LIVE
        and environ.get("LIVE_TRADING_ENABLED", "").lower() == "true"
        and config.source is Source.ALPACA
    )


def check_tradeable(config: Config, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a config that asks for live trading without every gate open.

    source=alpaca with mode=paper trades Alpaca's paper endpoint (keys from the keyring or
    APCA_* env, never this file); mode=live needs LIVE_TRADING_ENABLED=true as well.
    """
    if config.mode is Mode.LIVE and not live_trading_allowed(config, environ):
        raise ConfigError(
            "mode=live needs LIVE_TRADING_ENABLED=true in the environment and source=alpaca "
            "with a configured account; refusing to start (use mode=paper)"
        )
    if config.source is Source.ALPACA and config.execution.broker != "alpaca":
        raise ConfigError(
            "source=alpaca trades through the Alpaca broker: set execution.broker = "
            '"alpaca" (or leave it unset), not ' + repr(config.execution.broker)
        )
