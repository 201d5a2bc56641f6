"""The shared no-lookahead check, run over every registered strategy.

Signals for every decision up to session t must be identical whether the bars (and the
auxiliary series) after t are the real continuation or random noise. Each strategy
instance is first asked about a session after t, so any cache that kept something from
the future would show up in the later answers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from qgtm.core.universe import load_universe
from qgtm.engine.data.demo import generate_demo_market
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import AuxSeries, StrategyContext, demo_context
from qgtm.engine.strategies.registry import STRATEGIES, create

CUT = 640  # rows >= CUT are replaced; decisions at sessions <= CUT see only rows < CUT
DECISIONS = (CUT - 45, CUT - 21, CUT - 1, CUT)
LATER = CUT + 40


@pytest.fixture(scope="module")
def real_panel() -> PricePanel:
    """All 18 demo ETFs over 700 sessions (a small, fast world)."""
    universe = load_universe()
    market = generate_demo_market(universe, date(2008, 1, 2), date(2010, 10, 29), 3)
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        wide = market.bars.pivot(on="symbol", index="date", values=name).sort("date")
        fields[name] = np.ascontiguousarray(wide.select(universe.symbols).to_numpy(), float)
    dates = tuple(wide["date"].to_list())
    return PricePanel(dates, universe.symbols, **fields)


def _noise_after_cut(panel: PricePanel) -> PricePanel:
    rng = np.random.default_rng(99)
    shape = panel.close[CUT:].shape
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = getattr(panel, name).copy()
        values[CUT:] = np.exp(rng.normal(3.0, 1.0, shape))
        fields[name] = values
    return replace(panel, **fields)


def _context_with_noise_after(day: date) -> StrategyContext:
    rng = np.random.default_rng(7)
    cut = np.datetime64(day, "D")
    noisy = {}
    for name, aux in demo_context().series.items():
        values = aux.values.copy()
        later = aux.known >= cut
        values[later] = rng.normal(0.0, 1e5, int(later.sum()))
        noisy[name] = AuxSeries(name, aux.observed, aux.known, values)
    return StrategyContext(noisy, source="test", demo_fallback=False)


def _run(name: str, panel: PricePanel, context: StrategyContext) -> dict[int, list]:
    strategy = create(name)
    strategy.generate(panel.history_before(LATER), panel.dates[LATER], context=context)
    return {
        d: strategy.generate(panel.history_before(d), panel.dates[d], context=context)
        for d in DECISIONS
    }


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_signals_up_to_t_ignore_what_comes_after_t(name: str, real_panel: PricePanel) -> None:
    real = _run(name, real_panel, demo_context())
    noise = _run(
        name, _noise_after_cut(real_panel), _context_with_noise_after(real_panel.dates[CUT])
    )
    assert real[CUT], f"{name} produced no signal at the cut: the check would be vacuous"
    assert real == noise
    fresh = create(name)
    alone = fresh.generate(real_panel.history_before(CUT), real_panel.dates[CUT])
    assert alone == real[CUT]


def test_the_registry_holds_at_least_forty_distinct_strategies_with_tsmom() -> None:
    assert len(STRATEGIES) >= 40
    assert "tsmom" in STRATEGIES
    assert len({cls.reference for cls in STRATEGIES.values()}) >= 35
    assert len({cls.family for cls in STRATEGIES.values()}) >= 10
