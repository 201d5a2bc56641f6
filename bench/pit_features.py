"""Time the point-in-time macro/COT features the engine builds from provider data.

A store with 18 years of synthetic provider rows in the real shapes (four FRED daily
series with two vintages each; eight CFTC markets, disaggregated and legacy, weekly with
the Friday release) and the XNYS sessions 2008-2025. Reports, in one run:

* baseline: the bare `pit_join` of every feature's series over the sessions;
* cold: `store_context` with an empty feature cache (28 features);
* warm: `store_context` again (every feature a cache hit);
and the ratios cold / baseline and warm / baseline.

    .venv/bin/python bench/pit_features.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from qgtm.core import calendar
from qgtm.engine.data.pit import decision_times, pit_join
from qgtm.engine.data.providers.release import cot_release, fred_knowledge
from qgtm.engine.data.store import MarketStore
from qgtm.engine.features.pit_features import AUX_FEATURES, COT_MARKET, store_context
from qgtm.engine.features.store import FeatureStore

FRED = ("DFII10", "T10YIE", "DGS10", "DTWEXBGS")


def _rows(start: date, end: date) -> pl.DataFrame:
    rows = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            for series in FRED:
                level = 1.0 + day.toordinal() % 17
                rows.append(("fred", series, day, level, fred_knowledge(day + timedelta(days=1))))
                revised = fred_knowledge(day + timedelta(days=30))
                rows.append(("fred", series, day, level + 0.1, revised))
        if day.weekday() == 1:
            for market in COT_MARKET.values():
                known = cot_release(day)
                net = float(day.toordinal() % 101)
                rows.append(("cot_disagg", f"{market}.managed_money_net", day, net, known))
                rows.append(("cot_legacy", f"{market}.noncommercial_net", day, net + 1, known))
        day += timedelta(days=1)
    return pl.DataFrame(
        rows, schema=["dataset", "series", "period", "value", "knowledge_time"], orient="row"
    ).with_columns(pl.col("knowledge_time").cast(pl.Datetime("us", "UTC")))


def main() -> int:
    """Build the store, then time baseline, cold and warm builds."""
    sessions = tuple(calendar.sessions(date(2008, 1, 2), date(2025, 12, 31)))
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp))
        frame = _rows(date(2007, 1, 1), date(2025, 12, 31))
        store.upsert_series(frame)
        decisions = decision_times(sessions)  # also warms the decision-time memo
        pairs = sorted({(f.dataset, f.series) for f in AUX_FEATURES.values()})
        started = time.perf_counter()
        for dataset, series in pairs:
            pit_join(store.connection, decisions, dataset, series)
        baseline = time.perf_counter() - started
        features = FeatureStore(store.connection)
        started = time.perf_counter()
        context = store_context(features, sessions)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        store_context(features, sessions)
        warm = time.perf_counter() - started
        store.close()
    print(f"{frame.height} provider rows, {len(sessions)} sessions, {len(context.series)} features")
    print(f"baseline pit_join of {len(pairs)} series  {baseline:6.2f} s")
    print(f"cold build (empty cache)          {cold:6.2f} s  = {cold / baseline:5.1f} x baseline")
    print(f"warm build (cache hits)           {warm:6.2f} s  = {warm / baseline:5.1f} x baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
