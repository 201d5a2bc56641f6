"""Macro and COT features from point-in-time provider data, fetched from loopback fakes.

The FRED and CFTC clients fetch real-format responses (ALFRED JSON with realtime
periods; the CFTC disaggregated yearly zip) from loopback fakes, the ingest writes them
to the market store, and the strategies read them through the feature store and
pit_join. Decisions are at 15:30 New York on XNYS sessions.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qgtm.cli import main
from qgtm.core import calendar
from qgtm.engine.data.providers.base import HttpPolicy
from qgtm.engine.data.providers.cftc import CftcProvider
from qgtm.engine.data.providers.fred import FredProvider
from qgtm.engine.data.providers.ingest import ingest
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.features.auxiliary import (
    cot_noncommercial_name,
    cot_series_name,
    cot_zscore_name,
    demo_context,
)
from qgtm.engine.features.pit_features import (
    ContextCache,
    compute_aux,
    input_sources,
    store_context,
    summarise_inputs,
)
from qgtm.engine.features.store import FeatureStore
from qgtm.engine.strategies.cot import CotTrend
from qgtm.engine.strategies.macro import GoldRealRates
from tests.fakes.cftc import DISAGG_TEXT, cftc_fake
from tests.fakes.fred import fred_fake

FAST = HttpPolicy(min_interval_s=0.0, backoff_s=0.0, timeout_s=5)
SESSIONS = tuple(calendar.sessions(date(2021, 1, 4), date(2021, 12, 31)))
GOLD_NET_START = 50_000


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QGTM_FRED_API_KEY", "test-fred-key")


def _world(symbols: tuple[str, ...] = ("GLD", "IAU")) -> PricePanel:
    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (len(SESSIONS), len(symbols))), axis=0))
    return PricePanel(SESSIONS, symbols, closes, closes, closes, closes, np.ones_like(closes))


def _signal_of(strategy, day: date, context) -> tuple[str, float] | None:
    """(side, weight) of GLD at decision session `day`, None when it has no view."""
    history = _world().history_before(SESSIONS.index(day))
    for signal in strategy.generate(history, day, context=context):
        if signal.symbol == "GLD":
            return signal.side.value, round(signal.weight, 12)
    return None


# ----- CFTC: a disaggregated yearly file in the published column layout ----------------


def _tuesdays() -> list[date]:
    return [date(2021, 1, 5) + timedelta(weeks=k) for k in range(30)]


def gold_nets(perturb_after: date | None = None) -> dict[date, int]:
    """Managed-money net per Tuesday: zig-zags, so the weekly change flips sign each week;
    reports released after `perturb_after` 15:30 get a large unrelated value."""
    nets = {}
    for k, tuesday in enumerate(_tuesdays()):
        net = GOLD_NET_START + (4_000 if k % 2 else 0) + 100 * k
        friday = tuesday + timedelta(days=3)
        if perturb_after is not None and friday > perturb_after:
            net = 10**6 + 7 * k
        nets[tuesday] = net
    return nets


def disagg_text(nets: dict[date, int]) -> str:
    """The fixture's header and its gold row as a template, one row per Tuesday."""
    rows = list(csv.reader(io.StringIO(DISAGG_TEXT)))
    header, gold = rows[0], rows[1]
    col = {name: i for i, name in enumerate(header)}
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(header)
    for tuesday, net in nets.items():
        row = list(gold)
        row[col["As_of_Date_In_Form_YYMMDD"]] = tuesday.strftime("%y%m%d")
        row[col["Report_Date_as_YYYY-MM-DD"]] = tuesday.isoformat()
        row[col["M_Money_Positions_Long_All"]] = str(200_000 + net)
        row[col["M_Money_Positions_Short_All"]] = "200000"
        writer.writerow(row)
    return out.getvalue()


