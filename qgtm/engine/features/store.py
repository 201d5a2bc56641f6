"""The feature store: versioned transforms over a PricePanel, cached in `market.duckdb`.

A result is keyed by (name, version, params, data hash). Asking again with the same key
reads the cached array; a new transform version, other parameters or different bars
(the data hash covers dates, symbols and every OHLCV array) recompute it and replace the
stale entry for that (name, params).

Point-in-time macro and COT features over the provider series (FRED, CFTC) are cached in
the same table by qgtm.engine.features.pit_features (names prefixed "aux:").
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from qgtm.engine.data.store import MARKET_DB, PricePanel
from qgtm.engine.features import transforms as tf


class UnknownFeatureError(KeyError):
    """A feature name nobody registered."""

    def __str__(self) -> str:
        return f"unknown feature {self.args[0]!r}; known: {', '.join(sorted(FEATURES))}"


@dataclass(frozen=True, slots=True)
class Feature:
    """A named, versioned transform: bump `version` whenever its output would change."""

    name: str
    version: int
    compute: Callable[..., np.ndarray]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


def _pair(panel: PricePanel, front: str, deferred: str) -> tuple[np.ndarray, np.ndarray]:
    return panel.close[:, panel.symbols.index(front)], panel.close[:, panel.symbols.index(deferred)]


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("log_returns", 1, lambda p: tf.log_returns(p.close), {}, "daily log returns"),
        Feature(
            "horizon_return",
            1,
            lambda p, horizon, skip: tf.horizon_return(p.close, horizon, skip),
            {"horizon": 21, "skip": 0},
            "log return over `horizon` sessions, skipping the last `skip`",
        ),
        Feature(
            "realised_vol",
            1,
            lambda p, window: tf.realised_vol(p.close, window),
            {"window": 63},
            "annualised realised volatility",
        ),
        Feature(
            "ewma_vol",
            1,
            lambda p, lam: tf.ewma_vol(p.close, lam),
            {"lam": 0.94},
            "RiskMetrics EWMA volatility, annualised",
        ),
        Feature(
            "drawdown", 1, lambda p: tf.drawdown(p.close), {}, "drawdown from the running peak"
        ),
        Feature(
            "zscore",
            1,
            lambda p, window: tf.zscore(np.log(p.close), window),
            {"window": 60},
            "z-score of the log price",
        ),
        Feature(
            "rolling_corr",
            1,
            lambda p, a, b, window: tf.rolling_corr(*_returns_of(p, a, b), window),
            {"a": "GLD", "b": "SLV", "window": 63},
            "rolling correlation of two funds' daily returns",
        ),
        Feature(
            "average_correlation",
            1,
            lambda p, window: tf.rolling_average_correlation(p.close, window),
            {"window": 21},
            "average pairwise correlation (correlation regime)",
        ),
        Feature(
            "term_structure_proxy",
            1,
            lambda p, front, deferred, window: tf.term_structure_proxy(
                *_pair(p, front, deferred), window
            ),
            {"front": "USO", "deferred": "BNO", "window": 63},
            "relative performance of a front-month fund against a deferred one",
        ),
        Feature(
            "rolling_hedge_ratio",
            1,
            lambda p, a, b, window: tf.rolling_hedge_ratio(*np.log(_pair(p, a, b)), window),
            {"a": "USO", "b": "BNO", "window": 60},
            "rolling OLS hedge ratio of log a on log b",
        ),
        Feature(
            "sma", 1, lambda p, window: tf.rolling_mean(p.close, window), {"window": 50}, "SMA"
        ),
        Feature("ema", 1, lambda p, span: tf.ema(p.close, span=span), {"span": 20}, "EMA"),
        Feature(
            "rolling_max", 1, lambda p, window: tf.rolling_max(p.close, window), {"window": 20}, ""
        ),
        Feature(
            "rolling_min", 1, lambda p, window: tf.rolling_min(p.close, window), {"window": 20}, ""
        ),
        Feature("rsi", 1, lambda p, period: tf.rsi(p.close, period), {"period": 14}, "Wilder RSI"),
        Feature(
            "atr",
            1,
            lambda p, period: tf.atr(p.high, p.low, p.close, period),
            {"period": 14},
            "average true range",
        ),
        Feature(
            "efficiency_ratio",
            1,
            lambda p, window: tf.efficiency_ratio(p.close, window),
            {"window": 63},
            "Kaufman efficiency ratio",
        ),
    )
}


def _returns_of(panel: PricePanel, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    returns = tf.log_returns(panel.close)
    return returns[:, panel.symbols.index(a)], returns[:, panel.symbols.index(b)]


def data_hash(panel: PricePanel) -> str:
    """blake2b over the panel's dates, symbols and OHLCV arrays."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update("|".join(d.isoformat() for d in panel.dates).encode())
    digest.update("|".join(panel.symbols).encode())
    for values in (panel.open, panel.high, panel.low, panel.close, panel.volume):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FeatureResult:
    """A feature's values (rows aligned with the panel's dates) and whether it was cached."""

    name: str
    values: np.ndarray
    cache_hit: bool


