"""`qgtm backtest` and `qgtm data import` end to end on small files."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qgtm.cli import main
from qgtm.cli.output import json_ready, print_json
from qgtm.core.enums import KillTier


def strict_json(text: str) -> object:
    """json.loads that, as jq and JSON.parse, refuses NaN and Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_with_non_finite_statistics_as_null(capsys) -> None:
    report = {"sharpe": -0.3, "min_track_record_sessions": math.inf, "psr": math.nan}
    value = {"report": report, "sweep": [{"sharpe": np.float64("-inf")}], "pair": (1.5, math.nan)}
    print_json(value)
    out = strict_json(capsys.readouterr().out)
    assert out == {
        "report": {"sharpe": -0.3, "min_track_record_sessions": None, "psr": None},
        "sweep": [{"sharpe": None}],
        "pair": [1.5, None],
    }
    assert json_ready(date(2024, 1, 2)) == date(2024, 1, 2)  # default=str prints it
    with pytest.raises(ValueError, match="Infinity"):
        strict_json(json.dumps({"x": math.inf}))  # what the CLI printed before


def _write_bars(path: Path, sessions: int = 320, seed: int = 5) -> Path:
    """A random-walk Yahoo-style CSV of two symbols on weekdays."""
    rng = np.random.default_rng(seed)
    rows = []
    day = date(2020, 1, 1)
    days = []
    while len(days) < sessions:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    for symbol in ("AAA", "BBB"):
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, sessions)))
        opens = close * np.exp(rng.normal(0, 0.003, sessions))
        for d, o, c in zip(days, opens, close, strict=True):
            rows.append((symbol, d.isoformat(), o, max(o, c) * 1.004, min(o, c) * 0.996, c, 1e6))
    frame = pl.DataFrame(
        rows, schema=["Symbol", "Date", "Open", "High", "Low", "Close", "Volume"], orient="row"
    )
    frame.write_csv(path)
    return path


def _config(tmp_path: Path, toml: str) -> list[str]:
    """`--config FILE` for a config file holding `toml`."""
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return ["--config", str(path)]


@pytest.fixture
def bars_file(tmp_path: Path) -> Path:
    return _write_bars(tmp_path / "two.csv")


def test_backtest_json_reports_stats_and_writes_parquet_artifacts(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["backtest", "sma_ref", "--data", str(bars_file), "--json", "--data-dir", str(tmp_path)]
    )
    assert code == 0
    out = strict_json(capsys.readouterr().out)
    assert out["trades"] > 0 and out["report"]["sessions"] == 320 - 30 - 1
    folder = Path(out["artifact"])
    summary = pl.read_parquet(folder / "summary.parquet")
    assert len(summary["data_hash"][0]) == 64
    assert json.loads(summary["config_json"][0])["strategy"] == "sma_ref"
    equity = pl.read_parquet(folder / "equity.parquet")
    assert equity["equity"][-1] == pytest.approx(out["final_equity"])
    # the round trips behind the report's trade statistics, money as exact decimals
    trips = pl.read_parquet(folder / "round_trips.parquet")
    assert trips.height == out["report"]["trips"]["round_trips"] > 0
    wins = [Decimal(v) for v in trips["pnl"] if Decimal(v) > 0]
    assert float(sum(wins)) / len(wins) == pytest.approx(out["report"]["trips"]["average_win"])
    assert (trips["closed"] >= trips["opened"]).all()


