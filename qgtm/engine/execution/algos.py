"""Algo routing: market, VWAP or TWAP by order size against average daily volume.

Rule (thresholds in config [execution]): quantity / ADV above `twap_adv_fraction`
(5%) -> TWAP with a participation cap; above `vwap_adv_fraction` (1%) -> VWAP along the
intraday volume curve; otherwise one market order. A schedule splits a parent order
into child slices per intraday bucket; whatever the caps leave unfilled by the end of
the window is the parent's remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from qgtm.core import calendar

BUCKET = timedelta(minutes=30)

# Share of a US ETF's daily volume traded in each 30-minute bucket, 09:30-16:00 (13
# buckets). A U shape (heavy open and close, quiet midday) as documented for US equities
# (e.g. Admati & Pfleiderer 1988; Bialkowski, Darolles & Le Fol 2008). Normalised to 1.
_RAW_CURVE = (
    0.115,
    0.085,
    0.072,
    0.064,
    0.058,
    0.054,
    0.052,
    0.054,
    0.058,
    0.066,
    0.078,
    0.094,
    0.150,
)
INTRADAY_VOLUME_CURVE: tuple[float, ...] = tuple(v / sum(_RAW_CURVE) for v in _RAW_CURVE)


class Algo(StrEnum):
    """How a parent order is worked."""

    MARKET = "MARKET"
    VWAP = "VWAP"
    TWAP = "TWAP"


def select_algo(
    quantity: int, adv: float, vwap_adv_fraction: float = 0.01, twap_adv_fraction: float = 0.05
) -> Algo:
    """MARKET, VWAP or TWAP for `quantity` shares against `adv` (average daily volume).

    Unknown or zero ADV counts as a large order (TWAP): be careful when blind.
    """
    if adv <= 0:
        return Algo.TWAP
    fraction = quantity / adv
    if fraction > twap_adv_fraction:
        return Algo.TWAP
    if fraction > vwap_adv_fraction:
        return Algo.VWAP
    return Algo.MARKET


def schedule(
    algo: Algo,
    quantity: int,
    curve: Sequence[float] = INTRADAY_VOLUME_CURVE,
) -> list[int]:
    """Target child quantities per bucket; they sum to `quantity`.

    MARKET: everything in the first bucket. VWAP: proportional to `curve`. TWAP: equal
    slices. Rounding puts leftover shares in the largest-weight buckets first.
    """
    n = len(curve)
    if algo is Algo.MARKET:
        return [quantity] + [0] * (n - 1)
    exact = schedule_weights(algo, curve) * quantity
    slices = np.floor(exact).astype(int)
    leftover = quantity - int(slices.sum())
    for i in np.argsort(-(exact - slices), kind="stable")[:leftover]:
        slices[i] += 1
    return [int(s) for s in slices]


def schedule_weights(algo: Algo, curve: Sequence[float] = INTRADAY_VOLUME_CURVE) -> np.ndarray:
    """Each bucket's share of a VWAP (the volume curve) or TWAP (equal) order, summing
    to 1; `schedule` splits an order by these (so does the compiled backtest pass)."""
    weights = np.asarray(curve, dtype=float) if algo is Algo.VWAP else np.ones(len(curve))
    return weights / weights.sum()


def participation_capped(
    targets: Sequence[int], bucket_volumes: Sequence[float], cap: float
) -> tuple[list[int], int]:
    """Child quantities no larger than `cap` x bucket volume, carrying the excess forward.

    Returns (executed per bucket, unfilled remainder at the end of the window).
    """
    executed = []
    carry = 0
    for want, volume in zip(targets, bucket_volumes, strict=True):
        want += carry
        can = max(int(cap * volume), 0)
        done = min(want, can)
        executed.append(done)
        carry = want - done
    return executed, carry


def child_quantities(
    algo: Algo,
    quantity: int,
    bucket_volumes: Sequence[float] | None,
    cap: float,
    curve: Sequence[float] = INTRADAY_VOLUME_CURVE,
) -> tuple[list[int], int]:
    """The one child schedule both clocks use: `schedule` capped by `participation_capped`.

    `bucket_volumes` is the market volume per bucket (the session's actual volume on the
    paper venue, the ADV forecast on a live one); None means unknown, so no cap applies.
    Returns (child quantity per bucket, remainder the cap leaves for the window's end).
    """
    targets = schedule(algo, quantity, curve)
    if bucket_volumes is None:
        return targets, 0
    return participation_capped(targets, bucket_volumes, cap)


@dataclass(frozen=True, slots=True)
class ChildSlice:
    """One planned child order of a parent worked on the wall clock."""

    slice_no: int  # 1, 2, ... (the parent itself is slice 0 of its client id)
    release_at: datetime
    quantity: int


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """A parent's child orders over its execution window, and what the cap leaves over."""

    window_start: datetime
    window_end: datetime
    children: tuple[ChildSlice, ...]
    capped_remainder: int


def aware(at: datetime) -> datetime:
    """`at` with a time zone; a naive time is taken as UTC (as alpaca-py does)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def execution_window(
    at: datetime, min_window: timedelta = 2 * BUCKET
) -> tuple[datetime, datetime, int]:
    """(start, end, first curve bucket) of the window an algo order decided at `at` works in.

    Before a session opens: that whole session. Inside a session with at least
    `min_window` left: from `at` to the close, starting in the curve bucket that holds
    `at`. Otherwise (late in the session, after the close, a holiday): the next session.
    Buckets are the curve's 30-minute buckets counted from the open.
    """
    at = aware(at)
    day = at.astimezone(calendar.NEW_YORK).date()
    if calendar.is_session(day):
        opens, closes = calendar.session_open(day), calendar.session_close(day)
        if at <= opens:
            return opens, closes, 0
        if closes - at >= min_window:
            return at, closes, int((at - opens) / BUCKET)
    upcoming = calendar.sessions(day + timedelta(days=1), day + timedelta(days=14))
    if not upcoming:
        raise ValueError(f"no trading session within two weeks of {day:%Y-%m-%d}")
    return calendar.session_open(upcoming[0]), calendar.session_close(upcoming[0]), 0


def plan_children(
    algo: Algo,
    quantity: int,
    at: datetime,
    *,
    adv: float | None,
    cap: float,
    min_window: timedelta = 2 * BUCKET,
    curve: Sequence[float] = INTRADAY_VOLUME_CURVE,
) -> SlicePlan:
    """Child orders of a VWAP/TWAP parent decided at `at`, released on the wall clock.

    The window comes from `execution_window`; its buckets are the curve's 30-minute
    buckets from the first one the window touches to the close (an early close has
    fewer), their curve weights renormalised. Quantities are `child_quantities` (VWAP
    along the curve, TWAP equal) capped at `cap` x forecast bucket volume, the forecast
    being `adv` x the bucket's curve weight (no cap without an ADV). Child k is released
    at the start of its bucket (the first one at the window start); buckets that get no
    shares get no child.
    """
    start, end, first = execution_window(at, min_window)
    opens = calendar.session_open(start.astimezone(calendar.NEW_YORK).date())
    last = min(len(curve), -(-int((end - opens).total_seconds()) // int(BUCKET.total_seconds())))
    weights = list(curve[first:last]) or [1.0]
    total = sum(weights)
    normalised = [w / total for w in weights]
    volumes = None if not adv or adv <= 0 else [adv * w for w in curve[first:last]]
    quantities, remainder = child_quantities(algo, quantity, volumes, cap, normalised)
    children = []
    for i, qty in enumerate(quantities):
        if qty <= 0:
            continue
        release = max(start, opens + (first + i) * BUCKET)
        children.append(ChildSlice(len(children) + 1, release, qty))
    return SlicePlan(start, end, tuple(children), remainder)
