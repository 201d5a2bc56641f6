"""DuckDB market store (`market.duckdb`) and the point-in-time price panel strategies see."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from qgtm.core.config import DemoConfig
from qgtm.core.universe import Universe
from qgtm.engine.data.demo import GENERATOR_VERSION, generate_demo_market

log = logging.getLogger(__name__)

MARKET_DB = "market.duckdb"


class MarketDataError(RuntimeError):
    """The market store is missing data the engine needs."""


@dataclass(frozen=True, slots=True)
class PricePanel:
    """Daily bars of the whole universe as aligned arrays: rows are sessions, columns symbols."""

    dates: tuple[date, ...]
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def history_before(self, index: int) -> PricePanel:
        """Bars strictly before session `index`: all a decision on that session may see."""
        if index < 0:
            raise IndexError("session index must be >= 0")
        return PricePanel(
            self.dates[:index],
            self.symbols,
            self.open[:index],
            self.high[:index],
            self.low[:index],
            self.close[:index],
            self.volume[:index],
        )

    def __len__(self) -> int:
        return len(self.dates)


class MarketStore:
    """Owns `market.duckdb`: the bars table and its provenance."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / MARKET_DB
        self._con = duckdb.connect(str(self.path))
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
        )

    def close(self) -> None:
        """Release the DuckDB file."""
        self._con.close()

    def _meta(self, key: str) -> str | None:
        rows = self._con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return str(rows[0][0]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self._con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def ensure_demo(self, universe: Universe, demo: DemoConfig) -> bool:
        """Generate the demo market unless the stored one has the same provenance.

        Returns True when bars were (re)generated.
        """
        provenance = f"v{GENERATOR_VERSION}|seed={demo.seed}|{demo.start}|{demo.end}"
        provenance += "|" + ",".join(universe.symbols)
        if self._meta("demo_provenance") == provenance:
            return False
        market = generate_demo_market(universe, demo.start, demo.end, demo.seed)
        bars = market.bars.with_columns(pl.lit("demo").alias("source"))
        self._con.register("generated_bars", bars)
        self._con.register("generated_regimes", market.regimes)
        self._con.execute("BEGIN TRANSACTION")
        self._con.execute("CREATE OR REPLACE TABLE bars AS SELECT * FROM generated_bars")
        self._con.execute("CREATE OR REPLACE TABLE demo_regimes AS SELECT * FROM generated_regimes")
        self._set_meta("demo_provenance", provenance)
        self._con.execute("COMMIT")
        self._con.unregister("generated_bars")
        self._con.unregister("generated_regimes")
        log.info("event=demo_generated sessions=%d seed=%d", market.regimes.height, demo.seed)
        return True

    def upsert_user_bars(self, bars: pl.DataFrame) -> int:
        """Store the user's accepted bars with source='user', replacing the same (symbol, date).

        Returns the number of bars written.
        """
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS bars (symbol VARCHAR, date DATE, open DOUBLE, "
            "high DOUBLE, low DOUBLE, close DOUBLE, volume BIGINT, source VARCHAR)"
        )
        con.register("user_bars_in", bars)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "DELETE FROM bars WHERE (symbol, date) IN (SELECT (symbol, date) FROM user_bars_in)"
        )
        con.execute(
            "INSERT INTO bars (symbol, date, open, high, low, close, volume, source) "
            "SELECT symbol, date, open, high, low, close, volume, 'user' FROM user_bars_in"
        )
        con.execute("COMMIT")
        con.unregister("user_bars_in")
        return bars.height

    def load_panel(self, symbols: tuple[str, ...]) -> PricePanel:
        """All stored bars for `symbols`, aligned by session; missing bars are an error."""
        result = self._con.sql(
            "SELECT symbol, date, open, high, low, close, volume FROM bars "
            "WHERE symbol IN (SELECT unnest(?)) ORDER BY date, symbol",
            params=[list(symbols)],
        )
        frame = pl.from_arrow(result.to_arrow_table())
        if frame.is_empty():
            raise MarketDataError(f"no bars stored in {self.path}")
        fields = {}
        for name in ("open", "high", "low", "close", "volume"):
            wide = frame.pivot(on="symbol", index="date", values=name).sort("date")
            missing = [s for s in symbols if s not in wide.columns]
            if missing:
                raise MarketDataError(f"no bars for {', '.join(missing)} in {self.path}")
            values = wide.select(symbols).to_numpy()
            if np.isnan(values.astype(float)).any():
                raise MarketDataError(f"gaps in {name} bars in {self.path}")
            fields[name] = values
            dates = tuple(wide["date"].to_list())
        return PricePanel(dates=dates, symbols=symbols, **fields)
