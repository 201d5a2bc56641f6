"""Backtests give macro/COT strategies the store's point-in-time series, as the live
engine does (`store_context` over the market store), not the demo fallback.

The FRED real yield (DFII10, with vintages) and the CFTC gold report are fetched from
loopback fakes in the real wire formats and ingested into the data directory's market
store; `qgtm backtest` on that directory must trade gold_real_rates / cot_trend on them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from qgtm.cli import main
from qgtm.core.config import Config, DemoConfig
from qgtm.engine.backtest.api import make_strategy, run_backtest, settings_from_config
from qgtm.engine.backtest.market import load_market
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.vectorised import signal_matrices
from qgtm.engine.features.auxiliary import cot_series_name, demo_context
from qgtm.engine.features.pit_features import summarise_inputs
from qgtm.engine.learn.retrain import signal_returns, unit_gross_weights
from tests.engine.features.test_pit_features import (
    _cot_store,
    _fred_store,
    gold_nets,
    real_yield_vintages,
)

DEMO = DemoConfig(seed=5, start=date(2020, 6, 1), end=date(2021, 12, 31))
MACRO = {"window": 5.0, "threshold": 0.0, "vol_window": 20.0}


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory whose market store holds the demo bars, DFII10 and gold COT."""
    monkeypatch.setenv("QGTM_FRED_API_KEY", "test-fred-key")
    monkeypatch.setenv("QGTM_DEMO__SEED", str(DEMO.seed))
    monkeypatch.setenv("QGTM_DEMO__START", DEMO.start.isoformat())
    monkeypatch.setenv("QGTM_DEMO__END", DEMO.end.isoformat())
    store = _cot_store(tmp_path, monkeypatch, gold_nets())
    _fred_store(tmp_path, monkeypatch, real_yield_vintages(n=60), store).close()
    return tmp_path


def _gld_sides(matrix: np.ndarray, symbols: tuple[str, ...]) -> np.ndarray:
    return np.sign(np.nan_to_num(matrix[:, symbols.index("GLD")]))


def test_a_macro_backtest_trades_on_the_stores_fred_series(store_dir: Path) -> None:
    config = Config(demo=DEMO)
    market = load_market(config, store_dir, None)
    panel, context = market.panel, market.context
    assert context is not None and context.source_of("DFII10") == "FRED"
    strategy = make_strategy("gold_real_rates", MACRO)
    rows = range(panel.dates.index(date(2021, 3, 15)), panel.dates.index(date(2021, 6, 1)))
    stored = signal_matrices(panel, [strategy], rows, context)[strategy.name]
    fallback = signal_matrices(panel, [strategy], rows, None)[strategy.name]
    # each session's GLD side from the store's vintages, worked here: short on a rise of
    # the real yield over the last 5 known observations, long on a fall
    sides = _gld_sides(stored, panel.symbols)
    checked = 0
    for i in rows:
        seen = context.known_before("DFII10", panel.dates[i])
        if len(seen) < 6 or seen[-1] == seen[-6]:
            continue
        assert sides[i] == (-1.0 if seen[-1] > seen[-6] else 1.0), panel.dates[i]
        checked += 1
    assert checked > 30
    assert not np.array_equal(sides, _gld_sides(fallback, panel.symbols))  # not the demo
    # the backtest takes exactly those signals and records where they came from
    settings = BacktestSettings(start=date(2021, 3, 15), end=date(2021, 6, 1))
    with_store = run_backtest(panel, "gold_real_rates", settings, MACRO, "vector", context=context)
    demo_run = run_backtest(panel, "gold_real_rates", settings, MACRO, "vector")
    assert with_store.config["inputs"] == {"DFII10": "FRED"}
    assert demo_run.config["inputs"] == {"DFII10": "demo fallback"}
    assert not np.array_equal(with_store.result.positions, demo_run.result.positions)
    event = run_backtest(panel, "gold_real_rates", settings, MACRO, "event", context=context)
    np.testing.assert_array_equal(event.result.positions, with_store.result.positions)


