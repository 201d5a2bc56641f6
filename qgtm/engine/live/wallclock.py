"""Wall-clock mode (source=alpaca): the market is Alpaca's daily bars known by now.

On the wall clock the session being decided has no bar yet: at 15:30 on day t the
engine decides from the bars of t-1 and before (all its panel holds, by knowledge
time), the broker fills the orders during the session and the OMS-events task books
the fills as they stream in; t's close is booked when t's bar arrives (the data
refresh after the close, or the next start-up / decision).

Functions over the engine; `TradingEngine` keeps the public names (`decide_live`,
`process_broker_updates`, `work_algos`, `refresh_data`, ...) and delegates here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from qgtm.core import calendar
from qgtm.core.enums import KillTier
from qgtm.core.snapshot import DataRefreshView
from qgtm.engine.data.store import MarketDataError, PricePanel
from qgtm.engine.live.parts import LiveEngine
from qgtm.engine.live.projection import build_snapshot
from qgtm.engine.live.sessions import rebalance, stop_algos

log = logging.getLogger("qgtm.engine.live.engine")


def load_live_market(engine: LiveEngine) -> PricePanel:
    """Start-up: fetch the missing Alpaca daily bars, then load what is known by now."""
    failure = ""
    try:
        _ingest_bars(engine, engine.clock.now())
    except Exception as exc:  # the stored bars still serve; the owner hears about it
        failure = str(exc)
        engine._startup_alerts.append(f"start-up bar refresh failed: {exc}")
        log.warning("event=startup_refresh_failed error=%r", failure)
    try:
        return engine.market.load_provider_panel(engine.universe.symbols, engine.clock.now())
    except MarketDataError as exc:
        if failure:
            raise MarketDataError(f"{exc} (start-up refresh: {failure})") from None
        raise


def _ingest_bars(engine: LiveEngine, now: datetime) -> list[str]:
    from qgtm.engine.data.providers.ingest import refresh

    lines: list[str] = []
    refresh(engine.market, ("alpaca",), engine.universe.symbols, lines.append, now.date())
    failed = [line for line in lines if "FAILED" in line]
    if failed:
        raise RuntimeError("; ".join(failed))
    return lines


def _reload_panel(engine: LiveEngine) -> None:
    """Load the bars known now (after a refresh); indices of stored days do not move."""
    panel = engine.market.load_provider_panel(engine.universe.symbols, engine.clock.now())
    if panel.dates[: len(engine.panel)] != engine.panel.dates:
        raise MarketDataError(
            "stored provider bars changed their session days; refusing to re-index the book"
        )
    engine.panel = panel
    engine.learn.panel = panel


def close_pending(engine: LiveEngine) -> int:
    """Book the close of every session whose bar arrived since the last close (caller
    holds the step lock, or is the constructor). Returns how many were booked."""
    done = 0
    while engine.next_index < len(engine.panel):
        index = engine.next_index
        at = calendar.session_close(engine.panel.dates[index])
        try:
            with engine.state.transaction():
                engine.oms.process_updates(at)
                engine._close(index, at)
                engine._flush_alerts()
        except Exception:
            log.exception("event=close_failed session=%s", engine.panel.dates[index])
            engine._restore()
            raise
        engine.next_index = index + 1
        done += 1
        if engine.broker.commit_before_send:  # a kill-switch flatten placed orders
            engine.oms.dispatch(at)
    if done:
        engine._snapshot = build_snapshot(engine)
    return done


def check_account(engine: LiveEngine) -> None:
    """A new live book starts from engine.initial_cash: warn when the account differs."""
    fresh = engine.state.get_meta("last_index") is None
    if not fresh or engine.state.get_meta("decided_session") is not None:
        return
    initial = Decimal(engine.config.engine.initial_cash)
    try:
        equity = engine.broker.account().equity
    except Exception as exc:  # the venue is unreachable: say so, trade on later
        engine.alert(f"cannot read the broker account at start-up: {exc}", source="engine")
        return
    if initial > 0 and abs(equity - initial) / initial > Decimal("0.01"):
        engine.alert(
            f"the broker account's equity {equity:,.2f} differs from engine.initial_cash "
            f"{initial:,.2f}: set initial_cash to the account's equity before trading",
            source="engine",
        )


def decide_live(engine: LiveEngine, at: datetime) -> int:
    """The rebalance job on the wall clock: decide session `at.date()` once.

    Books pending closes first; refuses (alert, returns -1) while paused, and a day
    that is not a session, is already decided, is past its close, or whose previous
    session's bar is missing. Returns the number of orders placed.
    """
    day = at.astimezone(calendar.NEW_YORK).date()
    with engine._step_lock:
        close_pending(engine)
        if engine.state.get_meta("decided_session") == day.isoformat():
            log.info("event=decision_skipped reason=already_decided session=%s", day)
            return -1
        refusal = decision_refusal(engine, day, at)
        if refusal:
            engine.alert(f"no decision on {day}: {refusal}", source="engine")
            with engine.state.transaction():
                engine._flush_alerts()
            log.warning("event=decision_refused session=%s reason=%r", day, refusal)
            return -1
        index = len(engine.panel)
        before = engine.state.conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        try:
            with engine.state.transaction():
                engine.oms.process_updates(at)
                rebalance(engine, index, at)
                engine.state.set_meta("decided_session", day.isoformat())
                engine._flush_alerts()
        except Exception:
            log.exception("event=decision_failed session=%s", day)
            engine._restore()
            raise
        placed = engine.state.conn.execute("SELECT count(*) FROM orders").fetchone()[0] - before
        engine.oms.dispatch(at)  # committed first, then sent
        engine._snapshot = build_snapshot(engine)
        log.info("event=decided session=%s orders=%d", day, placed)
        return placed


def decision_refusal(engine: LiveEngine, day: date, at: datetime) -> str:
    if not engine.running:
        return "paused by the operator"
    if not calendar.is_session(day):
        return "not an XNYS session"
    if at >= calendar.session_close(day):
        return "the session has closed"
    previous = calendar.sessions(day - timedelta(days=14), day - timedelta(days=1))
    if previous and engine.panel.dates[-1] < previous[-1]:
        return f"bars stop at {engine.panel.dates[-1]}, {previous[-1]} is missing"
    return ""


def process_broker_updates(engine: LiveEngine, at: datetime | None = None) -> int:
    """Book what the venue streamed since the last call (the OMS-events task)."""
    if at is None:  # replay with an external broker: the simulated time
        session = engine.current_session
        wall = engine.wall_clock or session is None
        at = engine.clock.now() if wall else calendar.session_close(session)
    with engine._step_lock:
        with engine.state.transaction():
            count = engine.oms.process_updates(at)
            engine._flush_alerts()
        if count:
            engine._snapshot = build_snapshot(engine)
    return count


def work_algos(engine: LiveEngine, at: datetime) -> None:
    """The algo job (wall clock, external venue): book what the venue reported, then
    release the sliced parents' due children and close ended windows. Under NO_NEW
    or worse, parents that would grow a position stop first."""
    with engine._step_lock:
        with engine.state.transaction():
            engine.oms.process_updates(at)
            engine._flush_alerts()
        if engine.kill_tier >= KillTier.NO_NEW:
            with engine.state.transaction():
                stop_algos(engine, increasing_only=True)
        engine.oms.work(at)  # commits each child itself (SENDING, sent, answer)
        engine._snapshot = build_snapshot(engine)


def refresh_data(engine: LiveEngine, sources: Sequence[str] | None = None) -> list[str]:
    """The daemon's data job: `refresh_data_locked` under the step lock."""
    with engine._step_lock:
        return engine.refresh_data_locked(sources)