def _cot_store(tmp: Path, monkeypatch: pytest.MonkeyPatch, nets: dict[date, int]) -> MarketStore:
    server = cftc_fake(year=2021, disagg=disagg_text(nets))
    monkeypatch.setenv("QGTM_CFTC_BASE_URL", server.url)
    tmp.mkdir(parents=True, exist_ok=True)
    store = MarketStore(tmp)
    try:
        ingest(store, CftcProvider(FAST), date(2021, 1, 1), date(2021, 12, 31), date(2022, 1, 3))
    finally:
        server.close()
    return store


def test_cot_reaches_the_strategy_on_the_friday_release_not_the_tuesday(tmp_path, monkeypatch):
    store = _cot_store(tmp_path, monkeypatch, gold_nets())
    context = store_context(FeatureStore(store.connection), SESSIONS)
    gld = cot_series_name("GLD")
    assert context.source_of(gld) == "CFTC"
    assert context.source_of(cot_series_name("SLV")) == "demo fallback"  # not in the file
    nets = gold_nets()
    # Tuesday 2021-06-08 is released Friday 06-11 15:30 ET: the 15:30 decision sees it
    assert context.known_before(gld, date(2021, 6, 8))[-1] == nets[date(2021, 6, 1)]
    assert context.known_before(gld, date(2021, 6, 10))[-1] == nets[date(2021, 6, 1)]
    assert context.known_before(gld, date(2021, 6, 11))[-1] == nets[date(2021, 6, 8)]
    # the legacy report (non-commercial net) from the same fake: Tuesday 12-21 is out on
    # Monday 12-27 (Christmas observed Friday 12-24); 12-28 only on Monday 2022-01-03
    legacy = cot_noncommercial_name("GLD")
    assert context.source_of(legacy) == "CFTC"
    assert len(context.known_before(legacy, date(2021, 12, 23))) == 0
    assert context.known_before(legacy, date(2021, 12, 27)).tolist() == [215281 - 61515]
    assert context.known_before(legacy, date(2021, 12, 31)).tolist() == [215281 - 61515]
    # Independence Day 2021 is observed Monday 07-05: the Friday 07-02 release is regular
    assert context.known_before(gld, date(2021, 7, 2))[-1] == nets[date(2021, 6, 29)]
    # cot_trend: +1 week change flips each week; hand-worked on the release Friday
    strategy = CotTrend(weeks=1, vol_window=20)
    k = _tuesdays().index(date(2021, 6, 8))
    expected = "LONG" if k % 2 else "SHORT"  # odd k: up 4,100 from k-1; even: down 3,900
    assert _signal_of(strategy, date(2021, 6, 11), context)[0] == expected
    assert _signal_of(strategy, date(2021, 6, 10), context)[0] != expected
    store.close()


def test_cot_signals_ignore_reports_released_after_the_decision(tmp_path, monkeypatch):
    decision = date(2021, 6, 11)
    real = _cot_store(tmp_path / "real", monkeypatch, gold_nets())
    later = _cot_store(tmp_path / "later", monkeypatch, gold_nets(perturb_after=decision))
    earlier = _cot_store(
        tmp_path / "earlier", monkeypatch, gold_nets(perturb_after=decision - timedelta(days=1))
    )
    contexts = [store_context(FeatureStore(s.connection), SESSIONS) for s in (real, later, earlier)]
    strategy = CotTrend(weeks=1, vol_window=20)
    days = [d for d in SESSIONS if date(2021, 5, 3) <= d <= decision]
    real_signals = [_signal_of(strategy, d, contexts[0]) for d in days]
    assert all(real_signals)
    assert [_signal_of(strategy, d, contexts[1]) for d in days] == real_signals
    # a report released at the decision itself is seen: perturbing it changes the signal
    assert _signal_of(strategy, decision, contexts[2]) != real_signals[-1]
    for store in (real, later, earlier):
        store.close()


