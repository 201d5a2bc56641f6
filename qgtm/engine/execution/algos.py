"""Algo routing: market, VWAP or TWAP by order size against average daily volume.

Rule (thresholds in config [execution]): quantity / ADV above `twap_adv_fraction`
(5%) -> TWAP with a participation cap; above `vwap_adv_fraction` (1%) -> VWAP along the
intraday volume curve; otherwise one market order. A schedule splits a parent order
into child slices per intraday bucket; whatever the caps leave unfilled by the end of
the window is the parent's remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

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
    weights = np.asarray(curve, dtype=float) if algo is Algo.VWAP else np.ones(n)
    weights = weights / weights.sum()
    exact = weights * quantity
    slices = np.floor(exact).astype(int)
    leftover = quantity - int(slices.sum())
    for i in np.argsort(-(exact - slices), kind="stable")[:leftover]:
        slices[i] += 1
    return [int(s) for s in slices]


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
