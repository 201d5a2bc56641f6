"""DuckDB market store (`market.duckdb`) and the point-in-time price panel strategies see."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from qgtm.core.config import DemoConfig
from qgtm.core.universe import Universe
from qgtm.engine.data.demo import GENERATOR_VERSION, generate_demo_market

log = logging.getLogger(__name__)

MARKET_DB = "market.duckdb"


PROVIDER_TABLES = (
    # Macro / alt series: one row per (period, vintage); knowledge_time = when it was public.
    "CREATE TABLE IF NOT EXISTS series (dataset VARCHAR NOT NULL, series VARCHAR NOT NULL, "
    "period DATE NOT NULL, value DOUBLE, knowledge_time TIMESTAMPTZ NOT NULL, "
    "ingested_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (dataset, series, period, knowledge_time))",
    # Provider bars (Alpaca), kept apart from the demo's `bars` table.
    "CREATE TABLE IF NOT EXISTS provider_bars (symbol VARCHAR NOT NULL, "
    "timeframe VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, "
    "low DOUBLE, close DOUBLE, volume DOUBLE, knowledge_time TIMESTAMPTZ NOT NULL, "
    "ingested_at TIMESTAMPTZ NOT NULL, "
    "PRIMARY KEY (symbol, timeframe, ts))",
    "CREATE TABLE IF NOT EXISTS quality_failures (dataset VARCHAR NOT NULL, "
    "subject VARCHAR NOT NULL, check_name VARCHAR NOT NULL, severity VARCHAR NOT NULL, "
    "day DATE NOT NULL, detail VARCHAR NOT NULL, found_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ingest_log (dataset VARCHAR NOT NULL, "
    "ingested_at TIMESTAMPTZ NOT NULL, row_count BIGINT NOT NULL, "
    "status VARCHAR NOT NULL, detail VARCHAR NOT NULL)",
)


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
        self._con.execute("SET TimeZone = 'UTC'")
        for ddl in PROVIDER_TABLES:
            self._con.execute(ddl)

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

    def load_provider_panel(
        self, symbols: tuple[str, ...], known_by: datetime, timeframe: str = "1Day"
    ) -> PricePanel:
        """Provider (Alpaca) daily bars known by `known_by`, aligned by New York session day.

        Only bars whose knowledge_time (the session close) is at or before `known_by` are
        used, so a bar still forming is never traded on. The panel starts at the first day
        every symbol has a bar; a later missing bar repeats the previous close with zero
        volume (logged), so one absent IEX print does not stop the book.
        """
        result = self._con.sql(
            "SELECT symbol, timezone('America/New_York', ts)::DATE AS date, open, high, low, "
            "close, volume FROM provider_bars WHERE timeframe = ? AND knowledge_time <= ? "
            "AND symbol IN (SELECT unnest(?)) ORDER BY date, symbol",
            params=[timeframe, known_by, list(symbols)],
        )
        frame = pl.from_arrow(result.to_arrow_table())
        if frame.is_empty():
            raise MarketDataError(
                f"no {timeframe} provider bars stored in {self.path}: fetch them with "
                "`qgtm data fetch alpaca`"
            )
        missing = sorted(set(symbols) - set(frame["symbol"].unique().to_list()))
        if missing:
            raise MarketDataError(f"no provider bars for {', '.join(missing)} in {self.path}")
        firsts = frame.group_by("symbol").agg(pl.col("date").min())["date"]
        frame = frame.filter(pl.col("date") >= firsts.max())
        fields: dict[str, np.ndarray] = {}
        wide_close = frame.pivot(on="symbol", index="date", values="close").sort("date")
        gaps = int(wide_close.select(symbols).null_count().sum_horizontal()[0])
        if gaps:
            log.warning("event=provider_bar_gaps count=%d filled=previous_close", gaps)
        close = wide_close.select(symbols).fill_null(strategy="forward")
        dates = tuple(wide_close["date"].to_list())
        for name in ("open", "high", "low", "close", "volume"):
            wide = frame.pivot(on="symbol", index="date", values=name).sort("date")
            values = wide.select(symbols)
            if name == "volume":
                values = values.fill_null(0.0)
            else:
                values = pl.DataFrame(
                    [values[s].fill_null(close[s]) for s in symbols]
                )  # a missing bar is flat at the previous close
            fields[name] = values.to_numpy().astype(float)
        return PricePanel(dates=dates, symbols=symbols, **fields)

    # ----- provider data (macro / alt series, provider bars) -------------------------
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for point-in-time joins and the quality suite."""
        return self._con

    def upsert_series(self, frame: pl.DataFrame) -> int:
        """Insert or replace series rows (SERIES_SCHEMA); returns the number written."""
        if frame.is_empty():
            return 0
        self._con.register("incoming_series", frame)
        self._con.execute(
            "INSERT OR REPLACE INTO series SELECT dataset, series, period, value, "
            "knowledge_time, now() FROM incoming_series"
        )
        self._con.unregister("incoming_series")
        return frame.height

    def upsert_provider_bars(self, frame: pl.DataFrame) -> int:
        """Insert or replace provider bars (BAR_SCHEMA); returns the number written."""
        if frame.is_empty():
            return 0
        self._con.register("incoming_bars", frame)
        self._con.execute(
            "INSERT OR REPLACE INTO provider_bars SELECT symbol, timeframe, ts, open, high, "
            "low, close, volume, knowledge_time, now() FROM incoming_bars"
        )
        self._con.unregister("incoming_bars")
        return frame.height

    def last_series_period(self, dataset: str) -> date | None:
        """The newest period stored for `dataset`, None if it has none."""
        row = self._con.execute(
            "SELECT max(period) FROM series WHERE dataset = ?", [dataset]
        ).fetchall()
        return row[0][0] if row else None

    def last_bar_day(self, timeframe: str) -> date | None:
        """The UTC day of the newest provider bar at `timeframe`."""
        row = self._con.execute(
            "SELECT max(ts)::DATE FROM provider_bars WHERE timeframe = ?", [timeframe]
        ).fetchall()
        return row[0][0] if row else None

    def series_frame(self, dataset: str) -> pl.DataFrame:
        """All stored rows (every vintage) of `dataset`, by series, period, knowledge_time."""
        result = self._con.sql(
            "SELECT dataset, series, period, value, knowledge_time FROM series "
            "WHERE dataset = ? ORDER BY series, period, knowledge_time",
            params=[dataset],
        )
        return pl.from_arrow(result.to_arrow_table())

    def provider_bars_frame(self, timeframe: str) -> pl.DataFrame:
        """All stored provider bars at `timeframe`, by symbol and time."""
        result = self._con.sql(
            "SELECT symbol, timeframe, ts, open, high, low, close, volume, knowledge_time "
            "FROM provider_bars "
            "WHERE timeframe = ? ORDER BY symbol, ts",
            params=[timeframe],
        )
        return pl.from_arrow(result.to_arrow_table())

    def record_ingest(self, dataset: str, rows: int, status: str, detail: str = "") -> None:
        """One line of ingest history (shown on the Data screen)."""
        self._con.execute(
            "INSERT INTO ingest_log VALUES (?, now(), ?, ?, ?)", [dataset, rows, status, detail]
        )
