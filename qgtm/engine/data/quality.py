"""Data quality suite: run after every ingest, failures stored, critical ones block trading.

Checks on one observed sequence (a series' latest vintages, or one symbol's closes):

* null        a period with no value;
* range       a value outside [min_value, max_value] (a negative price, a zero yield cap);
* monotonic   timestamps not strictly increasing in the order delivered;
* duplicate   the same timestamp twice;
* split_jump  |x_t / x_{t-1} - 1| > max_abs_return (adjusted bars should never jump like
              a split; for spot prices it flags moves a human should look at);
* freshness   the newest observation older than max_staleness_days calendar days;
* drift       two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp; Massey 1951,
              "The Kolmogorov-Smirnov test for goodness of fit", JASA 46) of the last
              `drift_window` changes against the `drift_reference` changes before them,
              failing when p < drift_pvalue.

A CRITICAL failure dated on day d blocks the symbols that depend on that data for the
decisions of d and of the next XNYS session (the first decision that uses data of d):
`blocked_symbols(con, day)`. Failures are stored in `quality_failures` (market.duckdb).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import polars as pl

from qgtm.core import calendar
from qgtm.core.quality import DatasetStatus, QualityFailure, Severity

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    """Thresholds of one dataset; `critical` names the checks that block trading."""

    min_value: float | None = None
    max_value: float | None = None
    max_abs_return: float | None = 0.20
    max_staleness_days: int | None = None
    drift_window: int = 63
    drift_reference: int = 504
    drift_pvalue: float = 1e-6
    critical: frozenset[str] = field(
        default_factory=lambda: frozenset({"null", "range", "monotonic", "duplicate"})
    )


PRICE_POLICY = QualityPolicy(min_value=0.0, max_staleness_days=5)
BAR_POLICY = QualityPolicy(
    min_value=0.0,
    max_staleness_days=5,
    critical=frozenset({"null", "range", "monotonic", "duplicate", "split_jump"}),
)
POLICIES: dict[str, QualityPolicy] = {
    "fred": QualityPolicy(max_abs_return=None, max_staleness_days=45),
    "cot_legacy": QualityPolicy(max_abs_return=None, max_staleness_days=14),
    "cot_disagg": QualityPolicy(max_abs_return=None, max_staleness_days=14),
    "eia": QualityPolicy(min_value=0.0, max_abs_return=0.25, max_staleness_days=14),
    "lbma": PRICE_POLICY,
}

# Which ETFs trade on which data: subject (series or its market prefix) -> symbols.
SUBJECT_SYMBOLS: dict[str, tuple[str, ...]] = {
    "gold": ("GLD", "IAU", "GDX"),
    "silver": ("SLV",),
    "crude": ("USO", "BNO"),
    "natgas": ("UNG",),
    "corn": ("CORN",),
    "wheat": ("WEAT",),
    "soybeans": ("SOYB",),
    "copper": ("CPER",),
    "crude_stocks_ex_spr_kbbl": ("USO", "BNO"),
    "natgas_storage_l48_bcf": ("UNG",),
    "gold_pm_usd": ("GLD", "IAU"),
    "silver_usd": ("SLV",),
    "wti_spot": ("USO",),
    "brent_spot": ("BNO",),
    "henry_hub_spot": ("UNG",),
}


def check_observations(
    dataset: str,
    subject: str,
    days: Sequence[date],
    values: Sequence[float | None],
    policy: QualityPolicy,
    today: date | None = None,
) -> list[QualityFailure]:
    """Every failed check on one sequence, in the order delivered (see module docstring)."""
    failures: list[QualityFailure] = []

    def fail(check: str, day: date, detail: str) -> None:
        severity = Severity.CRITICAL if check in policy.critical else Severity.WARNING
        failures.append(QualityFailure(dataset, subject, check, severity, day, detail))

    seen: set[date] = set()
    previous_day: date | None = None
    previous_value: float | None = None
    for day, value in zip(days, values, strict=True):
        if day in seen:
            fail("duplicate", day, f"{subject} {day} appears more than once")
        elif previous_day is not None and day < previous_day:
            fail("monotonic", day, f"{subject} {day} comes after {previous_day}")
        seen.add(day)
        previous_day = day if previous_day is None else max(previous_day, day)
        if value is None or math.isnan(value):
            fail("null", day, f"{subject} has no value on {day}")
            continue
        if policy.min_value is not None and value < policy.min_value:
            fail("range", day, f"{subject} {value:g} below {policy.min_value:g} on {day}")
        if policy.max_value is not None and value > policy.max_value:
            fail("range", day, f"{subject} {value:g} above {policy.max_value:g} on {day}")
        if policy.max_abs_return is not None and previous_value and previous_value > 0 < value:
            move = value / previous_value - 1.0
            if abs(move) > policy.max_abs_return:
                fail("split_jump", day, f"{subject} moved {move:+.1%} on {day}")
        previous_value = value
    if today is not None and policy.max_staleness_days is not None and days:
        newest = max(days)
        if (today - newest).days > policy.max_staleness_days:
            fail("freshness", today, f"{subject} newest {newest}, {(today - newest).days} days old")
    drift = _drift(values, policy)
    if drift is not None and days:
        fail("drift", max(days), f"{subject} changes drifted (KS p={drift:.1e})")
    return failures


def _drift(values: Sequence[float | None], policy: QualityPolicy) -> float | None:
    """KS p-value of recent vs reference changes when below the threshold, else None."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    need = policy.drift_window + policy.drift_reference + 1
    if len(clean) < need:
        return None
    from scipy.stats import ks_2samp

    tail = clean[-need:]
    changes = [b - a for a, b in itertools.pairwise(tail)]
    reference, recent = changes[: policy.drift_reference], changes[policy.drift_reference :]
    pvalue = float(ks_2samp(reference, recent).pvalue)
    return pvalue if pvalue < policy.drift_pvalue else None


