"""Macro and COT features from the point-in-time provider data, for strategies.

Each `AuxFeature` names one provider series in the market store (`series` table: every
vintage with its knowledge_time) and a versioned transform. Its value is the series as a
strategy deciding at 15:30 New York on each session could have seen it: the session
decision times go through `pit_join` (DuckDB ASOF join on knowledge_time <=
decision_time), and each observation period enters the feature on the first session
whose decision sees it, with the vintage known then (a later revision never rewrites an
entry already seen). So:

* COT (CFTC): Tuesday positions appear on the session of the Friday 15:30 ET release
  (or the holiday-delayed one, release.cot_release), never on the Tuesday;
* FRED/ALFRED: an observation appears from its first vintage's realtime_start (counted
  known from 00:00 ET the next day, release.fred_knowledge).

Outputs are `AuxSeries` (observed = period, known = the calendar day before the first
session that sees it, so `StrategyContext.known_before(day)` includes it from that
session on). They are cached in the feature store's `feature_cache` table by (name,
version, params, data hash), the data hash covering the provider rows of the series and
the decision sessions.

`ContextCache` gives the engine one `StrategyContext` per state of the store: the real
feature for every series the store holds, the seeded demo fallback for the others, and
`StrategyContext.source_of(name)` says which ("FRED", "CFTC" or "demo fallback").
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from qgtm.engine.data.pit import decision_times, pit_join
from qgtm.engine.data.store import MARKET_DB
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import (
    BREAKEVEN,
    COT_SYMBOLS,
    DEMO_LABEL,
    DOLLAR_INDEX,
    NOMINAL_YIELD,
    REAL_YIELD,
    AuxSeries,
    StrategyContext,
    cot_noncommercial_name,
    cot_noncommercial_zscore_name,
    cot_series_name,
    cot_zscore_name,
    demo_context,
)
from qgtm.engine.features.store import FeatureStore

COT_MARKET: dict[str, str] = {
    "GLD": "gold",
    "SLV": "silver",
    "USO": "crude",
    "UNG": "natgas",
    "CORN": "corn",
    "WEAT": "wheat",
    "SOYB": "soybeans",
    "CPER": "copper",
}
"""ETF -> the CFTC market (qgtm.engine.data.providers.cftc.MARKETS) behind its future."""


def _identity(values: np.ndarray, **_: Any) -> np.ndarray:
    return values


def _trailing_z(values: np.ndarray, window: int) -> np.ndarray:
    return tf.zscore(values, int(window)) if len(values) else values


@dataclass(frozen=True, slots=True)
class AuxFeature:
    """One provider series turned into a point-in-time strategy input.

    `transform(values, **params)` maps the first-release values (oldest first) to the
    feature's values, each output using only inputs at or before it (it is applied to
    the already point-in-time series, so it cannot look ahead across releases). Bump
    `version` whenever its output would change.
    """

    name: str
    version: int
    dataset: str
    series: str
    label: str
    transform: Callable[..., np.ndarray] = _identity
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


def _features() -> dict[str, AuxFeature]:
    fred = [
        AuxFeature(REAL_YIELD, 1, "fred", "DFII10", "FRED", description="10y TIPS real yield, %"),
        AuxFeature(BREAKEVEN, 1, "fred", "T10YIE", "FRED", description="10y breakeven, %"),
        AuxFeature(NOMINAL_YIELD, 1, "fred", "DGS10", "FRED", description="10y Treasury, %"),
        AuxFeature(DOLLAR_INDEX, 1, "fred", "DTWEXBGS", "FRED", description="broad dollar"),
    ]
    cot = []
    for symbol, market in COT_MARKET.items():
        mm, nc = f"{market}.managed_money_net", f"{market}.noncommercial_net"
        cot += [
            AuxFeature(
                cot_series_name(symbol), 1, "cot_disagg", mm, "CFTC",
                description=f"{market} managed-money net, contracts",
            ),
            AuxFeature(
                cot_zscore_name(symbol), 1, "cot_disagg", mm, "CFTC", _trailing_z,
                {"window": 156}, f"{market} managed-money net z over `window` reports",
            ),
            AuxFeature(
                cot_noncommercial_name(symbol), 1, "cot_legacy", nc,
                "CFTC", description=f"{market} non-commercial net, contracts",
            ),
            AuxFeature(
                cot_noncommercial_zscore_name(symbol), 1, "cot_legacy", nc, "CFTC", _trailing_z,
                {"window": 156}, f"{market} non-commercial net z over `window` reports",
            ),
        ]  # fmt: skip
    return {f.name: f for f in (*fred, *cot)}


AUX_FEATURES: dict[str, AuxFeature] = _features()
"""Every point-in-time strategy input the provider data can serve, by context name."""
if set(COT_MARKET) != set(COT_SYMBOLS):  # a COT strategy symbol without a market is a bug
    raise RuntimeError("COT_MARKET and auxiliary.COT_SYMBOLS disagree")


def stored_series(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """(dataset, series) pairs with at least one non-null value in the store."""
    rows = con.execute(
        "SELECT DISTINCT dataset, series FROM series WHERE value IS NOT NULL"
    ).fetchall()
    return {(str(d), str(s)) for d, s in rows}


def input_sources(con: duckdb.DuckDBPyConnection | None, names: Iterable[str]) -> dict[str, str]:
    """For each auxiliary input in `names`: its provider label when the store holds the
    series, else "demo fallback" (no store: every input is the fallback)."""
    held = stored_series(con) if con is not None else set()
    out = {}
    for name in names:
        spec = AUX_FEATURES.get(name)
        if spec is not None:
            out[name] = spec.label if (spec.dataset, spec.series) in held else DEMO_LABEL
    return out


def store_input_sources(data_dir: Path | None) -> dict[str, str]:
    """`input_sources` of every auxiliary input for the book in `data_dir`, read-only.

    No market store yet, or one a running engine holds open: every input is reported as
    the demo fallback when there is no store, as "unknown (store busy)" when it is locked.
    """
    db = None if data_dir is None else data_dir / MARKET_DB
    if db is None or not db.exists():
        return input_sources(None, AUX_FEATURES)
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return dict.fromkeys(AUX_FEATURES, "unknown (store busy)")
    try:
        return input_sources(con, AUX_FEATURES)
    except duckdb.CatalogException:  # a store from before provider data existed
        return input_sources(None, AUX_FEATURES)
    finally:
        con.close()


def summarise_inputs(sources: Mapping[str, str]) -> str:
    """One line per kind: {"DFII10": "FRED"} -> "macro: FRED"; mixed COT inputs ->
    "COT: CFTC (6), demo fallback (2)". Empty when there are no inputs."""
    kinds: dict[str, dict[str, int]] = {}
    for name, source in sources.items():
        kind = "COT" if name.startswith("COT_") else "macro"
        counts = kinds.setdefault(kind, {})
        counts[source] = counts.get(source, 0) + 1
    parts = []
    for kind, counts in sorted(kinds.items()):
        if len(counts) == 1:
            parts.append(f"{kind}: {next(iter(counts))}")
        else:
            parts.append(f"{kind}: " + ", ".join(f"{s} ({n})" for s, n in sorted(counts.items())))
    return "; ".join(parts)


def _series_digest(con: duckdb.DuckDBPyConnection, dataset: str, series: str) -> str | None:
    """A digest of every stored row of one series; None when it has no value."""
    row = con.execute(
        "SELECT count(value), count(*), sum(hash(period, value, knowledge_time)) "
        "FROM series WHERE dataset = ? AND series = ?",
        [dataset, series],
    ).fetchall()[0]
    if not row[0]:
        return None
    return f"{row[1]}:{row[2]}"


def _sessions_digest(sessions: Sequence[date]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update("|".join(d.isoformat() for d in sessions).encode())
    return digest.hexdigest()


def first_release_series(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    series: str,
    sessions: Sequence[date],
    decisions: pl.DataFrame | None = None,
) -> AuxSeries:
    """The series as decisions on `sessions` saw it, one entry per period.

    `pit_join` gives the newest period each 15:30 decision saw. Where that head moves
    on, every period after the previous head up to the new one enters at that decision
    (so the history already public at the first session, or two releases between
    sessions over a holiday, are not lost), each in its vintage known at that decision
    (as `pit.as_of` would show it). Entry i: the period, the day before the session that
    first saw it (its knowledge date for `StrategyContext.known_before`), and its value
    then; a later revision never rewrites it. Null values (FRED's "." marker) are
    dropped. `decisions` may pass `decision_times(sessions)` computed once.
    """
    if not sessions:
        empty = np.array([], dtype="datetime64[D]")
        return AuxSeries(series, empty, empty, np.array([], dtype=float))
    if decisions is None:
        decisions = decision_times(sessions)
    joined = pit_join(con, decisions, dataset, series).filter(pl.col("period").is_not_null())
    moves = joined.with_columns(pl.col("period").shift(1).alias("previous")).filter(
        pl.col("previous").is_null() | (pl.col("period") != pl.col("previous"))
    )
    # each stored row belongs to the move whose (previous, period] holds its period: the
    # move with the smallest head period >= it (ASOF join; head periods only increase)
    con.register("pit_moves", moves.select("day", "decision_time", "period"))
    try:
        seen = con.sql(
            """
            WITH rows AS (
                SELECT period, value, knowledge_time FROM series
                WHERE dataset = $dataset AND series = $series
            )
            SELECT m.day, r.period, arg_max(r.value, r.knowledge_time) AS value
            FROM rows r ASOF JOIN pit_moves m ON r.period <= m.period
            WHERE r.knowledge_time <= m.decision_time
            GROUP BY m.day, r.period
            ORDER BY r.period
            """,
            params={"dataset": dataset, "series": series},
        )
        heads = pl.from_arrow(seen.to_arrow_table()).filter(pl.col("value").is_not_null())
    finally:
        con.unregister("pit_moves")
    return AuxSeries(
        series,
        heads["period"].to_numpy().astype("datetime64[D]"),
        (heads["day"].to_numpy().astype("datetime64[D]") - np.timedelta64(1, "D")),
        heads["value"].to_numpy().astype(float),
    )


def compute_aux(
    store: FeatureStore,
    name: str,
    sessions: Sequence[date],
    decisions: Callable[[], pl.DataFrame] | None = None,
    **params: Any,
) -> tuple[AuxSeries, bool] | None:
    """The feature `name` over `sessions` and whether it came from the cache; None when
    the store holds no value of its provider series. `decisions`, when given, returns
    `decision_times(sessions)` (computed once for many features, only on a cache miss)."""
    spec = AUX_FEATURES[name]
    unknown = set(params) - set(spec.defaults)
    if unknown:
        raise ValueError(f"feature {name}: unknown parameter(s) {', '.join(sorted(unknown))}")
    merged = {**spec.defaults, **params}
    con = store.connection
    digest = _series_digest(con, spec.dataset, spec.series)
    if digest is None:
        return None
    key_params = json.dumps({"dataset": spec.dataset, "series": spec.series, **merged})
    data_hash = f"{digest}|{_sessions_digest(sessions)}"
    payload = store.cached(f"aux:{name}", spec.version, key_params, data_hash)
    if payload is not None:
        return _decode(name, payload), True
    frame = decisions() if decisions is not None else None
    base = first_release_series(con, spec.dataset, spec.series, sessions, frame)
    values = np.asarray(spec.transform(base.values, **merged), dtype=float)
    aux = AuxSeries(name, base.observed, base.known, values)
    store.put(f"aux:{name}", spec.version, key_params, data_hash, _encode(aux))
    return aux, False


def _encode(aux: AuxSeries) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, observed=aux.observed, known=aux.known, values=aux.values)
    return buffer.getvalue()


def _decode(name: str, payload: bytes) -> AuxSeries:
    with np.load(io.BytesIO(payload)) as data:
        return AuxSeries(name, data["observed"], data["known"], data["values"])


def store_context(store: FeatureStore, sessions: Sequence[date]) -> StrategyContext:
    """Every auxiliary input the store can serve as a real feature; the demo fallback
    (and its label) for the rest."""
    series: dict[str, AuxSeries] = {}
    sources: dict[str, str] = {}
    held = stored_series(store.connection)
    memo: list[pl.DataFrame] = []

    def decisions() -> pl.DataFrame:
        if not memo:
            memo.append(decision_times(sessions))
        return memo[0]

    for name, spec in AUX_FEATURES.items():
        if (spec.dataset, spec.series) not in held:
            continue
        result = compute_aux(store, name, sessions, decisions)
        if result is not None:
            series[name], sources[name] = result[0], spec.label
    if not series:
        return demo_context()
    return StrategyContext(series, source="store", demo_fallback=True, sources=sources)


class ContextCache:
    """The engine's StrategyContext, rebuilt only when the provider data or sessions change.

    The fingerprint (row count and newest ingest time of the `series` table, plus the
    sessions) costs one query per decision; with no provider rows the context is the
    demo fallback, so demo runs behave exactly as before.
    """

    def __init__(self, store: FeatureStore, sessions: Callable[[], Sequence[date]]) -> None:
        self._store = store
        self._sessions = sessions
        self._key: tuple | None = None
        self._context: StrategyContext = demo_context()

    def get(self) -> StrategyContext:
        """The context for the current state of the store."""
        row = self._store.connection.execute(
            "SELECT count(*), max(ingested_at) FROM series"
        ).fetchall()[0]
        count = int(row[0])
        if count == 0:
            return demo_context()
        sessions = self._sessions()
        key = (count, row[1], len(sessions), sessions[-1] if sessions else None)
        if key != self._key:
            self._context = store_context(self._store, sessions)
            self._key = key
        return self._context