@pytest.mark.parametrize(
    ("minutes", "first_day"), [(-1, date(2021, 6, 11)), (1, date(2021, 6, 14))]
)
def test_a_release_moved_across_1530_moves_the_signal_to_the_next_session(
    tmp_path, monkeypatch, minutes, first_day
):
    store = _cot_store(tmp_path, monkeypatch, gold_nets())
    features = FeatureStore(store.connection)
    strategy = CotTrend(weeks=1, vol_window=20)

    def sides(context) -> dict[date, str | None]:
        out = {}
        for day in SESSIONS:
            signal = _signal_of(strategy, day, context)
            out[day] = None if signal is None else signal[0]
        return out

    before = sides(store_context(features, SESSIONS))
    # the 06-08 report was published at 15:30 ET; republish it 1 minute earlier / later
    store.connection.execute(
        "UPDATE series SET knowledge_time = knowledge_time + to_minutes(CAST(? AS BIGINT)) "
        "WHERE dataset = 'cot_disagg' AND period = DATE '2021-06-08'",
        [minutes],
    )
    moved = store_context(features, SESSIONS)
    gld = cot_series_name("GLD")
    assert moved.known_before(gld, first_day)[-1] == gold_nets()[date(2021, 6, 8)]
    day_before = moved.known_before(gld, first_day - timedelta(days=1))[-1]
    assert day_before == gold_nets()[date(2021, 6, 1)]
    after = sides(moved)
    friday, monday = date(2021, 6, 11), date(2021, 6, 14)
    if minutes < 0:
        assert after == before  # 15:29 is still seen by the 15:30 decision of the Friday
    else:
        assert before[friday] != before[date(2021, 6, 10)]  # the report flips the side
        assert after[friday] == before[date(2021, 6, 10)]  # Friday no longer sees it
        assert after[monday] == before[monday]  # Monday sees it either way
        assert {d: s for d, s in after.items() if d != friday} == {
            d: s for d, s in before.items() if d != friday
        }
    store.close()


def test_cot_zscore_feature_is_the_trailing_z_of_the_first_release_nets(tmp_path, monkeypatch):
    store = _cot_store(tmp_path, monkeypatch, gold_nets())
    result = compute_aux(FeatureStore(store.connection), cot_zscore_name("GLD"), SESSIONS, window=4)
    assert result is not None
    z = result[0].values
    nets = np.array(list(gold_nets().values()), dtype=float)
    last4 = nets[-4:]
    assert z[-1] == pytest.approx((last4[-1] - last4.mean()) / last4.std(ddof=1))
    assert np.isnan(z[:3]).all()
    store.close()


# ----- FRED / ALFRED: real yield vintages ---------------------------------------------


def _business_days(start: date, n: int) -> list[date]:
    days, day = [], start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def real_yield_vintages(
    perturb_from: date | None = None, n: int = 40, level: float = -0.60
) -> list[tuple[str, str, str, str]]:
    """DFII10 observations (n business days from 2021-03-01), each first published the
    next business day (realtime_start), plus a revision of 2021-03-01 published
    2021-04-05. Vintages published on or after `perturb_from` get unrelated values."""
    observed = _business_days(date(2021, 3, 1), n)
    rows = []
    for k, day in enumerate(observed):
        first = observed[k + 1] if k + 1 < len(observed) else day + timedelta(days=3)
        value = level + 0.01 * k + (0.05 if k % 3 == 0 else 0.0)
        if perturb_from is not None and first >= perturb_from:
            value = 9.0 - k
        end = "9999-12-31" if k else "2021-04-04"
        rows.append((day.isoformat(), f"{value:.2f}", first.isoformat(), end))
    revised = 5.0 if perturb_from is not None and date(2021, 4, 5) >= perturb_from else -0.10
    rows.append(("2021-03-01", f"{revised:.2f}", "2021-04-05", "9999-12-31"))
    return sorted(rows)


def _fred_store(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    vintages: list | dict,
    store: MarketStore | None = None,
) -> MarketStore:
    data = vintages if isinstance(vintages, dict) else {"DFII10": vintages}
    server = fred_fake(data, page_size=100)
    monkeypatch.setenv("QGTM_FRED_BASE_URL", server.url)
    tmp.mkdir(parents=True, exist_ok=True)
    store = store or MarketStore(tmp)
    try:
        ingest(store, FredProvider(tuple(data), FAST), today=date(2021, 9, 1))
    finally:
        server.close()
    return store