def check_series_frame(
    frame: pl.DataFrame, policy: QualityPolicy, today: date | None = None
) -> list[QualityFailure]:
    """Checks per series over the latest vintage of each period (SERIES_SCHEMA rows)."""
    failures: list[QualityFailure] = []
    if frame.is_empty():
        return failures
    latest = (
        frame.sort("knowledge_time")
        .group_by("dataset", "series", "period", maintain_order=True)
        .last()
        .sort("series", "period")
    )
    for (dataset, series), group in latest.group_by("dataset", "series", maintain_order=True):
        failures += check_observations(
            str(dataset),
            str(series),
            group["period"].to_list(),
            group["value"].to_list(),
            policy,
            today,
        )
    return failures


def check_bars_frame(
    frame: pl.DataFrame, dataset: str, policy: QualityPolicy = BAR_POLICY, today: date | None = None
) -> list[QualityFailure]:
    """Checks per symbol on close prices of provider bars (BAR_SCHEMA rows, delivered order)."""
    failures: list[QualityFailure] = []
    for (symbol,), group in frame.group_by("symbol", maintain_order=True):
        stamps = group["ts"].to_list()
        daily = group["timeframe"][0] == "1Day"
        # Daily bars are judged per day; intraday bars per timestamp, without a freshness
        # check (a quiet hour is not stale data).
        failures += check_observations(
            dataset,
            str(symbol),
            [ts.date() for ts in stamps] if daily else stamps,
            group["close"].to_list(),
            policy,
            today if daily else None,
        )
    return failures


