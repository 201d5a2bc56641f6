"""Engine commands of the data area: "data.status", "data.failures" and "data.refresh"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qgtm.engine.data.quality import (
    DatasetStatus,
    QualityFailure,
    Severity,
    dataset_status,
    stored_failures,
)

if TYPE_CHECKING:
    from qgtm.engine.live.engine import TradingEngine

log = logging.getLogger(__name__)

DEFAULT_REFRESH = ("fred", "cftc", "eia", "lbma")


def register_data_commands(engine: TradingEngine) -> None:
    """Expose the data area to clients (terminal, attach socket)."""

    def status() -> list[DatasetStatus]:
        return dataset_status(engine.market.connection)

    def failures(limit: int = 200) -> list[QualityFailure]:
        return stored_failures(engine.market.connection, limit)

    def refresh(sources: Sequence[str] | None = None) -> list[str]:
        return scheduled_refresh(engine, sources)

    engine.register_command("data.status", status)
    engine.register_command("data.failures", failures)
    engine.register_command("data.refresh", refresh)


def scheduled_refresh(engine: TradingEngine, sources: Sequence[str] | None = None) -> list[str]:
    """The daemon scheduler's data job: incremental refresh, critical failures to alerts.

    `sources` defaults to DEFAULT_REFRESH (Alpaca bars come with the broker's data feed).
    """
    from qgtm.engine.data.providers.ingest import refresh

    sources = sources if sources is not None else DEFAULT_REFRESH
    lines: list[str] = []
    reports = refresh(engine.market, sources, engine.universe.symbols, progress=lines.append)
    for report in reports:
        for failure in report.failures:
            if failure.severity is Severity.CRITICAL:
                engine.alerts.appendleft(
                    f"data quality {failure.dataset}:{failure.subject} {failure.check} "
                    f"{failure.day}: {failure.detail}"
                )
    for line in lines:
        if "FAILED" in line:
            engine.alerts.appendleft(f"data refresh {line}")
    return lines
