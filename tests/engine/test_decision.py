"""engine/decision.decide: the one decision, stage by stage, on a small explicit world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from qgtm.core.enums import KillTier, SignalDirection
from qgtm.core.types import RiskLimits, Signal
from qgtm.engine.backtest.decision import GivenSignals
from qgtm.engine.data.store import PricePanel
from qgtm.engine.decision import (
    FLATTEN_SET,
    DecisionPoint,
    DecisionRules,
    OrderRules,
    decide,
)
from qgtm.engine.portfolio.aggregator import Aggregation
from qgtm.engine.portfolio.allocator import AllocationSettings, daily_returns
from qgtm.engine.risk.checks import CheckResult

SYMBOLS = ("GLD", "SLV", "USO")
DAYS = 120


def _panel() -> PricePanel:
    """Three ETFs over 120 sessions: seeded random walks, a million shares a day."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (DAYS, 3)), axis=0))
    dates = tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(DAYS))
    volume = np.full((DAYS, 3), 1_000_000.0)
    return PricePanel(dates, SYMBOLS, close, close * 1.01, close * 0.99, close, volume)


@dataclass
class Ledger:
    """A DecisionRecorder that writes down what it is told (a test's own recorder)."""

    audits_checks: bool = False
    calls: list[str] = field(default_factory=list)

    def signals(self, aggregation: Aggregation) -> None:
        self.calls.append("signals")

    def admit(
        self, by_strategy: dict[str, list[Signal]], day: date, at: datetime
    ) -> dict[str, list[Signal]]:
        self.calls.append("admit")
        return {k: [s for s in v if s.symbol != "USO"] for k, v in by_strategy.items()}

    def sleeves(self, index: int, sleeves: Mapping[str, Mapping[str, float]]) -> None:
        self.calls.append("sleeves")

    def strategy_returns(self, index: int) -> dict[str, list[float]]:
        return {}

    def checked(self, result: CheckResult, at: datetime) -> None:
        self.calls.append("checked")

    def targets(
        self,
        approved: Mapping[str, float],
        signals: Sequence[Signal],
        cuts: Mapping[str, str],
        at: datetime,
    ) -> None:
        self.calls.append("targets")


class NoSignals:
    """A SignalSource that must not be asked (a FLATTEN book decides without signals)."""

    def regime(self, history: PricePanel, day: date) -> str | None:
        raise AssertionError("a FLATTEN book asked for a regime")

    def aggregate(self, history: PricePanel, day: date, regime: str | None) -> Aggregation:
        raise AssertionError("a FLATTEN book asked for signals")


RULES = DecisionRules(
    symbols=SYMBOLS,
    sectors={"GLD": "metals", "SLV": "metals", "USO": "energy"},
    limits=RiskLimits(),
    allocation=AllocationSettings(),
    cov_window=63,
    gross_target=0.6,
)
ORDERS = OrderRules("tsmom", Decimal(5000), 20, 0.01, 0.05)


def _point(tier: KillTier = KillTier.NORMAL, holdings: Mapping[str, int] | None = None):
    panel = _panel()
    index = DAYS - 1
    history = panel.history_before(index)
    marks = {
        s: Decimal(str(round(float(p), 4))) for s, p in zip(SYMBOLS, history.close[-1], strict=True)
    }
    holdings = dict(holdings or {})
    equity = Decimal(1_000_000)
    current = {s: float(marks[s] * q / equity) for s, q in holdings.items()}
    return DecisionPoint(
        index=index,
        day=panel.dates[index],
        at=datetime(2020, 4, 29, 19, 30, tzinfo=UTC),
        history=history,
        returns=daily_returns(history.close, 60),
        current=current,
        equity=equity,
        peak=equity,
        tier=tier,
        holdings=holdings,
        marks=marks,
    )


def _long(symbol: str, strategy: str = "trend") -> Signal:
    return Signal(symbol, SignalDirection.LONG, 1.0, 1.0, strategy, date(2020, 4, 29))


def test_the_stages_run_in_order_and_admitted_signals_alone_are_allocated() -> None:
    ledger = Ledger()
    source = GivenSignals({"trend": [_long("GLD"), _long("USO")]})
    decision = decide(_point(), source, RULES, ledger, ORDERS)
    assert ledger.calls == ["signals", "admit", "sleeves", "checked", "targets"]
    assert [s.symbol for s in decision.signals] == ["GLD"]  # USO was not admitted
    assert set(decision.targets) == {"GLD"} and decision.approved["GLD"] > 0
    assert [(p.order.symbol, p.order.side.name) for p in decision.orders] == [("GLD", "BUY")]


def test_a_flatten_book_asks_for_no_signal_and_closes_every_holding() -> None:
    ledger = Ledger(audits_checks=True)
    point = _point(KillTier.FLATTEN, {"GLD": 1000, "SLV": -500})
    decision = decide(point, NoSignals(), RULES, ledger, ORDERS)
    assert decision.aggregation is None and decision.targets == {}
    assert ledger.calls == ["checked", "targets"]
    closing = {(p.order.symbol, p.order.side.name, p.order.quantity) for p in decision.orders}
    assert closing == {("GLD", "SELL", 1000), ("SLV", "BUY", 500)}
    assert all(FLATTEN_SET in p.order.client_order_id for p in decision.orders)


@pytest.mark.parametrize("audits", [False, True])
def test_an_empty_book_with_no_target_is_checked_only_for_a_recorder_that_audits(
    audits: bool,
) -> None:
    ledger = Ledger(audits_checks=audits)
    decision = decide(_point(), GivenSignals({}), RULES, ledger, ORDERS)
    assert decision.approved == {} and decision.orders == []
    assert ("checked" in ledger.calls) is audits
    assert (decision.check is not None) is audits


def test_the_signal_method_weights_by_inverse_volatility_with_the_context_free_checks() -> None:
    rules = replace(RULES, method="signal")
    point = replace(_point(), vols=lambda: {"GLD": 0.1, "SLV": 0.3, "USO": 0.2})
    source = GivenSignals({"trend": [_long("GLD"), _long("SLV")]})
    decision = decide(point, source, rules, Ledger(), ORDERS)
    # inverse vol: 1/0.1 : 1/0.3 = 3 : 1 of the 0.6 gross
    assert decision.targets == pytest.approx({"GLD": 0.45, "SLV": 0.15})
    assert decision.sleeves == {}
