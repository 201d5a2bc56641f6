"""Reconciliation: the broker's positions against the book, classified and handled.

Every run compares `broker.positions()` (what the venue holds) with the book:

  MISSING_LOCALLY    broker holds a symbol the book does not    CRITICAL -> owner alert
  MISSING_AT_BROKER  book holds a symbol the broker does not    WARNING  -> mark local stale
  QTY_MISMATCH       both hold it, quantities differ
                     |b - l| / max(|b|, |l|) <= tolerance        WARNING  -> adjust book to broker
                     above the tolerance                         CRITICAL -> alert for review
  VALUE_MISMATCH     quantities agree, the broker's market value differs from the book's by
                     more than the value tolerance (stale marks)  INFO     -> log only

Every discrepancy is written to the audit log (RECON_DISCREPANCY) and every run is
logged as RECON_COMPLETE with counts (broker, local, discrepancies): at INFO and in the
audit log when the result changed since the previous run, at DEBUG when it did not (a
60 s cadence would otherwise bury the log and the audit trail in identical records).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from qgtm.core.config import LiveConfig
from qgtm.core.snapshot import ReconRow, ReconView
from qgtm.engine.portfolio.book import Holding

if TYPE_CHECKING:
    from qgtm.engine.live.engine import TradingEngine

log = logging.getLogger(__name__)

ACTOR = "recon"
STALE_META = "stale_positions"


class DiscrepancyKind(StrEnum):
    """How the broker's view and the book's view of one symbol differ."""

    MISSING_LOCALLY = "MISSING_LOCALLY"
    MISSING_AT_BROKER = "MISSING_AT_BROKER"
    QTY_MISMATCH = "QTY_MISMATCH"
    VALUE_MISMATCH = "VALUE_MISMATCH"


class Severity(StrEnum):
    """How urgently a discrepancy needs a human."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Action(StrEnum):
    """What reconciliation did about a discrepancy."""

    ALERTED = "ALERTED"
    MARKED_STALE = "MARKED_STALE"
    ADJUSTED = "ADJUSTED"
    REVIEW = "REVIEW"
    LOGGED = "LOGGED"


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One classified difference."""

    kind: DiscrepancyKind
    symbol: str
    severity: Severity
    broker_qty: int
    local_qty: int
    action: Action
    detail: str


@dataclass(frozen=True, slots=True)
class ReconResult:
    """The outcome of one reconciliation run."""

    at: str
    broker_positions: int
    local_positions: int
    discrepancies: tuple[Discrepancy, ...] = ()

    def count(self, kind: DiscrepancyKind) -> int:
        """How many discrepancies of `kind`."""
        return sum(1 for d in self.discrepancies if d.kind is kind)


def classify(
    broker: Mapping[str, int],
    local: Mapping[str, int],
    qty_tolerance: float,
    value_tolerance: float = 0.01,
    broker_values: Mapping[str, Decimal] | None = None,
    local_values: Mapping[str, Decimal] | None = None,
) -> list[Discrepancy]:
    """Classify every difference between broker and local quantities (and values)."""
    found: list[Discrepancy] = []
    for symbol in sorted(set(broker) | set(local)):
        b, lq = int(broker.get(symbol, 0)), int(local.get(symbol, 0))
        if b and not lq:
            found.append(
                Discrepancy(
                    DiscrepancyKind.MISSING_LOCALLY,
                    symbol,
                    Severity.CRITICAL,
                    b,
                    0,
                    Action.ALERTED,
                    f"broker holds {b} {symbol}, the book holds none",
                )
            )
        elif lq and not b:
            found.append(
                Discrepancy(
                    DiscrepancyKind.MISSING_AT_BROKER,
                    symbol,
                    Severity.WARNING,
                    0,
                    lq,
                    Action.MARKED_STALE,
                    f"book holds {lq} {symbol}, the broker holds none",
                )
            )
        elif b != lq:
            gap = abs(b - lq) / max(abs(b), abs(lq))
            small = gap <= qty_tolerance and (b > 0) == (lq > 0)
            found.append(
                Discrepancy(
                    DiscrepancyKind.QTY_MISMATCH,
                    symbol,
                    Severity.WARNING if small else Severity.CRITICAL,
                    b,
                    lq,
                    Action.ADJUSTED if small else Action.REVIEW,
                    f"broker {b} vs book {lq} ({gap:.2%} of the position, "
                    f"tolerance {qty_tolerance:.2%})",
                )
            )
        elif b and broker_values is not None and local_values is not None:
            bv, lv = broker_values.get(symbol), local_values.get(symbol)
            if bv is None or lv is None:
                continue
            denom = max(abs(bv), abs(lv))
            gap = float(abs(bv - lv) / denom) if denom else 0.0
            if gap > value_tolerance:
                found.append(
                    Discrepancy(
                        DiscrepancyKind.VALUE_MISMATCH,
                        symbol,
                        Severity.INFO,
                        b,
                        lq,
                        Action.LOGGED,
                        f"broker value {bv} vs book {lv} ({gap:.2%}); expected to clear "
                        "on the next mark",
                    )
                )
    return found


@dataclass
class ReconciliationEngine:
    """Runs reconciliation against a TradingEngine's broker and book and handles results.

    `alert` receives owner alerts (CRITICAL findings); the caller must hold the engine's
    step lock while `run` executes (it may adjust the book).
    """

    config: LiveConfig
    alert: Callable[[str], None] | None = None
    runs: int = 0
    stale: set[str] = field(default_factory=set)
    last: ReconResult | None = None
    _last_key: Any = None

    def run(self, engine: TradingEngine, at: datetime | None = None) -> ReconResult:
        """One reconciliation of `engine.broker` against `engine.book`."""
        self.runs += 1
        broker_qty = engine.broker.positions()
        local_qty = engine.book.quantities()
        when = at or (engine.snapshot().sim_time or datetime.now())
        key = (tuple(sorted(broker_qty.items())), tuple(sorted(local_qty.items())))
        if key == self._last_key and self.last is not None:
            # Nothing moved since the last run: same result, nothing new to handle.
            result = ReconResult(
                when.isoformat(), len(broker_qty), len(local_qty), self.last.discrepancies
            )
            self._complete(engine, result, audit=False)
            return result
        broker_values = _broker_values(engine)
        local_values = None
        if broker_values is not None:
            marks = engine._marks(max(engine.next_index - 1, 0))
            local_values = {s: marks[s] * q for s, q in local_qty.items() if s in marks}
        found = classify(
            broker_qty,
            local_qty,
            self.config.recon_qty_tolerance,
            self.config.recon_value_tolerance,
            broker_values,
            local_values,
        )
        result = ReconResult(when.isoformat(), len(broker_qty), len(local_qty), tuple(found))
        with engine.state.transaction():
            for item in found:
                self._handle(engine, item, when)
            self._save_stale(engine, found)
            self._complete(engine, result, audit=True)
        # Adjustments change the book, so the next comparison differs from this one.
        self._last_key = (
            tuple(sorted(engine.broker.positions().items())),
            tuple(sorted(engine.book.quantities().items())),
        )
        if any(d.action is Action.ADJUSTED for d in found):
            self._last_key = None
        return result

    def _handle(self, engine: TradingEngine, item: Discrepancy, at: datetime) -> None:
        engine.audit.append(
            "RECON_DISCREPANCY",
            ACTOR,
            at,
            {
                "kind": item.kind.value,
                "symbol": item.symbol,
                "severity": item.severity.value,
                "broker_qty": item.broker_qty,
                "local_qty": item.local_qty,
                "action": item.action.value,
            },
        )
        level = logging.WARNING if item.severity is not Severity.INFO else logging.INFO
        log.log(
            level,
            "event=RECON_DISCREPANCY kind=%s symbol=%s severity=%s action=%s detail=%r",
            item.kind.value,
            item.symbol,
            item.severity.value,
            item.action.value,
            item.detail,
        )
        if item.action is Action.ADJUSTED:
            held = engine.book.holdings.get(item.symbol)
            avg = held.avg_price if held is not None else Decimal(0)
            engine.book.holdings[item.symbol] = Holding(item.broker_qty, avg)
            marks = engine._marks(max(engine.next_index - 1, 0))
            engine.state.save_positions(engine.book, marks)
            engine.audit.append(
                "RECON_ADJUSTED",
                ACTOR,
                at,
                {"symbol": item.symbol, "from": item.local_qty, "to": item.broker_qty},
            )
        if item.severity is Severity.CRITICAL:
            what = "unknown position" if item.kind is DiscrepancyKind.MISSING_LOCALLY else "review"
            self._alert(engine, f"RECON {item.kind.value} {item.symbol}: {what}: {item.detail}")

    def _alert(self, engine: TradingEngine, message: str) -> None:
        engine.alert(message, source="recon")
        log.error("event=owner_alert source=recon message=%r", message)
        if self.alert is not None:
            self.alert(message)

    def _save_stale(self, engine: TradingEngine, found: list[Discrepancy]) -> None:
        self.stale = {d.symbol for d in found if d.kind is DiscrepancyKind.MISSING_AT_BROKER}
        engine.state.set_meta(STALE_META, ",".join(sorted(self.stale)))

    def _complete(self, engine: TradingEngine, result: ReconResult, audit: bool) -> None:
        self.last = result
        counts = {k.value: result.count(k) for k in DiscrepancyKind}
        # A run identical to the previous one is logged at DEBUG (60 s cadence, no news).
        log.log(
            logging.INFO if audit else logging.DEBUG,
            "event=RECON_COMPLETE broker=%d local=%d discrepancies=%d %s",
            result.broker_positions,
            result.local_positions,
            len(result.discrepancies),
            " ".join(f"{k}={v}" for k, v in counts.items()),
        )
        if audit:
            engine.audit.append(
                "RECON_COMPLETE",
                ACTOR,
                result.at,
                {
                    "broker": result.broker_positions,
                    "local": result.local_positions,
                    "discrepancies": len(result.discrepancies),
                    **counts,
                },
            )
            engine.publish_recon(self.view())
        else:
            engine.recon_view = self.view()  # shown with the next step's snapshot

    def view(self) -> ReconView | None:
        """What the recon screen shows of the latest run."""
        if self.last is None:
            return None
        return ReconView(
            at=self.last.at,
            runs=self.runs,
            broker_positions=self.last.broker_positions,
            local_positions=self.last.local_positions,
            discrepancies=tuple(
                ReconRow(
                    d.kind.value,
                    d.symbol,
                    d.severity.value,
                    d.broker_qty,
                    d.local_qty,
                    d.action.value,
                    d.detail,
                )
                for d in self.last.discrepancies
            ),
            stale=tuple(sorted(self.stale)),
        )


def _broker_values(engine: TradingEngine) -> dict[str, Decimal] | None:
    """Market values as the broker reports them, if the broker reports any."""
    values = getattr(engine.broker, "position_values", None)
    return None if values is None else dict(values())