def test_fred_real_yield_reaches_gold_real_rates_from_its_realtime_start(
    tmp_path, monkeypatch, keys
):
    store = _fred_store(tmp_path, monkeypatch, real_yield_vintages())
    context = store_context(FeatureStore(store.connection), SESSIONS)
    assert context.source_of("DFII10") == "FRED"
    by_start = sorted(real_yield_vintages(), key=lambda r: r[2], reverse=True)
    first = {r[0]: float(r[1]) for r in by_start}  # each date's earliest vintage wins
    # Friday 03-05 is published Monday 03-08 (realtime_start) -> known 03-09 00:00 ET
    assert context.known_before("DFII10", date(2021, 3, 8))[-1] == first["2021-03-04"]
    assert context.known_before("DFII10", date(2021, 3, 9))[-1] == first["2021-03-05"]
    # the 2021-04-05 revision of 03-01 does not rewrite the first release
    assert context.known_before("DFII10", date(2021, 4, 20))[0] == first["2021-03-01"]
    strategy = GoldRealRates(window=5, threshold=0.0, vol_window=20)
    day = date(2021, 4, 15)
    seen = context.known_before("DFII10", day)
    change = seen[-1] - seen[-6]
    signal = next(
        s
        for s in strategy.generate(
            _world().history_before(SESSIONS.index(day)), day, context=context
        )
        if s.symbol == "GLD"
    )
    assert signal.side.value == ("SHORT" if change > 0 else "LONG")  # rising real yields: short
    assert f"{change:+.3f}" in signal.rationale
    store.close()


def test_fred_signals_ignore_vintages_published_after_the_decision(tmp_path, monkeypatch, keys):
    decision = date(2021, 4, 1)
    real = _fred_store(tmp_path / "real", monkeypatch, real_yield_vintages())
    # vintages with realtime_start >= decision are known from 00:00 ET the day after
    later = _fred_store(tmp_path / "later", monkeypatch, real_yield_vintages(decision))
    earlier = _fred_store(
        tmp_path / "earlier", monkeypatch, real_yield_vintages(decision - timedelta(days=1))
    )
    contexts = [store_context(FeatureStore(s.connection), SESSIONS) for s in (real, later, earlier)]
    strategy = GoldRealRates(window=5, threshold=0.0, vol_window=20)
    days = [d for d in SESSIONS if date(2021, 3, 15) <= d <= decision]
    real_signals = [_signal_of(strategy, d, contexts[0]) for d in days]
    assert all(real_signals)
    assert [_signal_of(strategy, d, contexts[1]) for d in days] == real_signals
    assert (
        contexts[2].known_before("DFII10", decision)[-1]
        != contexts[0].known_before("DFII10", decision)[-1]
    )
    for store in (real, later, earlier):
        store.close()


# ----- fallback, labels and the cache --------------------------------------------------


def test_without_provider_data_every_input_is_the_demo_fallback(tmp_path):
    store = MarketStore(tmp_path)
    features = FeatureStore(store.connection)
    assert store_context(features, SESSIONS) is demo_context()
    assert ContextCache(features, lambda: SESSIONS).get() is demo_context()
    sources = input_sources(store.connection, GoldRealRates.features)
    assert sources == {"DFII10": "demo fallback"}
    assert summarise_inputs(sources) == "macro: demo fallback"
    assert demo_context().source_of("DFII10") == "demo fallback"
    store.close()


