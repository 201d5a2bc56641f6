"""COT positioning: CFTC managed-money net positions behind each ETF's future, known on
the Friday release after the Tuesday they describe (demo fallback until the CFTC provider
fills the context)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import COT_SYMBOLS, StrategyContext, cot_series_name
from qgtm.engine.strategies.base import Parameter, VolSized, vol_sizing

COT_SOURCE: dict[str, str] = {**{s: s for s in COT_SYMBOLS}, "IAU": "GLD", "BNO": "USO"}
"""ETF -> the ETF whose COT series describes its future (IAU holds gold like GLD)."""


class _Cot(VolSized):
    family = "COT positioning"
    traded = tuple(COT_SOURCE)
    features = tuple(cot_series_name(s) for s in COT_SYMBOLS)

    def positioning(self, values: np.ndarray) -> float:
        """Direction (+1, -1, 0) from the known COT history, NaN when too short."""
        raise NotImplementedError

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        size = self.size(view.close)
        position = np.full(len(view.symbols), np.nan)
        notes = [""] * len(view.symbols)
        for i, symbol in enumerate(view.symbols):
            source = COT_SOURCE.get(symbol)
            if source is None:
                continue
            values = context.known_before(cot_series_name(source), as_of)
            direction = self.positioning(values)
            position[i] = direction * size[i]
            notes[i] = f"COT {source} managed money"
        return position, np.where(np.isfinite(position), np.abs(np.sign(position)), 0.0), notes


class CotContrarian(_Cot):
    """z of the latest managed-money net position against the last `window` weekly
    reports; short when z > +entry (crowded long), long when z < -entry."""

    name = "cot_contrarian"
    description = "fade extreme managed-money positioning (COT z-score beyond 1.5)"
    reference = (
        "Wang (2003), The behavior and performance of major types of futures traders, JFM 23(1)"
    )
    parameters = (
        Parameter("window", 156, 26, 260, "weekly reports in the z-score"),
        Parameter("entry", 1.5, 0.5, 3.0, "|z| needed to trade"),
        *vol_sizing(0.10),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"positioning": -1.0}
    capacity_usd = 50_000_000.0

    def positioning(self, values: np.ndarray) -> float:
        """-sign(z) when |z| > entry, else 0."""
        window = int(self.params["window"])
        if len(values) < window:
            return float("nan")
        recent = values[-window:]
        std = recent.std(ddof=1)
        z = (recent[-1] - recent.mean()) / std if std > 0 else 0.0
        return -float(np.sign(z)) if abs(z) > self.params["entry"] else 0.0


class CotTrend(_Cot):
    """Follow managed-money flows: sign of the change in net position over `weeks`
    reports (speculators' position changes predict short-horizon returns)."""

    name = "cot_trend"
    description = "follow the 4-week change in managed-money net positions"
    reference = "Kang, Rouwenhorst, Tang (2020), A tale of two premiums, JF 75(1)"
    parameters = (
        Parameter("weeks", 4, 1, 26, "weekly reports in the change"),
        *vol_sizing(0.10),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"positioning": 1.0, "trend": 0.3}
    capacity_usd = 50_000_000.0

    def positioning(self, values: np.ndarray) -> float:
        """sign(x_t - x_{t-weeks})."""
        weeks = int(self.params["weeks"])
        if len(values) <= weeks:
            return float("nan")
        return float(np.sign(values[-1] - values[-1 - weeks]))
