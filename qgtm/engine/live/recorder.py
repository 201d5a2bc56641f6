"""The live book's DecisionRecorder: what a decision writes besides its orders.

engine/decision.decide calls it at each stage, inside the session's transaction:
signals into state.sqlite, a DATA_QUALITY_BLOCK audit for each signalled symbol whose
data failed a critical check (its signals are dropped), the proposed sleeves (the Kelly
cap reads their paper returns back), every risk check's outcome, cut and block (audit +
risk events, RiskManager.record_check), and the approved targets to the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np

from qgtm.core.types import Signal
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.quality import blocked_symbols
from qgtm.engine.outbox import Outbox
from qgtm.engine.portfolio.aggregator import Aggregation
from qgtm.engine.risk.checks import CheckResult
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.state import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BookRecorder:
    """Records one live decision in the book's stores (see the module docstring)."""

    state: StateStore
    audit: AuditLog
    risk: RiskManager
    outbox: Outbox
    market: duckdb.DuckDBPyConnection  # the quality log behind data-quality blocks
    strategy_set: str
    closes: np.ndarray  # the panel's closes (the Kelly cap reads those before a session)
    symbols: tuple[str, ...]
    audits_checks: bool = True  # the audit log has every decision's check outcomes

    def signals(self, aggregation: Aggregation) -> None:
        """Store every active strategy's signals."""
        self.state.record_signals(aggregation.signals)

    def admit(
        self, by_strategy: dict[str, list[Signal]], day: date, at: datetime
    ) -> dict[str, list[Signal]]:
        """Drop signals on symbols whose data failed a critical quality check (audited once
        per decision and symbol)."""
        blocked = blocked_symbols(self.market, day)
        if not blocked:
            return by_strategy
        signalled = {s.symbol for signals in by_strategy.values() for s in signals}
        for symbol in sorted(signalled & set(blocked)):
            reason = blocked[symbol]
            self.audit.append(
                "DATA_QUALITY_BLOCK", "data", at, {"symbol": symbol, "reason": reason}
            )
            log.warning("event=data_quality_block symbol=%s reason=%r", symbol, reason)
        return {
            name: [s for s in signals if s.symbol not in blocked]
            for name, signals in by_strategy.items()
        }

    def sleeves(self, index: int, sleeves: Mapping[str, Mapping[str, float]]) -> None:
        """Store the proposed sleeves (RiskManager.record_sleeves)."""
        self.risk.record_sleeves(index, sleeves)

    def strategy_returns(self, index: int) -> dict[str, list[float]]:
        """Each strategy's sleeve returns from closes strictly before session `index`."""
        return self.risk.strategy_returns(index, self.closes[:index], self.symbols)

    def checked(self, result: CheckResult, at: datetime) -> None:
        """Audit every check and each cut or block (RiskManager.record_check)."""
        self.risk.record_check(result, at)

    def targets(
        self,
        approved: Mapping[str, float],
        signals: Sequence[Signal],
        cuts: Mapping[str, str],
        at: datetime,
    ) -> None:
        """Queue the approved targets for subscribers."""
        self.outbox.enqueue_targets(approved, list(signals), cuts, at, self.strategy_set)