def store_failures(
    con: duckdb.DuckDBPyConnection, dataset: str, failures: Sequence[QualityFailure]
) -> None:
    """Replace the stored failures of `dataset` with `failures` (latest run wins)."""
    rows = [
        (f.dataset, f.subject, f.check, f.severity.value, _day(f.day), f.detail) for f in failures
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM quality_failures WHERE dataset = ?", [dataset])
        if rows:
            con.executemany("INSERT INTO quality_failures VALUES (?, ?, ?, ?, ?, ?, now())", rows)
    except Exception:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    for f in failures:
        if f.severity is Severity.CRITICAL:
            log.warning(
                "event=data_quality_failure dataset=%s subject=%s check=%s day=%s detail=%r",
                f.dataset,
                f.subject,
                f.check,
                f.day,
                f.detail,
            )


def _day(value: object) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value  # type: ignore[return-value]


def stored_failures(con: duckdb.DuckDBPyConnection, limit: int = 200) -> list[QualityFailure]:
    """The newest stored failures, critical first."""
    rows = con.execute(
        "SELECT dataset, subject, check_name, severity, day, detail FROM quality_failures "
        "ORDER BY severity = 'CRITICAL' DESC, day DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [QualityFailure(d, s, c, Severity(v), day, t) for d, s, c, v, day, t in rows]


def _window(day: date) -> tuple[date, date]:
    """Failures dated in [previous session, day] affect decisions on `day`."""
    recent = calendar.sessions(day - timedelta(days=10), day)
    previous = [d for d in recent if d < day]
    start = previous[-1] if previous else day
    return start, day


def blocked_datasets(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, str]:
    """ "dataset:subject" -> reason, for critical failures that affect decisions on `day`."""
    if not con.execute("SELECT count(*) FROM quality_failures").fetchall()[0][0]:
        return {}
    start, end = _window(day)
    rows = con.execute(
        "SELECT dataset, subject, check_name, detail FROM quality_failures "
        "WHERE severity = 'CRITICAL' AND day BETWEEN ? AND ? ORDER BY dataset, subject",
        [start, end],
    ).fetchall()
    return {f"{d}:{s}": f"{c}: {t}" for d, s, c, t in rows}


def blocked_symbols(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, str]:
    """Symbol -> reason for every symbol whose data failed a critical check (see _window)."""
    blocked: dict[str, str] = {}
    for key, reason in blocked_datasets(con, day).items():
        dataset, subject = key.split(":", 1)
        market = subject.split(".", 1)[0]
        symbols = SUBJECT_SYMBOLS.get(subject) or SUBJECT_SYMBOLS.get(market)
        if symbols is None and dataset.startswith("bars"):
            symbols = (subject,)
        for symbol in symbols or ():
            blocked.setdefault(symbol, f"{key} {reason}")
    return blocked


def dataset_status(
    con: duckdb.DuckDBPyConnection, today: date | None = None
) -> list[DatasetStatus]:
    """Rows, span, last ingest, age of the newest observation and failure counts per dataset."""
    today = today or date.today()
    spans = con.execute(
        "SELECT dataset, count(*), min(period), max(period) FROM series GROUP BY dataset "
        "UNION ALL SELECT 'bars_' || timeframe, count(*), min(ts)::DATE, max(ts)::DATE "
        "FROM provider_bars GROUP BY timeframe ORDER BY 1"
    ).fetchall()
    ingests = {
        d: (str(at)[:19], status)
        for d, at, status in con.execute(
            "SELECT dataset, max(ingested_at), arg_max(status, ingested_at) FROM ingest_log "
            "GROUP BY dataset"
        ).fetchall()
    }
    counts: dict[tuple[str, str], int] = {
        (d, s): n
        for d, s, n in con.execute(
            "SELECT dataset, severity, count(*) FROM quality_failures GROUP BY dataset, severity"
        ).fetchall()
    }
    rows = []
    for dataset, count, first, last in spans:
        at, status = ingests.get(dataset, ("-", "-"))
        critical = counts.get((dataset, Severity.CRITICAL.value), 0)
        rows.append(
            DatasetStatus(
                dataset=dataset,
                rows=int(count),
                first=first,
                last=last,
                last_update=at,
                freshness_days=(today - last).days if last else None,
                status="CRITICAL" if critical else ("OK" if status != "FAILED" else "FAILED"),
                critical=critical,
                warnings=counts.get((dataset, Severity.WARNING.value), 0),
            )
        )
    return rows
