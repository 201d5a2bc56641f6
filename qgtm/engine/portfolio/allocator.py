"""Turn strategy signals into target portfolio weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qgtm.core.types import Signal

VOL_WINDOW = 63
TRADING_DAYS = 252


def inverse_vol_weights(
    signals: Sequence[Signal], vols: Mapping[str, float], gross_target: float
) -> dict[str, float]:
    """Signed weights w_i = s_i * (1/sigma_i) / sum_j (1/sigma_j) * gross_target.

    Only symbols with a LONG or SHORT signal and a positive vol take part; when one
    symbol has several signals their directions are netted by confidence.
    """
    netted: dict[str, float] = {}
    for signal in signals:
        netted[signal.symbol] = netted.get(signal.symbol, 0.0) + (
            signal.side.sign * max(signal.confidence, 1e-9)
        )
    active = {s: v for s, v in netted.items() if v != 0 and vols.get(s, 0.0) > 0}
    if not active:
        return {}
    inverse = {s: 1.0 / vols[s] for s in active}
    total = sum(inverse.values())
    return {s: (1.0 if active[s] > 0 else -1.0) * inverse[s] / total * gross_target for s in active}


def realised_vols(closes: np.ndarray, symbols: Sequence[str]) -> dict[str, float]:
    """Annualised stdev of the last VOL_WINDOW daily log returns, per symbol.

    sigma_i = std(diff(log close_i), ddof=1) * sqrt(252) over the newest VOL_WINDOW
    returns of `closes` (rows are sessions, all before the decision).
    """
    window = closes[-VOL_WINDOW - 1 :]
    if len(window) < 3:
        return {}
    sigma = np.diff(np.log(window), axis=0).std(axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
    return {s: float(v) for s, v in zip(symbols, sigma, strict=True)}
