"""Point-in-time joins: what a decision at time T could have known, and nothing more.

`pit_join` is a DuckDB ASOF join on knowledge_time <= decision_time. For each decision
it returns the newest observation period known by then, in its latest vintage known by
then. A revision of an older period published later does not replace the head of the
series: it only changes that period's value in `as_of` views.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import cache

import duckdb
import polars as pl

from qgtm.core import calendar

_decision_time = cache(calendar.decision_time)  # a session's decision time never changes


def decision_times(days: Iterable[date]) -> pl.DataFrame:
    """One row per session: its 15:30 New York decision time (calendar.decision_time), UTC."""
    days = list(days)
    return pl.DataFrame(
        {"day": days, "decision_time": [_decision_time(d) for d in days]},
        schema={"day": pl.Date, "decision_time": pl.Datetime("us", "UTC")},
    )


def pit_join(
    con: duckdb.DuckDBPyConnection, decisions: pl.DataFrame, dataset: str, series: str
) -> pl.DataFrame:
    """`decisions` (a `decision_time` column, UTC) with the series' period, value, knowledge_time.

    ASOF join: for each decision the head row with the greatest knowledge_time <=
    decision_time, where the head is the latest vintage of the newest period known at
    that knowledge_time. Decisions before any publication get nulls.
    """
    con.register("pit_decisions", decisions)
    try:
        result = con.sql(
            """
            WITH rows AS (
                SELECT period, value, knowledge_time,
                       max(period) OVER (
                           ORDER BY knowledge_time
                           RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                       ) AS frontier
                FROM series WHERE dataset = $dataset AND series = $series
            ),
            heads AS (SELECT period, value, knowledge_time FROM rows WHERE period = frontier)
            SELECT d.*, h.period, h.value, h.knowledge_time
            FROM pit_decisions d ASOF LEFT JOIN heads h
              ON d.decision_time >= h.knowledge_time
            ORDER BY d.decision_time
            """,
            params={"dataset": dataset, "series": series},
        )
        return pl.from_arrow(result.to_arrow_table())
    finally:
        con.unregister("pit_decisions")


def as_of(con: duckdb.DuckDBPyConnection, dataset: str, series: str, at: datetime) -> pl.DataFrame:
    """The whole series as it was published at `at`: each period's latest vintage by then."""
    result = con.sql(
        """
        SELECT period, arg_max(value, knowledge_time) AS value,
               max(knowledge_time) AS knowledge_time
        FROM series
        WHERE dataset = $dataset AND series = $series AND knowledge_time <= $at
        GROUP BY period ORDER BY period
        """,
        params={"dataset": dataset, "series": series, "at": at},
    )
    return pl.from_arrow(result.to_arrow_table())