def test_qgtm_backtest_uses_the_store_and_says_so(store_dir: Path, capsys) -> None:
    args = ["backtest", "cot_trend", "--data-dir", str(store_dir)]
    args += ["--from", "2021-03-01", "--to", "2021-07-30", "--param", "weeks=1"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    inputs = out["config"]["inputs"]
    assert inputs[cot_series_name("GLD")] == "CFTC"
    assert inputs[cot_series_name("SLV")] == "demo fallback"  # not in the fetched file
    # the same run by hand with the store's context, and with the demo fallback
    config = Config(demo=DEMO)
    market = load_market(config, store_dir, None)
    panel, context = market.panel, market.context
    settings = settings_from_config(config, date(2021, 3, 1), date(2021, 7, 30))
    by_hand = run_backtest(panel, "cot_trend", settings, {"weeks": 1.0}, context=context)
    demo_run = run_backtest(panel, "cot_trend", settings, {"weeks": 1.0})
    assert out["final_equity"] == float(by_hand.result.equity[-1])
    assert out["final_equity"] != float(demo_run.result.equity[-1])
    assert main(args) == 0  # the printed report names the inputs' sources too
    report_lines = [line for line in capsys.readouterr().out.splitlines() if "inputs" in line]
    assert report_lines and summarise_inputs(inputs) in report_lines[0]


def test_without_provider_data_the_backtest_keeps_the_demo_fallback(tmp_path: Path) -> None:
    market = load_market(Config(demo=DEMO), tmp_path, None)
    panel, context = market.panel, market.context
    assert context is None
    assert len(panel) > 300
    assert demo_context().source_of("DFII10") == "demo fallback"


def test_retraining_scores_candidates_on_the_stores_series(store_dir: Path) -> None:
    """qgtm.engine.learn.retrain takes the same context: the signal portfolio it scores
    follows the store's DFII10 vintages, not the demo fallback."""
    market = load_market(Config(demo=DEMO), store_dir, None)
    panel, context = market.panel, market.context
    assert context is not None
    strategy = make_strategy("gold_real_rates", MACRO)
    start, end = panel.dates.index(date(2021, 3, 15)), panel.dates.index(date(2021, 6, 1))
    gld = panel.symbols.index("GLD")
    checked = 0
    for t in range(start, end):
        seen = context.known_before("DFII10", panel.dates[t])
        weights = unit_gross_weights(strategy, panel.history_before(t), panel.dates[t], context)
        if len(seen) < 6 or seen[-1] == seen[-6]:
            continue
        assert np.sign(weights[gld]) == (-1.0 if seen[-1] > seen[-6] else 1.0)
        checked += 1
    assert checked > 30
    scored = signal_returns(strategy, panel, start, end, context)
    assert not np.array_equal(scored, signal_returns(strategy, panel, start, end))


def test_league_workers_take_the_stores_inputs(store_dir: Path, tmp_path: Path) -> None:
    """`qgtm backtest --all` hands the context to its spawn workers (pickled initargs)."""
    import pickle

    import polars as pl

    from qgtm.engine.backtest import league

    config = Config(demo=DEMO)
    market = load_market(config, store_dir, None)
    panel, context = market.panel, market.context
    settings = settings_from_config(config, date(2021, 3, 1), date(2021, 6, 30))
    out = tmp_path / "league"
    init = (panel, settings, {s: "x" for s in panel.symbols}, out, context)
    league._league_init(*pickle.loads(pickle.dumps(init)))  # as a spawn worker gets it
    try:
        row = league._league_row("gold_real_rates")
    finally:
        league._WORKER.clear()
    assert "error" not in row
    (summary,) = out.glob("artifacts/backtests/gold_real_rates-*/summary.parquet")
    saved = json.loads(pl.read_parquet(summary)["config_json"][0])
    assert saved["inputs"] == {"DFII10": "FRED"}
