"""Stored runs: list, compare, rerun (`qgtm backtest --runs / --compare / --rerun`)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qgtm.cli import main
from qgtm.core.backtest import BacktestError
from qgtm.core.config import PortfolioConfig
from qgtm.core.types import RiskLimits
from qgtm.engine.backtest import runs as runs_module
from qgtm.engine.backtest.api import code_hash, run_backtest, save_artifacts
from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.runs import config_differences, find_run, matching_bars
from qgtm.engine.data.user_bars import load_user_bars, to_panel
from tests.engine.backtest.test_commands import _write_bars


@pytest.fixture
def bars_file(tmp_path: Path) -> Path:
    return _write_bars(tmp_path / "two.csv")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv and out.strip() else out


def _run(capsys, data_dir: Path, bars: Path, *extra: str) -> dict:
    code, out = _cli(
        capsys, "backtest", "sma_ref", "--data", str(bars), "--json", "--data-dir", str(data_dir),
        *extra,
    )  # fmt: skip
    assert code == 0
    return out  # type: ignore[return-value]


def test_settings_survive_the_round_trip_through_a_stored_config() -> None:
    custom = BacktestSettings(
        initial_cash=Decimal("250000.50"),
        gross_target=0.95,
        risk=RiskLimits(max_position_weight=0.5, vol_target=0.1, kelly_min_obs=10**9),
        min_trade_value=Decimal(0),
        costs=CostModel(commission_per_share=Decimal("0.0035"), vwap_adv_fraction=math.inf),
        start=date(2020, 3, 2),
        end=None,
        kill_switch=False,
        portfolio=PortfolioConfig(method="erc", no_trade_band=0.0),
        decision="signal",
    )
    for settings in (BacktestSettings(), custom):
        stored = json.loads(json.dumps(settings.as_dict()))
        assert BacktestSettings.from_dict(stored) == settings
    with pytest.raises(BacktestError, match="stored settings not understood"):
        BacktestSettings.from_dict({**custom.as_dict(), "risk": {"nosuch": 1}})


def test_runs_lists_newest_first_and_compare_shows_what_differs(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _run(capsys, tmp_path, bars_file, "--param", "fast=5")
    second = _run(capsys, tmp_path, bars_file, "--param", "fast=8", "--decision", "signal")
    code, runs = _cli(capsys, "backtest", "--runs", "--json", "--data-dir", str(tmp_path))
    assert code == 0
    ids = [Path(first["artifact"]).name, Path(second["artifact"]).name]
    assert [r["run"] for r in runs] == ids[::-1]
    assert runs[0]["sharpe"] == second["report"]["sharpe"]
    assert runs[0]["decision"] == "signal" and runs[1]["decision"] == "live"

    code, cmp = _cli(
        capsys, "backtest", "--compare", ids[0], ids[1][:12], "--json", "--data-dir",
        str(tmp_path),
    )  # fmt: skip
    assert code == 0 and (cmp["a"], cmp["b"]) == tuple(ids)
    fields = {d["field"]: (d["a"], d["b"]) for d in cmp["differences"]}
    assert fields["params.fast"] == (5.0, 8.0)
    assert fields["settings.decision"] == ("live", "signal")
    assert "data_hash" not in fields and "strategy" not in fields
    sharpe = next(s for s in cmp["stats"] if s["stat"] == "Sharpe")
    assert (sharpe["a"], sharpe["b"]) == (first["report"]["sharpe"], second["report"]["sharpe"])
    # both start after the 30-session warm-up and end on the file's last day
    assert cmp["shared_sessions"] == first["report"]["sessions"] == second["report"]["sessions"]
    assert -1.0 <= cmp["return_correlation"] < 1.0 and cmp["tracking_error"] > 0

    code, same = _cli(
        capsys, "backtest", "--compare", ids[0], ids[0], "--json", "--data-dir", str(tmp_path)
    )
    assert same["differences"] == [] and same["tracking_error"] == 0.0
    assert same["return_correlation"] == pytest.approx(1.0)
    code, text = _cli(capsys, "backtest", "--compare", *ids, "--data-dir", str(tmp_path))
    assert "params.fast: 5.0 -> 8.0" in text and "B - A" in text
    # a text statistic has no difference column
    kill = next(line for line in text.splitlines() if "kill switch" in line)
    shown = [first["report"]["kill_switch"], second["report"]["kill_switch"]]
    assert kill.split() == ["kill", "switch", *" ".join(shown).split()]


def test_rerun_reproduces_a_run_and_a_sweep_and_notices_changes(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = Path(_run(capsys, tmp_path, bars_file)["artifact"]).name
    swept = _run(capsys, tmp_path, bars_file, "--sweep", "fast=3:9:3", "--walk-forward", "60:30")
    assert swept["config"]["code"] == code_hash()  # the engine code that made the run
    for run in (one, Path(swept["artifact"]).name):
        # the stored config names the bars file, so --data is not needed again
        code, check = _cli(
            capsys, "backtest", "--rerun", run, "--json", "--data-dir", str(tmp_path)
        )
        assert code == 0 and check["reproduced"], check
        assert check["trades_identical"] and check["equity_max_difference"] == 0.0
        assert check["sessions"] > 0 and check["trades_new"] == check["trades_stored"] > 0
    code, text = _cli(capsys, "backtest", "--rerun", one, "--data-dir", str(tmp_path))
    assert f"{one}: reproduced" in text

    # a stored curve that no longer matches what the config produces: exit 1
    folder = tmp_path / "artifacts" / "backtests" / one
    equity = pl.read_parquet(folder / "equity.parquet")
    equity.with_columns(pl.col("equity") + 1.0).write_parquet(folder / "equity.parquet")
    code, check = _cli(capsys, "backtest", "--rerun", one, "--json", "--data-dir", str(tmp_path))
    assert code == 1 and not check["reproduced"] and check["equity_max_difference"] == 1.0
    assert check["notes"] == []  # same code, bars and inputs: the text says it is a bug
    code, text = _cli(capsys, "backtest", "--rerun", one, "--data-dir", str(tmp_path))
    assert "NOT reproduced" in text and "is a bug" in " ".join(text.split())

    # a stored curve with a session the rerun does not have: not reproduced either
    extra = equity.tail(1).with_columns(pl.col("date") + pl.duration(days=3))
    pl.concat([equity, extra]).write_parquet(folder / "equity.parquet")
    code, check = _cli(capsys, "backtest", "--rerun", one, "--json", "--data-dir", str(tmp_path))
    assert code == 1 and not check["reproduced"]
    assert check["equity_max_difference"] == 0.0  # every shared session still matches

    # other bars than the run used: refused before running, with both hashes' heads
    frame = pl.read_csv(bars_file)
    frame.with_columns(pl.col("Open", "High", "Low", "Close") * 1.01).write_csv(bars_file)
    assert main(["backtest", "--rerun", one, "--data-dir", str(tmp_path)]) == 2
    assert "the bars differ from the ones" in capsys.readouterr().err


def test_a_store_that_grew_still_reproduces_from_its_first_sessions(bars_file: Path) -> None:
    panel = to_panel(load_user_bars(bars_file).bars)
    earlier = panel.history_before(250)
    outcome = run_backtest(earlier, "sma_ref", BacktestSettings(decision="signal"))
    folder = save_artifacts(outcome, bars_file.parent)
    run = find_run(bars_file.parent, folder.name[:10])
    assert matching_bars(run, panel).dates == earlier.dates  # later sessions cut off
    changed = replace(panel, close=np.where(np.arange(len(panel))[:, None] == 3, 1.0, panel.close))
    with pytest.raises(BacktestError, match="the bars differ"):
        matching_bars(run, changed)


def test_unknown_or_ambiguous_run_ids_are_clear_errors(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, tmp_path, bars_file, "--param", "fast=5")
    _run(capsys, tmp_path, bars_file, "--param", "fast=6")
    with pytest.raises(BacktestError, match="no stored run 'nosuch'"):
        find_run(tmp_path, "nosuch")
    with pytest.raises(BacktestError, match="'sma_ref' matches 2 runs"):
        find_run(tmp_path, "sma_ref")
    for outside in ("../../x", "..", "", "a\\b"):  # ids never leave the runs folder
        with pytest.raises(BacktestError, match="bad run id"):
            find_run(tmp_path, outside)
    assert main(["backtest", "--rerun", "x", "tsmom", "--data-dir", str(tmp_path)]) == 2
    assert "go alone" in capsys.readouterr().err
    (tmp_path / "artifacts" / "backtests" / "broken").mkdir()
    assert main(["backtest", "--runs", "--data-dir", str(tmp_path)]) == 0
    assert "skipped broken: not a readable stored run" in capsys.readouterr().err


def test_config_differences_name_every_changed_field_by_its_path() -> None:
    a = {"strategy": "x", "settings": {"risk": {"vol_target": 0.15, "cvar": 0.03}}, "sweep": None}
    b = {"strategy": "x", "settings": {"risk": {"vol_target": 0.10, "cvar": 0.03}}, "extra": 1}
    assert config_differences(a, b) == [
        ("extra", None, 1),
        ("settings.risk.vol_target", 0.15, 0.10),
    ]


def test_listing_reads_each_summary_once_until_it_changes(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """A second listing reads no summary file; a rewritten summary (a --rerun, or a run
    saved again under its id) and a new run are read."""
    first = _run(capsys, tmp_path, bars_file, "--param", "fast=5")
    reads: list[str] = []
    real = runs_module.load_run

    def counting(folder: Path) -> runs_module.StoredRun:
        reads.append(folder.name)
        return real(folder)

    monkeypatch.setattr(runs_module, "load_run", counting)
    ids = [r.run_id for r in runs_module.list_runs(tmp_path)[0]]
    assert ids == [Path(first["artifact"]).name]
    reads.clear()
    assert [r.run_id for r in runs_module.list_runs(tmp_path)[0]] == ids and reads == []
    second = _run(capsys, tmp_path, bars_file, "--param", "fast=8")
    summary = Path(first["artifact"]) / "summary.parquet"
    frame = pl.read_parquet(summary)
    stored = json.loads(frame["summary_json"][0])
    stored["final_equity"] = 1.0
    frame.with_columns(pl.lit(json.dumps(stored)).alias("summary_json")).write_parquet(summary)
    runs = {r.run_id: r for r in runs_module.list_runs(tmp_path)[0]}
    assert sorted(reads) == sorted([Path(first["artifact"]).name, Path(second["artifact"]).name])
    assert runs[Path(first["artifact"]).name].summary["final_equity"] == 1.0
    shutil.rmtree(first["artifact"])  # a deleted run leaves the listing and its memo
    assert [r.run_id for r in runs_module.list_runs(tmp_path)[0]] == [Path(second["artifact"]).name]
    assert Path(first["artifact"]) not in runs_module._LISTED


def test_a_save_that_fails_midway_leaves_the_stored_run_readable(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Saving the same run again (same config and bars, same id) dies while writing the
    trades: the stored run keeps its whole files, lists and reruns as before."""
    first = _run(capsys, tmp_path, bars_file)
    folder = Path(first["artifact"])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = pl.DataFrame.write_parquet

    def dies_on_trades(frame: pl.DataFrame, path: Path, *args, **kwargs) -> None:
        if Path(path).name.startswith("trades.parquet"):
            Path(path).write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", dies_on_trades)
    code = main(["backtest", "sma_ref", "--data", str(bars_file), "--data-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(f"cannot save the run in {folder}: disk full")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()}.keys() == before.keys()
    assert (folder / "trades.parquet").read_bytes() == before["trades.parquet"]
    code, out = _cli(capsys, "backtest", "--rerun", folder.name, "--data-dir", str(tmp_path))
    assert code == 0, out


def test_a_rerun_names_a_changed_engine(
    tmp_path: Path, bars_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run stored by other engine code (here: its recorded code hash edited) still
    reruns; the check says the code differs, and without a difference it reproduces."""
    folder = Path(_run(capsys, tmp_path, bars_file)["artifact"])
    summary = pl.read_parquet(folder / "summary.parquet")
    config = json.loads(summary["config_json"][0])
    config["code"] = "0123456789abcdef"
    summary.with_columns(pl.lit(json.dumps(config)).alias("config_json")).write_parquet(
        folder / "summary.parquet"
    )
    code, check = _cli(
        capsys, "backtest", "--rerun", folder.name, "--json", "--data-dir", str(tmp_path)
    )
    assert code == 0 and check["reproduced"]
    assert check["notes"] == [
        f"made by engine code 0123456789abcdef, this is {code_hash()}: "
        "a changed engine can change results"
    ]
