"""The engine's state projected into the EngineSnapshot the terminal shows.

Built after every step or command that changes the book (`build_snapshot`); the
controls, alerts, reconciliation and data refresh replace fields of the last one.
"""

from __future__ import annotations

from decimal import Decimal

from qgtm.core import calendar
from qgtm.core.snapshot import AuditRow, EngineSnapshot, PositionRow, QuoteRow
from qgtm.engine.live.parts import LiveEngine


def build_snapshot(engine: LiveEngine) -> EngineSnapshot:
    last = engine.next_index - 1
    session = engine.panel.dates[last] if last >= 0 else None
    marks = engine._marks(max(last, 0))
    equity = engine.book.equity(marks)
    initial = Decimal(engine.config.engine.initial_cash)
    gross = sum((abs(marks[s] * h.quantity) for s, h in engine.book.holdings.items()), Decimal(0))
    previous = engine._snapshot.version if engine._snapshot is not None else 0
    return EngineSnapshot(
        version=previous + 1,
        mode=engine.config.mode,
        source=engine.config.source,
        session=session,
        sim_time=(
            engine.clock.now()
            if engine.wall_clock
            else calendar.session_close(session)
            if session
            else None
        ),
        running=engine.running,
        speed=engine.speed,
        kill_tier=engine.kill_tier,
        equity=float(equity),
        cash=float(engine.book.cash),
        daily_pnl=float(engine.daily_pnl),
        total_pnl=float(equity - initial),
        drawdown=float((engine.peak_equity - equity) / engine.peak_equity) if equity else 0.0,
        gross_leverage=float(gross / equity) if equity > 0 else 0.0,
        sessions_done=engine.state.session_count(),
        watchlist=watchlist(engine, max(last, 1)),
        positions=positions(engine, marks, equity),
        equity_curve=tuple(engine.state.equity_curve(500)),
        recent_orders=tuple(engine.state.recent_orders(100)),
        recent_audit=tuple(
            AuditRow(r.seq, r.sim_time, r.event, r.actor, _short(r.payload))
            for r in engine.audit.tail(100)
        ),
        alerts=tuple(engine.alerts),
        risk=engine.risk_status(),
        recon=engine.recon_view,
        regime=engine.regime,
        regime_raw=engine.regime_raw,
        data_refresh=engine.data_refresh,
    )


def watchlist(engine: LiveEngine, index: int) -> tuple[QuoteRow, ...]:
    close, prev = engine.panel.close[index], engine.panel.close[index - 1]
    return tuple(
        QuoteRow(
            symbol=s,
            sector=engine.universe.sector_of(s),
            last=float(close[i]),
            change_pct=float(close[i] / prev[i] - 1.0),
            volume=int(engine.panel.volume[index, i]),
        )
        for i, s in enumerate(engine.panel.symbols)
    )


def positions(
    engine: LiveEngine, marks: dict[str, Decimal], equity: Decimal
) -> tuple[PositionRow, ...]:
    rows = []
    for symbol, held in sorted(engine.book.holdings.items()):
        value = marks[symbol] * held.quantity
        rows.append(
            PositionRow(
                symbol=symbol,
                quantity=held.quantity,
                avg_price=float(held.avg_price),
                last_price=float(marks[symbol]),
                market_value=float(value),
                unrealized_pnl=float((marks[symbol] - held.avg_price) * held.quantity),
                weight=float(value / equity) if equity > 0 else 0.0,
            )
        )
    return tuple(rows)


def _short(payload: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in payload.items())
