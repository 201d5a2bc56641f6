"""Turn strategy signals into target portfolio weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qgtm.core.types import Signal


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
