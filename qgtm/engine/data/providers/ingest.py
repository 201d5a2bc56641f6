"""Incremental ingest: fetch what the store lacks, upsert, run the quality suite.

`refresh(store, names)` is the scheduled-refresh entry point (the daemon's scheduler
calls it on its cron; the engine exposes it as the "data.refresh" command).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from qgtm.core.config import REFRESH_SOURCES
from qgtm.core.quality import QualityFailure, Severity
from qgtm.core.secrets import MissingCredentialsError
from qgtm.engine.data.providers.base import Provider, ProviderError
from qgtm.engine.data.quality import (
    BAR_POLICY,
    POLICIES,
    QualityPolicy,
    check_bars_frame,
    check_series_frame,
    store_failures,
)
from qgtm.engine.data.store import MarketStore

log = logging.getLogger(__name__)

SOURCES = REFRESH_SOURCES  # declared in core so the CLI parser needs no engine import


class UnknownSourceError(ValueError):
    """A source name nobody implemented."""


def make_provider(name: str, symbols: tuple[str, ...] = (), timeframe: str = "1Day") -> Provider:
    """The provider for source `name` (keys are looked up now: MissingKeyError if unset)."""
    if name == "fred":
        from qgtm.engine.data.providers.fred import FredProvider

        return FredProvider()
    if name == "cftc":
        from qgtm.engine.data.providers.cftc import CftcProvider

        return CftcProvider()
    if name == "eia":
        from qgtm.engine.data.providers.eia import EiaProvider

        return EiaProvider()
    if name == "lbma":
        from qgtm.engine.data.providers.lbma import LbmaProvider

        return LbmaProvider()
    if name == "alpaca":
        from qgtm.engine.data.providers.alpaca import AlpacaBarsProvider

        return AlpacaBarsProvider(symbols, timeframe)
    raise UnknownSourceError(f"unknown data source {name!r} (choose from {', '.join(SOURCES)})")


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest did: rows written, the window asked for, quality failures found."""

    source: str
    rows: int
    since: date | None
    until: date | None
    failures: tuple[QualityFailure, ...]

    @property
    def critical(self) -> int:
        """How many failures are CRITICAL."""
        return sum(f.severity is Severity.CRITICAL for f in self.failures)


def ingest(
    store: MarketStore,
    provider: Provider,
    since: date | None = None,
    until: date | None = None,
    today: date | None = None,
) -> IngestReport:
    """Fetch since..until (default: from what the store holds minus the overlap), store, check."""
    if since is None:
        since = _resume_from(store, provider)
    try:
        frame = provider.fetch(since, until)
    except ProviderError as exc:
        for dataset in provider.datasets:
            store.record_ingest(dataset, 0, "FAILED", str(exc))
        raise
    today = today or date.today()
    failures: list[QualityFailure] = []
    if provider.kind == "bars":
        rows = store.upsert_provider_bars(frame)
        failures += check_bars_frame(frame, provider.datasets[0], BAR_POLICY, today)
        dataset_rows = {provider.datasets[0]: rows}
    else:
        rows = store.upsert_series(frame)
        dataset_rows = {}
        for dataset in provider.datasets:
            stored = store.series_frame(dataset)
            dataset_rows[dataset] = frame.filter(frame["dataset"] == dataset).height
            failures += check_series_frame(stored, POLICIES.get(dataset, QualityPolicy()), today)
    for dataset, count in dataset_rows.items():
        mine = [f for f in failures if f.dataset == dataset]
        store_failures(store.connection, dataset, mine)
        status = "CRITICAL" if any(f.severity is Severity.CRITICAL for f in mine) else "OK"
        store.record_ingest(dataset, count, status, f"{len(mine)} quality failures")
    log.info("event=ingested source=%s rows=%d failures=%d", provider.name, rows, len(failures))
    return IngestReport(provider.name, rows, since, until, tuple(failures))


def _resume_from(store: MarketStore, provider: Provider) -> date | None:
    if provider.kind == "bars":
        last = store.last_bar_day(provider.datasets[0].removeprefix("bars_"))
    else:
        known = [store.last_series_period(d) for d in provider.datasets]
        known_days = [d for d in known if d is not None]
        last = min(known_days) if len(known_days) == len(known) else None
    return None if last is None else last - timedelta(days=provider.overlap_days)


def refresh(
    store: MarketStore,
    names: Iterable[str],
    symbols: tuple[str, ...] = (),
    progress: Callable[[str], None] | None = None,
    today: date | None = None,
) -> list[IngestReport]:
    """Scheduled refresh: incremental ingest of each source; a failing source is reported
    and the others still run. Returns the reports of the sources that worked.

    `today` (default: the system date) bounds the request and dates the freshness check."""
    reports = []
    for name in names:
        try:
            provider = make_provider(name, symbols)
            try:
                report = ingest(store, provider, until=today, today=today)
            finally:
                provider.close()
        except (ProviderError, MissingCredentialsError) as exc:
            log.warning("event=refresh_failed source=%s error=%r", name, str(exc))
            if progress:
                progress(f"{name}: FAILED {exc}")
            continue
        reports.append(report)
        if progress:
            progress(f"{name}: {report.rows} rows, {report.critical} critical quality failures")
    return reports