def test_the_feature_is_cached_by_data_hash_and_the_engine_cache_follows_ingests(
    tmp_path, monkeypatch, keys
):
    store = _fred_store(tmp_path, monkeypatch, real_yield_vintages())
    features = FeatureStore(store.connection)
    first = compute_aux(features, "DFII10", SESSIONS)
    second = compute_aux(features, "DFII10", SESSIONS)
    assert (first[1], second[1]) == (False, True)
    np.testing.assert_array_equal(first[0].values, second[0].values)
    cache = ContextCache(features, lambda: SESSIONS)
    assert cache.get().source_of("DFII10") == "FRED"
    held = cache.get()
    assert cache.get() is held  # unchanged store: the same context
    newer = (
        store.series_frame("fred")
        .head(1)
        .with_columns(
            pl.lit(date(2021, 6, 1)).alias("period"),
            pl.lit(1.23).alias("value"),
            pl.lit(datetime(2021, 6, 2, 4, 0, tzinfo=UTC)).alias("knowledge_time"),
        )
    )
    store.upsert_series(newer)  # a new observation, public 2021-06-02 00:00 ET
    assert not compute_aux(features, "DFII10", SESSIONS)[1]  # new data hash: recomputed
    assert cache.get() is not held  # a new ingest rebuilds the engine's context
    assert cache.get().known_before("DFII10", date(2021, 6, 2))[-1] == 1.23
    assert held.known_before("DFII10", date(2021, 6, 2))[-1] != 1.23
    names = [k[0] for k in features.cached_keys()]
    assert names.count("aux:DFII10") == 1  # the stale entry was replaced
    store.close()