def refresh_data_locked(engine: LiveEngine, sources: Sequence[str] | None = None) -> list[str]:
    """Incremental refresh of `sources` (default: the configured ones), the quality
    suite after each ingest, then (trading on Alpaca bars) reload the market and book
    the closes that arrived. Progress shows in the snapshot (`data_refresh`)."""
    from qgtm.engine.data.providers.commands import scheduled_refresh

    chosen = tuple(sources) if sources is not None else engine.refresh_sources()
    started = engine.clock.now().isoformat(timespec="seconds")
    publish_refresh(engine, DataRefreshView("RUNNING", started, sources=chosen))
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        publish_refresh(
            engine, DataRefreshView("RUNNING", started, sources=chosen, lines=tuple(lines))
        )

    state = "OK"
    try:
        scheduled_refresh(engine, chosen, engine.clock.now().date(), progress)
        if engine.wall_clock and "alpaca" in chosen:
            _reload_panel(engine)
            close_pending(engine)
    except Exception as exc:
        state = "FAILED"
        lines.append(f"refresh: FAILED {exc}")
        engine.alert(f"data refresh failed: {exc}", source="data")
        log.exception("event=data_refresh_failed")
    if any("FAILED" in line for line in lines):
        state = "FAILED"
    with engine.state.transaction():
        engine._flush_alerts()
    engine.data_refresh = DataRefreshView(
        state,
        started,
        engine.clock.now().isoformat(timespec="seconds"),
        chosen,
        tuple(lines),
    )
    engine._snapshot = build_snapshot(engine)
    return lines


def refresh_sources(engine: LiveEngine) -> tuple[str, ...]:
    """`live.refresh_sources`, else the market's own: Alpaca bars when trading on them."""
    configured = engine.config.live.refresh_sources
    if configured:
        return configured
    return ("alpaca",) if engine.wall_clock else ()


def publish_refresh(engine: LiveEngine, view: DataRefreshView) -> None:
    engine.data_refresh = view
    if engine._snapshot is not None:
        engine._snapshot = replace(
            engine._snapshot, data_refresh=view, version=engine._snapshot.version + 1
        )
