"""The backtest decision remembers regime labels per panel: same labels, fitted once."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from qgtm.engine.backtest import decision as decision_module
from qgtm.engine.backtest.decision import SessionDecision
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.vectorised import run_vectorised
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.portfolio.allocator import daily_returns
from qgtm.engine.strategies.registry import create


def _count_fits(monkeypatch) -> list[int]:
    """Make RegimeDetector.label record the history length of every call it answers."""
    calls: list[int] = []
    label = RegimeDetector.label

    def counting(self, history, day):
        calls.append(len(history))
        return label(self, history, day)

    monkeypatch.setattr(RegimeDetector, "label", counting)
    return calls


def test_regime_labels_are_fitted_once_per_panel_and_equal_a_fresh_detector(
    demo_panel: PricePanel, monkeypatch
) -> None:
    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})
    label = RegimeDetector.label
    calls = _count_fits(monkeypatch)
    strategies = [create("rsi2")]  # trades in some regimes only
    sessions = range(len(demo_panel) - 40, len(demo_panel))
    first = SessionDecision(demo_panel, strategies, BacktestSettings())
    labels = [first.regime(demo_panel.history_before(i), demo_panel.dates[i]) for i in sessions]
    assert len(calls) == len(sessions)
    second = SessionDecision(demo_panel, [create("pair_gld_slv")], BacktestSettings())
    again = [second.regime(demo_panel.history_before(i), demo_panel.dates[i]) for i in sessions]
    assert again == labels and len(calls) == len(sessions)  # no second fit or filter
    fresh = RegimeDetector()
    for i, got in zip(sessions, labels, strict=True):
        reading = label(fresh, demo_panel.history_before(i), demo_panel.dates[i])
        assert got == (reading.label if reading else None)
    assert set(labels) - {None}  # the window is past the detector's warm-up
    # other bars are other labels: a changed close is a new panel for the cache
    close = demo_panel.close.copy()
    close[-50:] *= 1.3
    other = SessionDecision(replace(demo_panel, close=close), strategies, BacktestSettings())
    other.regime(demo_panel.history_before(sessions[-1]), demo_panel.dates[sessions[-1]])
    assert len(calls) == len(sessions) + 1


def test_a_backtest_with_remembered_labels_equals_one_without(
    demo_panel: PricePanel, monkeypatch
) -> None:
    settings = BacktestSettings()
    strategies = [create("rsi2")]
    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})
    run_vectorised(demo_panel, strategies, settings)  # fills the cache
    warm = run_vectorised(demo_panel, strategies, settings)  # every label from the cache

    def uncached(self, history, day):  # the detector asked every session, as before
        reading = self.detector.label(history, day)
        return reading.label if reading is not None else None

    monkeypatch.setattr(SessionDecision, "regime", uncached)
    plain = run_vectorised(demo_panel, strategies, settings)
    np.testing.assert_array_equal(warm.positions, plain.positions)
    np.testing.assert_array_equal(warm.equity, plain.equity)
    assert len(warm.trades) > 10


def test_regime_labels_are_kept_on_disk_for_the_next_process(
    demo_panel: PricePanel, monkeypatch, tmp_path
) -> None:
    """A run stores its labels; a new process (memory cleared) reads them instead of
    fitting again, and books the same; an unreadable file is ignored and rewritten;
    other bars or settings use another file."""
    cache = tmp_path / "cache" / "regime"
    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})
    decision_module.use_regime_cache(cache)
    settings = BacktestSettings()
    strategies = [create("rsi2")]  # trades in some regimes only
    first = run_vectorised(demo_panel, strategies, settings)
    (stored,) = cache.glob("regime-*.json")
    assert len(json.loads(stored.read_text())) > 200

    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})  # a new process

    def no_fit(self, history, day):
        raise AssertionError("the detector ran although the labels were stored")

    label = RegimeDetector.label
    monkeypatch.setattr(RegimeDetector, "label", no_fit)
    second = run_vectorised(demo_panel, strategies, settings)
    np.testing.assert_array_equal(second.positions, first.positions)
    assert second.trades == first.trades

    stored.write_text("{not json")
    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})
    monkeypatch.setattr(RegimeDetector, "label", label)
    third = run_vectorised(demo_panel, strategies, settings)
    assert third.trades == first.trades
    assert json.loads(stored.read_text())  # rewritten whole

    # one file per detector setting; other bars are other keys in the same file
    settings = decision_module.detector_settings(RegimeDetector())
    other = decision_module.detector_settings(RegimeDetector(trend_threshold=0.3))
    assert decision_module._regime_file(settings) == stored
    assert decision_module._regime_file(other) != stored
    moved = replace(demo_panel, close=demo_panel.close * 1.01)
    keys, moved_keys = (decision_module.prefix_keys(p) for p in (demo_panel, moved))
    assert keys[0] == moved_keys[0] and not set(keys[1:]) & set(moved_keys[1:])


def test_a_panel_that_extends_another_reuses_every_shared_label(
    demo_panel: PricePanel, monkeypatch, tmp_path
) -> None:
    """A data refresh appends sessions, and the Research screen cuts the panel at the
    replay clock: the sessions both panels share keep their labels (also across
    processes, through the file); only the new sessions are fitted. A changed bar
    changes the keys from its session on, and only those."""
    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})
    decision_module.use_regime_cache(tmp_path / "regime")
    strategies, settings = [create("rsi2")], BacktestSettings()
    cut = demo_panel.history_before(len(demo_panel) - 20)
    assert decision_module.prefix_keys(cut) == decision_module.prefix_keys(demo_panel)[:-20]
    first = SessionDecision(cut, strategies, settings)
    shared = range(len(cut) - 30, len(cut))
    labels = [first.regime(cut.history_before(i), cut.dates[i]) for i in shared]
    first.save_regimes()

    monkeypatch.setattr(decision_module, "_REGIME_LABELS", {})  # a new process
    calls = _count_fits(monkeypatch)
    full = SessionDecision(demo_panel, strategies, settings)
    again = [full.regime(demo_panel.history_before(i), demo_panel.dates[i]) for i in shared]
    assert again == labels and calls == []
    for i in range(len(cut), len(demo_panel)):
        full.regime(demo_panel.history_before(i), demo_panel.dates[i])
    assert calls == list(range(len(cut), len(demo_panel)))

    close = demo_panel.close.copy()
    close[-10] *= 1.01
    changed = decision_module.prefix_keys(replace(demo_panel, close=close))
    keys = decision_module.prefix_keys(demo_panel)
    assert changed[:-10] == keys[:-10]
    assert all(a != b for a, b in zip(changed[-10:], keys[-10:], strict=True))


def test_returns_before_each_session_are_daily_returns_bit_for_bit(
    demo_panel: PricePanel,
) -> None:
    close = demo_panel.close.copy()
    close[5:9, 2] = np.nan  # a gap: NaN returns around it, as daily_returns gives
    panel = replace(demo_panel, close=close)
    for lookback in (20, 252, 10_000):
        settings = BacktestSettings(risk=replace(BacktestSettings().risk, risk_lookback=lookback))
        decision = SessionDecision(panel, [create("tsmom_3m")], settings)
        for index in range(len(panel) + 1):
            got = decision.returns_before(index)
            want = daily_returns(close[:index], lookback)
            assert got.shape == want.shape
            assert got.tobytes() == want.tobytes()  # every bit, NaN and signed zeros too


def test_returns_before_follow_the_panel_the_decision_was_built_on(
    demo_panel: PricePanel,
) -> None:
    close = demo_panel.close * 1.0
    close[-10:, 0] *= 1.5
    moved = SessionDecision(replace(demo_panel, close=close), [], BacktestSettings())
    same = SessionDecision(demo_panel, [], BacktestSettings())
    index = len(demo_panel)
    assert moved.returns_before(index).tobytes() == daily_returns(close, 252).tobytes()
    assert moved.returns_before(index).tobytes() != same.returns_before(index).tobytes()