def test_unknown_parameter_of_a_provider_feature_is_refused(tmp_path):
    store = MarketStore(tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        compute_aux(FeatureStore(store.connection), "DFII10", SESSIONS, window=3)
    store.close()


def test_qgtm_strategies_says_where_macro_and_cot_inputs_come_from(
    tmp_path, monkeypatch, keys, capsys
):
    _fred_store(tmp_path, monkeypatch, real_yield_vintages()).close()
    assert main(["strategies", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("gold_real_rates") :]
    assert "inputs: macro: FRED" in block.splitlines()[3]
    cot = out[out.index("cot_trend") :]
    assert "inputs: COT: demo fallback" in cot.splitlines()[3]


def test_the_engine_serves_store_features_and_labels_them_in_strategies_list(
    tmp_path, monkeypatch, keys, short_config
):
    from qgtm.engine.live.engine import TradingEngine

    engine = TradingEngine(short_config, tmp_path)
    try:
        rows = {r.name: r for r in engine.call("strategies.list")}
        assert rows["gold_real_rates"].data == "macro: demo fallback"
        assert engine.strategy_inputs.get() is demo_context()
        server = fred_fake({"DFII10": real_yield_vintages()}, page_size=100)
        monkeypatch.setenv("QGTM_FRED_BASE_URL", server.url)
        try:
            ingest(engine.market, FredProvider(("DFII10",), FAST), today=date(2021, 5, 1))
        finally:
            server.close()
        rows = {r.name: r for r in engine.call("strategies.list")}
        assert rows["gold_real_rates"].inputs == {"DFII10": "FRED"}
        assert rows["gold_real_rates"].data == "macro: FRED"
        assert rows["cot_trend"].data == "COT: demo fallback"
        assert engine.strategy_inputs.get().source_of("DFII10") == "FRED"
        # the learning loop retrains on the same inputs the engine trades on
        assert engine.learn._inputs().source_of("DFII10") == "FRED"
        assert engine.step()  # a decision runs with the store-backed context
    finally:
        engine.close()


AUX_STRATEGIES = {
    "gold_real_rates": {"window": 5, "threshold": 0.0, "vol_window": 20},
    "gold_dollar": {"window": 5, "threshold": 0.0, "vol_window": 20},
    "commodity_dollar": {"window": 5, "threshold": 0.0, "vol_window": 20},
    "cot_contrarian": {"window": 26, "entry": 0.5, "vol_window": 20},
    "cot_trend": {"weeks": 1, "vol_window": 20},
}


def test_every_macro_and_cot_strategy_is_listed_here():
    from qgtm.engine.features.pit_features import AUX_FEATURES
    from qgtm.engine.strategies.registry import STRATEGIES

    uses_aux = {n for n, cls in STRATEGIES.items() if set(cls.features) & set(AUX_FEATURES)}
    assert uses_aux == set(AUX_STRATEGIES)


def _full_store(tmp: Path, monkeypatch: pytest.MonkeyPatch, after: date | None) -> MarketStore:
    """FRED DFII10 + DTWEXBGS (120 days from 2021-03-01) and CFTC gold, from the fakes;
    everything published after `after` 15:30 ET replaced by unrelated values."""
    store = _cot_store(tmp, monkeypatch, gold_nets(perturb_after=after))
    # a FRED vintage with realtime_start d is known at 00:00 ET on d+1: after `after` 15:30
    # means realtime_start >= after
    vintages = {
        "DFII10": real_yield_vintages(after, n=120),
        "DTWEXBGS": real_yield_vintages(after, n=120, level=110.0),
    }
    return _fred_store(tmp, monkeypatch, vintages, store)


@pytest.mark.parametrize("name", sorted(AUX_STRATEGIES))
def test_store_fed_signals_up_to_t_ignore_everything_published_after_t(
    tmp_path, monkeypatch, keys, name
):
    from qgtm.engine.strategies.registry import create

    t = date(2021, 7, 9)
    real = _full_store(tmp_path / "real", monkeypatch, None)
    noisy = _full_store(tmp_path / "noisy", monkeypatch, t)
    world = _world(("GLD", "IAU", "DBC", "GSG"))
    days = [d for d in SESSIONS if date(2021, 6, 10) <= d <= t]
    results = []
    for store in (real, noisy):
        context = store_context(FeatureStore(store.connection), SESSIONS)
        strategy = create(name, **AUX_STRATEGIES[name])
        strategy.generate(
            world.history_before(SESSIONS.index(date(2021, 8, 20))),
            date(2021, 8, 20),
            context=context,
        )
        results.append(
            {
                d: strategy.generate(world.history_before(SESSIONS.index(d)), d, context=context)
                for d in days
            }
        )
        assert set(context.sources.values()) == {"FRED", "CFTC"}
        store.close()
    assert results[0][t], f"{name} has no signal at t: the check would be vacuous"
    assert results[0] == results[1]


def test_history_public_before_the_first_session_enters_as_it_stood_then(
    tmp_path, monkeypatch, keys
):
    store = _fred_store(tmp_path, monkeypatch, real_yield_vintages())
    later = tuple(d for d in SESSIONS if d >= date(2021, 4, 1))
    aux = compute_aux(FeatureStore(store.connection), "DFII10", later)[0]
    first = {r[0]: float(r[1]) for r in sorted(real_yield_vintages(), key=lambda r: r[2])[::-1]}
    # 2021-04-01 15:30 sees observations up to 03-30 (published 03-31, known 04-01 00:00)
    backfilled = aux.observed <= np.datetime64("2021-03-30")
    assert str(aux.observed[0]) == "2021-03-01" and backfilled.sum() == 22
    assert (aux.known[backfilled] == np.datetime64("2021-03-31")).all()
    assert aux.values[0] == first["2021-03-01"]  # the 04-05 revision was not public yet
    # 03-31 is public 04-02 00:00 and 04-01 on 04-03 00:00; Good Friday 04-02 closes
    # XNYS, so the 04-05 decision is the first to see both: neither is skipped
    n = int(backfilled.sum())
    assert [str(d) for d in aux.observed[n : n + 2]] == ["2021-03-31", "2021-04-01"]
    assert [str(d) for d in aux.known[n : n + 2]] == ["2021-04-04", "2021-04-04"]
    assert len(set(aux.observed.tolist())) == len(aux.observed)  # one entry per period
    store.close()


def test_a_store_another_connection_holds_is_reported_busy_not_an_error(tmp_path):
    from qgtm.engine.features.pit_features import store_input_sources

    assert store_input_sources(tmp_path)["DFII10"] == "demo fallback"  # no store yet
    store = MarketStore(tmp_path)  # held read-write, as a running engine holds it
    try:
        assert store_input_sources(tmp_path)["DFII10"] == "unknown (store busy)"
    finally:
        store.close()
    assert store_input_sources(tmp_path)["DFII10"] == "demo fallback"