_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_cache (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    params VARCHAR NOT NULL,
    data_hash VARCHAR NOT NULL,
    payload BLOB NOT NULL,
    computed_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (name, version, params, data_hash)
)
"""


class FeatureStore:
    """Computes features through FEATURES and caches them in a DuckDB table."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._con = connection
        self._con.execute(_SCHEMA)

    @classmethod
    def open(cls, data_dir: Path) -> FeatureStore:
        """A store on `data_dir/market.duckdb` (its own connection)."""
        return cls(duckdb.connect(str(data_dir / MARKET_DB)))

    def get(self, name: str, panel: PricePanel, **params: Any) -> FeatureResult:
        """The feature's values over `panel`, from the cache when the key matches."""
        feature = FEATURES.get(name)
        if feature is None:
            raise UnknownFeatureError(name)
        unknown = set(params) - set(feature.defaults)
        if unknown:
            raise ValueError(f"feature {name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        merged = {**feature.defaults, **params}
        key_params = json.dumps(merged, sort_keys=True)
        digest = data_hash(panel)
        payload = self.cached(name, feature.version, key_params, digest)
        if payload is not None:
            return FeatureResult(name, np.load(io.BytesIO(payload)), cache_hit=True)
        values = np.asarray(feature.compute(panel, **merged), dtype=np.float64)
        buffer = io.BytesIO()
        np.save(buffer, values)
        self.put(name, feature.version, key_params, digest, buffer.getvalue())
        return FeatureResult(name, values, cache_hit=False)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The store's DuckDB connection (market.duckdb: bars, provider series, cache)."""
        return self._con

    def cached(self, name: str, version: int, params: str, digest: str) -> bytes | None:
        """The cached payload under the full key, or None."""
        row = self._con.execute(
            "SELECT payload FROM feature_cache WHERE name = ? AND version = ? AND params = ? "
            "AND data_hash = ?",
            [name, version, params, digest],
        ).fetchall()
        return bytes(row[0][0]) if row else None

    def put(self, name: str, version: int, params: str, digest: str, payload: bytes) -> None:
        """Cache `payload`, replacing any stale entry of the same (name, params)."""
        self._con.execute("BEGIN TRANSACTION")
        self._con.execute("DELETE FROM feature_cache WHERE name = ? AND params = ?", [name, params])
        self._con.execute(
            "INSERT INTO feature_cache (name, version, params, data_hash, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            [name, version, params, digest, payload],
        )
        self._con.execute("COMMIT")

    def cached_keys(self) -> list[tuple[str, int, str, str]]:
        """(name, version, params, data_hash) of every cached entry."""
        return [
            (str(n), int(v), str(p), str(h))
            for n, v, p, h in self._con.execute(
                "SELECT name, version, params, data_hash FROM feature_cache ORDER BY name, params"
            ).fetchall()
        ]

    def close(self) -> None:
        """Release the connection."""
        self._con.close()