def test_sweep_with_walk_forward_reports_dsr_pbo_and_oos(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--json"]
    argv += ["--sweep", "fast=3:9:2", "--walk-forward", "60:30", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    out = strict_json(capsys.readouterr().out)
    fasts = [row["fast"] for row in out["sweep"]]
    assert fasts == [3, 5, 7, 9] and all(isinstance(v, int) for v in fasts)  # a whole parameter
    # each trial's CAGR and drawdown; the best trial's are the report's own
    best = max(out["sweep"], key=lambda row: row["sharpe"])
    assert best["fast"] == out["params"]["fast"]
    assert best["cagr"] == pytest.approx(out["report"]["cagr"], rel=1e-12)
    assert best["max_drawdown"] == pytest.approx(out["report"]["max_drawdown"], rel=1e-12)
    assert len({row["cagr"] for row in out["sweep"]}) > 1
    validation = out["validation"]
    assert 0.0 <= validation["deflated_sharpe"] <= 1.0 and validation["trials"] == 4
    assert 0.0 <= validation["pbo"] <= 1.0
    assert len(validation["walk_forward"]["chosen"]) >= 3
    assert out["config"]["settings"]["decision"] == "signal"  # a sweep's default
    # sma_ref's trials are booked compiled; a quick sweep stays in this process
    assert {row["booking"] for row in out["sweep"]} == {"compiled"}
    assert out["config"]["sweep"]["processes"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "nosuch"], "unknown strategy 'nosuch'"),
        (["backtest", "tsmom", "--param", "lookback=9999"], "outside its range"),
        (["backtest", "tsmom", "--param", "nosuch=1"], "unknown parameter"),
        (["backtest", "tsmom", "--param", "lookback=20.5"], "lookback takes whole numbers"),
        (["backtest", "tsmom", "--from", "2020-02-30"], "bad --from"),
        (["backtest", "tsmom", "--sweep", "lookback=5"], "bad --sweep"),
        (["backtest", "tsmom", "--walk-forward", "10:5"], "needs a --sweep"),
        (["backtest", "tsmom", "--cv", "4"], "--cv needs a --sweep"),
        (["backtest", "tsmom", "--benchmark", "XYZ"], "unknown benchmark 'XYZ'"),
        (["backtest", "tsmom", "--sweep", "lookback=60:80:10", "--cv", "1"], "bad --cv '1'"),
        (["backtest", "tsmom", "--sweep", "lookback=60:80:10", "--cv", "3:x"], "bad --cv"),
        (["backtest", "tsmom", "--data", "/nonexistent.csv"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cv_scores_the_sweeps_choice_by_purged_kfold_and_reruns(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cv K: each fold's pick (best Sharpe on its purged, embargoed training sessions)
    tested on the fold; the embargo defaults to 1% of the sessions, rounded up. The same
    numbers come from cross_validate over run_sweep's own return matrix, and a rerun of
    the stored run reproduces it."""
    from qgtm.engine.backtest.result import BacktestSettings
    from qgtm.engine.backtest.sma import SmaCrossover
    from qgtm.engine.backtest.validation import cross_validate
    from qgtm.engine.backtest.vectorised import run_sweep
    from qgtm.engine.data.user_bars import load_user_bars, to_panel

    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--json", "--data-dir"]
    argv += [str(tmp_path), "--sweep", "fast=3:9:2", "--cv", "4"]
    assert main(argv) == 0
    out = strict_json(capsys.readouterr().out)
    cv = out["validation"]["cross_validation"]
    sessions = out["report"]["sessions"]
    assert cv["folds"] == 4 and cv["embargo"] == -(-sessions // 100)
    assert len(cv["chosen"]) == 4 and set(cv["chosen"]) <= {3, 5, 7, 9}
    assert out["config"]["cv"] == [4, cv["embargo"]]

    panel = to_panel(load_user_bars(bars_file).bars)
    trials = [[SmaCrossover(fast=f)] for f in (3, 5, 7, 9)]
    swept = run_sweep(panel, trials, BacktestSettings.from_dict(out["config"]["settings"]))
    folds = cross_validate(swept.returns.T, 4, cv["embargo"])
    assert [(3, 5, 7, 9)[j] for j in folds.chosen] == cv["chosen"]
    assert cv["oos_observations"] == len(folds.oos_returns) == sessions

    run = Path(out["artifact"]).name
    assert main(["backtest", "--rerun", run, "--json", "--data-dir", str(tmp_path)]) == 0
    assert strict_json(capsys.readouterr().out)["reproduced"]


def test_benchmark_relative_stats_default_to_equal_weights(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Default: against the equal-weight book of the file's symbols; --benchmark AAA: the
    one fund; none: no relative rows. The numbers are relative_stats of the stored daily
    returns against benchmark_returns over the run's sessions."""
    from qgtm.engine.backtest.stats import benchmark_returns, relative_stats
    from qgtm.engine.data.user_bars import load_user_bars, to_panel

    panel = to_panel(load_user_bars(bars_file).bars)
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--json", "--data-dir"]
    for name, flag in (("equal", []), ("AAA", ["--benchmark", "AAA"])):
        assert main([*argv, str(tmp_path), *flag]) == 0
        out = strict_json(capsys.readouterr().out)
        assert out["report"]["benchmark"] == name == out["config"]["benchmark"]
        equity = pl.read_parquet(Path(out["artifact"]) / "equity.parquet")
        expected = relative_stats(
            equity["return"].to_numpy(),
            benchmark_returns(panel, equity["date"].to_list(), name),
        )
        assert out["report"]["relative"] == pytest.approx(expected, rel=1e-12)
        assert out["report"]["relative"]["beta"] != 0.0
    assert main([*argv, str(tmp_path), "--benchmark", "none"]) == 0
    out = strict_json(capsys.readouterr().out)
    assert out["report"]["relative"] == {} and out["config"]["benchmark"] is None


def test_report_fits_an_80_column_terminal_whole(
    tmp_path: Path,
    bars_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The printed report at 80 columns: no cell cut short, the monthly table with a
    compounded Year column, every line within 80 characters."""
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--sweep", "fast=3:9:2"]
    assert main([*argv, "--walk-forward", "60:30", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    lines = [line for line in out.splitlines() if not line.startswith("artifacts: ")]
    assert max(len(line) for line in lines) <= 80
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["year", "Jan"])
    assert lines[header].split()[-1] == "total" and len(lines[header].split()) == 14
    # the run starts in February 2020 (30-session warm-up): 11 months and the year
    first = lines[header + 2].split()
    assert first[0] == "2020" and len(first) == 13
    months = [float(v) / 100 for v in first[1:-1]]
    # each shown month is rounded to 0.05%: the shown months compound to the year within that
    assert float(first[-1]) / 100 == pytest.approx(np.prod([1 + m for m in months]) - 1, abs=7e-3)
    assert "params: fast=" in out and "walk-forward fast per test window: " in out


CANNOT_TRADE = {
    "pair_gld_slv": "pair_gld_slv needs GLD, SLV; no bars of GLD, SLV",
    "gold_autumn": "gold_autumn trades only GLD; none is in the bars",
}


def test_a_strategy_that_cannot_trade_the_bars_is_refused_not_run_flat(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file holds AAA and BBB: a GLD/SLV pair or a GLD seasonal would run to the end
    with no trade and a report of zeros; it is a one-line error instead (in a league,
    the row's error: see the league test)."""
    for strategy, message in CANNOT_TRADE.items():
        argv = ["backtest", strategy, "--data", str(bars_file), "--data-dir", str(tmp_path)]
        assert main(argv) == 2
        assert capsys.readouterr().err.strip().endswith(f"qgtm: {message}")


def test_all_prints_a_league_of_every_registered_strategy(
    tmp_path: Path,
    bars_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """JSON rows for every strategy; the table at 80 columns names each strategy the
    kill switch stopped (a 1% drawdown limit here, which the daily reset keeps) with its
    tier and month, and its title the daily reset."""
    from qgtm.engine.backtest.api import strategy_names

    argv = ["backtest", "--all", "--data", str(bars_file), "--data-dir", str(tmp_path)]
    argv += [*_config(tmp_path, "[risk]\nmax_drawdown_pct = 0.01\n"), "--kill-reset", "daily"]
    assert main([*argv, "--json"]) == 0
    rows = strict_json(capsys.readouterr().out)
    assert sorted(r["strategy"] for r in rows) == strategy_names()
    by_name = {r["strategy"]: r for r in rows}
    for strategy, message in CANNOT_TRADE.items():  # the bars have no GLD or SLV
        assert by_name[strategy]["error"] == message
    assert "error" not in by_name["sma_ref"]
    stopped = {r["strategy"]: r for r in rows if r.get("kill_spells", {}).get("FLATTEN")}
    assert "sma_ref" in stopped
    monkeypatch.setenv("COLUMNS", "80")
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "signal decision, daily kill reset" in " ".join(" ".join(lines[:2]).split())
    assert max(len(line) for line in lines) <= 80 and "…" not in "".join(lines)
    for name, row in stopped.items():
        line = next(line for line in lines if line.split()[:1] == [name])
        assert line.split()[-2:] == ["FLATTEN", row["kill_spells"]["FLATTEN"]["first"][:7]]
    # strategies that could not run are listed under the table, each named once
    words = " ".join(lines).split()
    for message in CANNOT_TRADE.values():
        assert " ".join(f"not run: {message}".split()) in " ".join(words)
    assert words.count("not") == sum("error" in r for r in rows)


def test_data_import_stores_accepted_bars_and_lists_rejections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = Path(__file__).parents[1] / "data" / "fixtures" / "gld_yahoo.csv"
    argv = ["data", "import", str(fixture), "--symbol", "GLD", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "accepted 4 bars of GLD" in out
    assert "line 6 GLD: high 191.0 below low 193.0" in out
    assert "stored 4 bars" in out


def test_decision_flag_picks_the_live_or_the_quick_decision(
    tmp_path: Path,
    bars_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Default: the live decision (allocator + every risk check); --decision signal: the
    quick one. A 3% vol target cuts only the live book, so the runs differ; a bad value
    is a one-line error (exit 2)."""
    monkeypatch.setenv("QGTM_RISK__VOL_TARGET", "0.03")
    args = ["backtest", "sma_ref", "--data", str(bars_file), "--json", "--data-dir"]
    finals = {}
    for extra in ([], ["--decision", "signal"]):
        assert main([*args, str(tmp_path), *extra]) == 0
        out = strict_json(capsys.readouterr().out)
        finals[out["config"]["settings"]["decision"]] = out["final_equity"]
    assert set(finals) == {"live", "signal"}
    assert abs(finals["live"] - 1e6) < abs(finals["signal"] - 1e6)  # the smaller book
    with pytest.raises(SystemExit) as exc:
        main([*args, str(tmp_path), "--decision", "both"])
    assert exc.value.code == 2


def test_the_report_says_when_the_kill_switch_flattened_the_book(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a 1% drawdown limit the book is flattened on the first close more than 1%
    below its peak and stays flat (a backtest has no operator to reset it): the report
    names that session, counted from the stored equity curve."""
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--data-dir", str(tmp_path)]
    argv += _config(tmp_path, "[risk]\nmax_drawdown_pct = 0.01\n")
    assert main([*argv, "--json"]) == 0
    out = strict_json(capsys.readouterr().out)
    equity = pl.read_parquet(Path(out["artifact"]) / "equity.parquet")
    values = equity["equity"].to_numpy()
    peaks = np.maximum.accumulate(np.r_[1_000_000.0, values])[1:]
    first = int(np.argmax((peaks - values) / peaks > 0.01))
    assert first > 0
    flatten = out["report"]["kill_spells"]["FLATTEN"]
    assert flatten["first"] == equity["date"][first].isoformat()
    assert flatten["sessions"] == equity.height - first
    shown = f"FLATTEN from {flatten['first']} ({flatten['sessions']:,} sessions)"
    assert out["report"]["kill_switch"] == shown
    assert main(argv) == 0
    assert shown in capsys.readouterr().out
    # --compare's narrow columns give the tier and its month
    run = Path(out["artifact"]).name
    assert main(["backtest", "--compare", run, run, "--data-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "kill switch" in line)
    assert row.split()[2:] == ["FLATTEN", flatten["first"][:7]] * 2


def test_impact_and_borrow_costs_are_charged_stored_and_shown(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tsmom goes short on the falling name: with --impact and --borrow the run ends
    lower, the stored settings carry both (so --rerun charges them again) and the
    report's costs line names them; [backtest] in the config file sets the same."""
    argv = ["backtest", "tsmom", "--data", str(bars_file), "--data-dir", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    free = strict_json(capsys.readouterr().out)
    assert main([*argv, "--json", "--impact", "50", "--borrow", "150"]) == 0
    costly = strict_json(capsys.readouterr().out)
    costs = costly["config"]["settings"]["costs"]
    assert (costs["impact_bps_at_full_adv"], costs["borrow_bps_annual"]) == (50.0, 150.0)
    assert free["config"]["settings"]["costs"]["borrow_bps_annual"] == 0.0
    positions = pl.read_parquet(Path(costly["artifact"]) / "positions.parquet")
    assert (positions.drop("date").to_numpy() < 0).any()  # the borrow fee had shorts to charge
    assert costly["final_equity"] < free["final_equity"]
    run = Path(costly["artifact"]).name
    assert main(["backtest", "--rerun", run, "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    costs = "[backtest]\nimpact_bps_at_full_adv = 50\nborrow_bps_annual = 150\n"
    assert main([*argv, *_config(tmp_path, costs)]) == 0
    out = capsys.readouterr().out
    assert "costs: $0.005/sh, slippage 5bp, spread 2bp, impact 50bp at ADV, borrow 150bp/yr" in out
    assert f"final equity {costly['final_equity']:,.2f}" in " ".join(out.split())
    assert main([*argv, "--impact", "-3"]) == 2
    assert "bad --impact '-3': want bps, a number >= 0" in capsys.readouterr().err


def test_kill_reset_daily_lets_the_daily_loss_tiers_go(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a 0.3% daily loss limit, tiers held from the first bad day ('hold', the
    default) or stepped down after each session ('daily'): the header names the reset,
    the stored settings carry it and --rerun reproduces it."""
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--data-dir", str(tmp_path)]
    argv += _config(tmp_path, "[risk]\ndaily_loss_limit = 0.003\nmax_drawdown_pct = 0.5\n")
    argv += ["--param", "fast=5"]
    assert main([*argv, "--json"]) == 0
    held = strict_json(capsys.readouterr().out)
    assert main([*argv, "--json", "--kill-reset", "daily"]) == 0
    daily = strict_json(capsys.readouterr().out)
    assert daily["config"]["settings"]["kill_reset"] == "daily"
    tiers = pl.read_parquet(Path(daily["artifact"]) / "equity.parquet")["kill_tier"].to_list()
    assert any(a != "NORMAL" and b == "NORMAL" for a, b in pairwise(tiers))
    held_tiers = pl.read_parquet(Path(held["artifact"]) / "equity.parquet")["kill_tier"]
    assert held_tiers[-1] != "NORMAL"  # tripped, and never stepped down
    assert all(KillTier[a] <= KillTier[b] for a, b in pairwise(held_tiers.to_list()))
    worst, spell = max(daily["report"]["kill_spells"].items(), key=lambda item: KillTier[item[0]])
    count = spell["sessions"]
    assert daily["report"]["kill_switch"] == (
        f"{worst} on {count:,} session{'s' if count > 1 else ''}, first {spell['first']}"
    )
    assert main([*argv, "--kill-reset", "daily"]) == 0
    assert "decision, daily kill reset" in capsys.readouterr().out
    assert (
        main(["backtest", "--rerun", Path(daily["artifact"]).name, "--data-dir", str(tmp_path)])
        == 0
    )


def test_a_window_under_a_year_is_warned_in_the_report_and_in_json(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """320 sessions, 30 of warm-up: the whole file (289) has no warning; the last 100
    sessions do, in the printed report and in --json."""
    argv = ["backtest", "sma_ref", "--data", str(bars_file), "--data-dir", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    whole = strict_json(capsys.readouterr().out)
    assert whole["warnings"] == []
    dates = pl.read_parquet(Path(whole["artifact"]) / "equity.parquet")["date"].to_list()
    start = dates[-100].isoformat()
    assert main([*argv, "--from", start]) == 0
    printed = capsys.readouterr().out
    assert "warning: short window: 100 sessions < 252 (one year)" in " ".join(printed.split())
    assert main([*argv, "--from", start, "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["warnings"][0].startswith("short window: 100")
