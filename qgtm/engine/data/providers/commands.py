"""Engine commands of the data area: "data.status", "data.failures" and "data.refresh"."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Protocol

from qgtm.core.config import Config
from qgtm.core.quality import DatasetStatus, QualityFailure, Severity
from qgtm.core.universe import Universe
from qgtm.engine.data.quality import dataset_status, stored_failures
from qgtm.engine.data.store import MarketStore

log = logging.getLogger(__name__)

DEFAULT_REFRESH = ("fred", "cftc", "eia", "lbma")


class _Engine(Protocol):
    """What the data commands use of the engine (so this module needs no engine import)."""

    config: Config
    market: MarketStore
    universe: Universe

    @property
    def wall_clock(self) -> bool: ...

    def refresh_data_locked(self, sources: Sequence[str] | None = None) -> list[str]: ...

    def alert(self, message: str, source: str = "engine") -> None: ...

    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...


def register_data_commands(engine: _Engine) -> None:
    """Expose the data area to clients (terminal, attach socket)."""

    def status() -> list[DatasetStatus]:
        return dataset_status(engine.market.connection)

    def failures(limit: int) -> list[QualityFailure]:
        return stored_failures(engine.market.connection, limit)

    def refresh(sources: Sequence[str] | None) -> list[str]:
        # Runs under the step lock (engine.call); reloads the market when it trades on it.
        # Asked by hand without sources: every keyed source (what the Data screen means).
        if sources is None:
            sources = engine.config.live.refresh_sources or (
                ("alpaca", *DEFAULT_REFRESH) if engine.wall_clock else DEFAULT_REFRESH
            )
        return engine.refresh_data_locked(sources)

    engine.bind("data.status", status)
    engine.bind("data.failures", failures)
    engine.bind("data.refresh", refresh)


def scheduled_refresh(
    engine: _Engine,
    sources: Sequence[str] | None = None,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """The daemon scheduler's data job: incremental refresh, then the quality suite (run by
    every ingest); critical failures and failed sources become owner alerts
    (`engine.alert`, source "data"). Returns one line per source.

    `sources` defaults to DEFAULT_REFRESH; the daemon passes the configured ones (Alpaca
    bars first when the engine trades on them). `today` dates the request (fake clocks).
    """
    from qgtm.engine.data.providers.ingest import refresh

    sources = sources if sources is not None else DEFAULT_REFRESH
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        if progress is not None:
            progress(line)

    reports = refresh(engine.market, sources, engine.universe.symbols, progress=note, today=today)
    for report in reports:
        for failure in report.failures:
            if failure.severity is Severity.CRITICAL:
                engine.alert(
                    f"data quality {failure.dataset}:{failure.subject} {failure.check} "
                    f"{failure.day}: {failure.detail}",
                    source="data",
                )
    for line in lines:
        if "FAILED" in line:
            engine.alert(f"data refresh {line}", source="data")
    return lines
