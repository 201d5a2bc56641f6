"""Reconciliation: each of the four discrepancy kinds injected into a real engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.config import Config, LiveConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.recon import (
    STALE_META,
    Action,
    DiscrepancyKind,
    ReconciliationEngine,
    Severity,
    classify,
)


@pytest.fixture
def engine(short_config: Config, tmp_path: Path):
    eng = TradingEngine(short_config, tmp_path)
    for _ in range(6):
        eng.step()
    assert len(eng.book.holdings) >= 3, "the demo book should hold positions by now"
    yield eng
    eng.close()


def _recon(alerts: list[str]) -> ReconciliationEngine:
    return ReconciliationEngine(LiveConfig(recon_qty_tolerance=0.05), alert=alerts.append)


def _events(engine: TradingEngine, event: str) -> list[dict]:
    return [r.payload for r in engine.audit.search(event=event, limit=1000)]


def test_paper_broker_tracks_its_own_positions_and_agrees_with_the_book(engine):
    assert engine.broker.positions() == engine.book.quantities()
    alerts: list[str] = []
    result = _recon(alerts).run(engine)
    assert result.discrepancies == () and alerts == []
    complete = _events(engine, "RECON_COMPLETE")[0]
    assert complete["broker"] == complete["local"] == len(engine.book.holdings)
    assert complete["discrepancies"] == 0


def test_missing_locally_is_critical_and_alerts_the_owner(engine):
    engine.broker._positions["ZZZ"] = 250
    alerts: list[str] = []
    result = _recon(alerts).run(engine)
    (item,) = result.discrepancies
    assert (item.kind, item.severity, item.action) == (
        DiscrepancyKind.MISSING_LOCALLY,
        Severity.CRITICAL,
        Action.ALERTED,
    )
    assert len(alerts) == 1 and "ZZZ" in alerts[0]
    assert "ZZZ" not in engine.book.holdings  # never booked blindly
    assert _events(engine, "RECON_DISCREPANCY")[0]["kind"] == "MISSING_LOCALLY"
    assert _events(engine, "RECON_COMPLETE")[0]["MISSING_LOCALLY"] == 1


def test_missing_at_broker_marks_the_local_position_stale(engine):
    symbol = sorted(engine.book.holdings)[0]
    del engine.broker._positions[symbol]
    alerts: list[str] = []
    recon = _recon(alerts)
    result = recon.run(engine)
    (item,) = result.discrepancies
    assert item.kind is DiscrepancyKind.MISSING_AT_BROKER
    assert item.action is Action.MARKED_STALE and alerts == []
    assert recon.stale == {symbol}
    assert engine.state.get_meta(STALE_META) == symbol
    assert engine.snapshot().recon is not None
    assert engine.snapshot().recon.stale == (symbol,)


def test_small_quantity_mismatch_adjusts_the_book_to_the_broker(engine):
    symbol = sorted(engine.book.holdings)[0]
    local = engine.book.holdings[symbol].quantity
    broker = local + (1 if local > 0 else -1)
    engine.broker._positions[symbol] = broker
    alerts: list[str] = []
    result = _recon(alerts).run(engine)
    (item,) = result.discrepancies
    assert (item.kind, item.action) == (DiscrepancyKind.QTY_MISMATCH, Action.ADJUSTED)
    assert item.severity is Severity.WARNING and alerts == []
    assert engine.book.holdings[symbol].quantity == broker
    stored = engine.state.conn.execute(
        "SELECT quantity FROM positions WHERE symbol = ?", (symbol,)
    ).fetchone()[0]
    assert stored == broker
    assert _events(engine, "RECON_ADJUSTED")[0] == {"symbol": symbol, "from": local, "to": broker}
    assert _recon([]).run(engine).discrepancies == ()  # clean after the adjustment


def test_large_quantity_mismatch_goes_to_review_and_leaves_the_book(engine):
    symbol = sorted(engine.book.holdings)[0]
    local = engine.book.holdings[symbol].quantity
    engine.broker._positions[symbol] = local * 2
    alerts: list[str] = []
    result = _recon(alerts).run(engine)
    (item,) = result.discrepancies
    assert (item.kind, item.severity, item.action) == (
        DiscrepancyKind.QTY_MISMATCH,
        Severity.CRITICAL,
        Action.REVIEW,
    )
    assert engine.book.holdings[symbol].quantity == local
    assert len(alerts) == 1 and "review" in alerts[0]


def test_value_mismatch_is_logged_only(engine, caplog: pytest.LogCaptureFixture):
    symbol = sorted(engine.book.holdings)[0]
    marks = engine._marks(engine.next_index - 1)
    values = {s: marks[s] * q for s, q in engine.broker.positions().items()}
    values[symbol] *= Decimal("1.10")
    engine.broker.position_values = lambda: values  # a venue that reports market values
    alerts: list[str] = []
    with caplog.at_level("INFO", logger="qgtm.engine.live.recon"):
        result = _recon(alerts).run(engine)
    (item,) = result.discrepancies
    assert (item.kind, item.severity, item.action) == (
        DiscrepancyKind.VALUE_MISMATCH,
        Severity.INFO,
        Action.LOGGED,
    )
    assert alerts == []
    assert "event=RECON_COMPLETE" in caplog.text and "VALUE_MISMATCH=1" in caplog.text


def test_classify_by_hand():
    found = classify({"A": 100, "B": 50, "C": 97}, {"B": 50, "C": 100, "D": 10}, 0.05)
    assert [(d.kind.value, d.symbol) for d in found] == [
        ("MISSING_LOCALLY", "A"),
        ("QTY_MISMATCH", "C"),  # |97-100|/100 = 3% <= 5%: adjust
        ("MISSING_AT_BROKER", "D"),
    ]
    assert found[1].action is Action.ADJUSTED
    flipped = classify({"C": -100}, {"C": 100}, 0.05)
    assert flipped[0].action is Action.REVIEW  # a sign flip is never auto-corrected


def test_unchanged_runs_are_not_re_audited(engine):
    recon = _recon([])
    for _ in range(5):
        recon.run(engine)
    assert recon.runs == 5
    assert len(_events(engine, "RECON_COMPLETE")) == 1


def test_restart_rebuilds_broker_positions_from_its_fills(short_config: Config, tmp_path: Path):
    eng = TradingEngine(short_config, tmp_path)
    for _ in range(6):
        eng.step()
    held = eng.broker.positions()
    eng.close()
    again = TradingEngine(short_config, tmp_path)
    try:
        assert again.broker.positions() == held
    finally:
        again.close()
