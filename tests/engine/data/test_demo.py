"""The demo market: determinism and the statistical properties the strategies rely on."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import polars as pl
import pytest

from qgtm.core.calendar import sessions
from qgtm.core.universe import Universe, load_universe
from qgtm.engine.data.demo import DemoMarket, Regime, generate_demo_market

START = date(2008, 1, 2)
END = date(2025, 12, 31)
SEED = 7


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe()


@pytest.fixture(scope="module")
def market(universe: Universe) -> DemoMarket:
    return generate_demo_market(universe, START, END, SEED)


def _closes(market: DemoMarket, universe: Universe) -> np.ndarray:
    """Closes as a (day, asset) matrix in universe order."""
    wide = market.bars.pivot(on="symbol", index="date", values="close").sort("date")
    return wide.select(universe.symbols).to_numpy()


def _log_returns(market: DemoMarket, universe: Universe) -> np.ndarray:
    return np.diff(np.log(_closes(market, universe)), axis=0)


def _standardised(returns: np.ndarray) -> np.ndarray:
    return (returns - returns.mean(axis=0)) / returns.std(axis=0)


def test_same_seed_generates_identical_bars(universe: Universe, market: DemoMarket) -> None:
    again = generate_demo_market(universe, START, END, SEED)

    assert again.bars.equals(market.bars)
    assert again.regimes.equals(market.regimes)


def test_different_seed_generates_different_bars(universe: Universe, market: DemoMarket) -> None:
    other = generate_demo_market(universe, START, END, SEED + 1)

    assert not other.bars.equals(market.bars)


def test_extending_the_end_date_leaves_earlier_bars_unchanged(
    universe: Universe, market: DemoMarket
) -> None:
    shorter = generate_demo_market(universe, START, date(2016, 6, 30), SEED)

    prefix = market.bars.filter(pl.col("date") <= date(2016, 6, 30))
    assert shorter.bars.equals(prefix)


def test_bars_have_the_documented_schema_and_order(universe: Universe, market: DemoMarket) -> None:
    bars = market.bars

    assert bars.schema == pl.Schema(
        {
            "symbol": pl.String,
            "date": pl.Date,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Int64,
        }
    )
    first_day = bars.filter(pl.col("date") == bars["date"][0])
    assert tuple(first_day["symbol"]) == universe.symbols
    assert bars["date"].is_sorted()


def test_first_close_is_each_instruments_start_price(
    universe: Universe, market: DemoMarket
) -> None:
    first_closes = _closes(market, universe)[0]

    expected = [i.start_price for i in universe.instruments]
    assert first_closes.tolist() == pytest.approx(expected)


def test_realised_vol_is_within_15_percent_of_target(
    universe: Universe, market: DemoMarket
) -> None:
    realised = _log_returns(market, universe).std(axis=0) * np.sqrt(252)

    target = np.array([i.annual_vol for i in universe.instruments])
    relative_error = np.abs(realised / target - 1.0)
    worst = int(relative_error.argmax())
    assert relative_error.max() < 0.15, (
        f"{universe.symbols[worst]}: realised {realised[worst]:.3f} vs target {target[worst]:.3f}"
    )


def test_realised_correlation_is_within_008_of_target(
    universe: Universe, market: DemoMarket
) -> None:
    realised = np.corrcoef(_log_returns(market, universe).T)

    error = np.abs(realised - universe.correlation)
    a, b = np.unravel_index(error.argmax(), error.shape)
    assert error.max() < 0.08, (
        f"{universe.symbols[a]}/{universe.symbols[b]}: realised {realised[a, b]:.3f} "
        f"vs target {universe.correlation[a, b]:.3f}"
    )


def test_returns_have_fat_tails(universe: Universe, market: DemoMarket) -> None:
    pooled = _standardised(_log_returns(market, universe)).ravel()

    excess_kurtosis = float(np.mean(pooled**4) - 3.0)
    assert excess_kurtosis > 1.0


def test_every_regime_covers_at_least_5_percent_of_days(market: DemoMarket) -> None:
    shares = market.regimes["regime"].value_counts(normalize=True)

    share_of = dict(zip(shares["regime"], shares["proportion"], strict=True))
    for regime in Regime:
        assert share_of.get(regime.value, 0.0) >= 0.05, f"{regime}: {share_of}"


def test_crisis_days_are_more_volatile_than_calm_days(
    universe: Universe, market: DemoMarket
) -> None:
    returns = _standardised(_log_returns(market, universe))
    # A return belongs to the regime of the day it ends on.
    regime_of_return = market.regimes["regime"].to_numpy()[1:]

    crisis_vol = returns[regime_of_return == Regime.CRISIS.value].std()
    calm_vol = returns[regime_of_return == Regime.CALM.value].std()
    assert crisis_vol > calm_vol


def test_bars_are_internally_consistent(market: DemoMarket) -> None:
    bars = market.bars

    violations = bars.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.min_horizontal("open", "high", "low", "close") <= 0.0)
        | (pl.col("volume") <= 0)
    )
    assert violations.is_empty(), violations.head()


def test_bars_fall_on_xnys_sessions_without_duplicates(
    universe: Universe, market: DemoMarket
) -> None:
    bars = market.bars

    assert bars["date"].unique().sort().to_list() == sessions(START, END)
    assert market.regimes["date"].to_list() == sessions(START, END)
    assert not bars.select("symbol", "date").is_duplicated().any()
    assert bars.height == len(sessions(START, END)) * len(universe.symbols)


def test_full_span_generates_in_under_5_seconds(universe: Universe) -> None:
    began = time.perf_counter()
    generate_demo_market(universe, START, END, SEED)
    elapsed = time.perf_counter() - began

    assert elapsed < 5.0
