"""QGTM's runners against backtrader and vectorbt on the same bars and the same rule.

1. Event-driven: the SMA(10/30) long-or-flat crossover in QGTM's event-driven runner and
   in backtrader, on one demo ETF (95% of equity) and on the whole 18-ETF demo universe
   (each long name 95%/18 of equity), no costs. Both decide on bar t from bars before t
   and fill at the next open; trades (day, symbol, signed quantity) are compared one by
   one. Also timed: the strategy's own point-in-time calls alone (history_before +
   generate, every session), the floor of any runner that asks the real strategy each
   session, and so the best ratio such a runner could reach.
2. Sweep: (fast, slow) pairs of a grid (--pairs, default 20 of 100) in QGTM's vectorised
   runner (`run_sweep`: with the signal decision, the compiled booking pass of
   backtest/kernel.py) and in vectorbt (Portfolio.from_orders, target-percent sizing at
   the next open); the days in the market are compared per pair. Both tools get a first
   call that is not timed (numba compiles or loads its cache), as vectorbt's kernels.
Both QGTM runners are timed with the live decision (allocate + every risk check, as the
live engine) and with the quick "signal" decision (inverse-vol + context-free caps).
Speed ratios are printed (peer time / QGTM time: > 1 means QGTM is faster). Times are
CPU seconds of this process (time.process_time), so other jobs on a shared machine
distort them less than wall time would; every tool runs in this one process.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/bench_peers.py
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgtm.core.config import DemoConfig, PortfolioConfig
from qgtm.core.types import RiskLimits
from qgtm.core.universe import load_universe
from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.backtest.event_driven import run_event_driven
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.sma import SmaCrossover, crossover_signals
from qgtm.engine.backtest.vectorised import run_sweep
from qgtm.engine.data.store import MarketStore, PricePanel

SYMBOL = "GLD"
FAST, SLOW = 10, 30
WEIGHT = 0.95
SETTINGS = BacktestSettings(
    gross_target=WEIGHT,
    # the live risk pipeline runs, with limits that never bind on a 95% single-ETF book
    risk=RiskLimits(
        max_position_weight=WEIGHT,
        max_gross_leverage=1.0,
        max_sector_weight=1.0,
        vol_target=10.0,
        cvar_limit=1.0,
        kelly_min_obs=10**9,
    ),
    min_trade_value=Decimal(0),
    # market orders at the open (no VWAP/TWAP schedule), no costs: backtrader's fills
    costs=CostModel(
        commission_per_share=Decimal(0),
        slippage_bps=0.0,
        vwap_adv_fraction=math.inf,
        twap_adv_fraction=math.inf,
    ),
    kill_switch=False,
    # the live allocator: full leverage at any drawdown, no no-trade band
    portfolio=PortfolioConfig(no_trade_band=0.0, dampen_start=1.0, dampen_full=2.0),
)
FAST_GRID = list(range(5, 55, 5))
SLOW_GRID = list(range(60, 260, 20))


def settings_for(names: int) -> BacktestSettings:
    """SETTINGS for an equal-weight book of `names` ETFs: each long name WEIGHT / names.

    The gross target is high enough that every long name's allocation reaches the
    position cap, so the live and signal decisions both hold each long name at the cap,
    as backtrader sizes it (the gross and net caps, 1.0, never bind on 95%).
    """
    if names == 1:
        return SETTINGS
    cap = WEIGHT / names
    return replace(
        SETTINGS,
        gross_target=WEIGHT * names,
        risk=replace(SETTINGS.risk, max_position_weight=cap),
    )


def demo_universe() -> PricePanel:
    """The seeded demo market, 2008-2025: the 18 ETFs of the default universe."""
    universe = load_universe()
    store = MarketStore(Path(tempfile.mkdtemp()))
    store.ensure_demo(universe, DemoConfig(seed=7, start=date(2008, 1, 2), end=date(2025, 12, 31)))
    panel = store.load_panel(universe.symbols)
    store.close()
    return panel


def one_etf(panel: PricePanel, symbol: str = SYMBOL) -> PricePanel:
    """One column of `panel`."""
    j = panel.symbols.index(symbol)
    pick = slice(j, j + 1)
    return replace(
        panel,
        symbols=(symbol,),
        open=panel.open[:, pick].copy(),
        high=panel.high[:, pick].copy(),
        low=panel.low[:, pick].copy(),
        close=panel.close[:, pick].copy(),
        volume=panel.volume[:, pick].copy(),
    )


Fills = list[tuple[date, str, int]]


def run_backtrader(panel: PricePanel) -> tuple[Fills, float]:
    """The same rule in backtrader: decide in next() on bar t from bars up to t-1.

    Each long name gets WEIGHT / names of the equity at the t-1 closes, in whole shares
    truncated toward zero (QGTM's target_quantity, in Decimal as QGTM sizes).
    """
    import backtrader as bt
    import pandas as pd

    index = pd.to_datetime(list(panel.dates))
    weight = Decimal(str(WEIGHT / len(panel.symbols)))

    class Cross(bt.Strategy):
        def __init__(self) -> None:
            self.averages = [
                (
                    bt.indicators.SMA(data.close, period=FAST),
                    bt.indicators.SMA(data.close, period=SLOW),
                )
                for data in self.datas
            ]
            self.fills: Fills = []

        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                day = bt.num2date(order.executed.dt).date()
                self.fills.append((day, order.data._name, int(order.executed.size)))

        def next(self) -> None:
            if len(self) <= SLOW + 1:  # QGTM decides from session warmup + 1 on
                return
            equity = self.broker.getcash() + sum(
                self.getposition(data).size * data.close[-1] for data in self.datas
            )
            for data, (fast, slow) in zip(self.datas, self.averages, strict=True):
                last_close = data.close[-1]
                target = int(weight * Decimal(str(equity)) / Decimal(str(last_close)))
                self.order_target_size(data=data, target=target if fast[-1] > slow[-1] else 0)

    cerebro = bt.Cerebro(stdstats=False)
    for j, symbol in enumerate(panel.symbols):
        frame = pd.DataFrame(
            {
                "open": panel.open[:, j],
                "high": panel.high[:, j],
                "low": panel.low[:, j],
                "close": panel.close[:, j],
                "volume": panel.volume[:, j].astype(float),
            },
            index=index,
        )
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=symbol)
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.set_checksubmit(False)
    started = time.process_time()
    strategy = cerebro.run()[0]
    return strategy.fills, time.process_time() - started


def strategy_floor(panel: PricePanel, first: int) -> float:
    """CPU seconds of the strategy's point-in-time calls alone, sessions first.. (min of 3):
    what any runner that asks the real strategy every session spends at least."""
    strategy = SmaCrossover(fast=FAST, slow=SLOW)
    best = math.inf
    for _ in range(3):
        started = time.process_time()
        for i in range(first, len(panel)):
            strategy.generate(panel.history_before(i), panel.dates[i])
        best = min(best, time.process_time() - started)
    return best


def event_driven_comparison(panel: PricePanel) -> None:
    theirs, bt_seconds = run_backtrader(panel)
    where = panel.symbols[0] if len(panel.symbols) == 1 else f"{len(panel.symbols)} ETFs"
    print(f"event-driven: {len(panel)} sessions, SMA {FAST}/{SLOW} on {where}")
    print(f"  backtrader {bt_seconds:.3f}s, {len(theirs)} trades")
    for decision in ("live", "signal"):
        settings = replace(settings_for(len(panel.symbols)), decision=decision)
        started = time.process_time()
        result = run_event_driven(panel, [SmaCrossover(fast=FAST, slow=SLOW)], settings)
        qgtm_seconds = time.process_time() - started
        ours = [(t.day, t.symbol, t.quantity) for t in result.trades]
        same = sum((Counter(ours) & Counter(theirs)).values())
        ratio = bt_seconds / qgtm_seconds
        print(
            f"  qgtm [{decision} decision] {qgtm_seconds:.3f}s, {len(ours)} trades, "
            f"{same} identical (day, symbol, qty); ratio {ratio:.2f}x"
        )
    floor = strategy_floor(panel, SLOW + 1)
    print(
        f"  the strategy's own calls alone (history_before + generate, each session) "
        f"{floor:.3f}s: no runner asking it every session can beat {bt_seconds / floor:.1f}x"
    )


def sweep_comparison(panel: PricePanel, pairs: list[tuple[int, int]]) -> None:
    import pandas as pd
    import vectorbt as vbt

    warmup = max(SLOW_GRID)
    close = pd.Series(panel.close[:, 0], index=pd.to_datetime(list(panel.dates)))
    opens = pd.Series(panel.open[:, 0], index=close.index)

    def vbt_sweep() -> np.ndarray:
        fast_ma = vbt.MA.run(close, window=[f for f, _ in pairs], short_name="fast")
        slow_ma = vbt.MA.run(close, window=[s for _, s in pairs], short_name="slow")
        long = fast_ma.ma.to_numpy() > slow_ma.ma.to_numpy()
        # decided on t from bars < t (yesterday's averages), filled at t+1's open
        decision = np.vstack([np.full((1, long.shape[1]), False), long[:-1]])
        target = np.where(decision, WEIGHT, 0.0)
        target[: warmup + 1] = np.nan
        fill_target = np.vstack([np.full((1, target.shape[1]), np.nan), target[:-1]])
        portfolio = vbt.Portfolio.from_orders(
            close=pd.DataFrame(
                np.repeat(close.to_numpy()[:, None], len(pairs), 1), index=close.index
            ),
            size=fill_target,
            size_type="targetpercent",
            price=np.repeat(opens.to_numpy()[:, None], len(pairs), 1),
            init_cash=1_000_000.0,
            freq="1D",
        )
        return portfolio.assets().to_numpy() > 0

    jit_started = time.process_time()
    vbt_sweep()  # first call compiles vectorbt's numba kernels
    jit_seconds = time.process_time() - jit_started
    started = time.process_time()
    held = vbt_sweep()
    vbt_seconds = time.process_time() - started
    print(f"sweep: {len(pairs)} (fast, slow) pairs over {len(panel)} sessions")
    print(f"  vectorbt {vbt_seconds:.3f}s (after a {jit_seconds:.1f}s first call compiling numba)")

    def qgtm_sweep(settings: BacktestSettings) -> tuple[dict, list[str]]:
        signals = crossover_signals(panel, pairs, warmup)  # every pair in one array pass
        # each trial's slow window is folded into its signals; all start after `warmup`
        trials = [[SmaCrossover(fast=fast, slow=warmup)] for fast, _ in pairs]
        swept = run_sweep(
            panel,
            trials,
            settings,
            signals=[{t[0].name: s} for t, s in zip(trials, signals, strict=True)],
        )
        held = {p: swept.positions[k][:, 0] > 0 for k, p in enumerate(pairs)}
        return held, swept.booking

    for decision in ("live", "signal"):
        settings = replace(SETTINGS, decision=decision)
        first_call = ""
        if decision == "signal":
            started = time.process_time()
            qgtm_sweep(settings)  # loads (or, without a cache, compiles) the numba kernel
            first_call = f" (after a {time.process_time() - started:.1f}s first call)"
        started = time.process_time()
        in_market, booking = qgtm_sweep(settings)
        qgtm_seconds = time.process_time() - started
        offset = len(panel) - next(iter(in_market.values())).shape[0]
        agree = [float(np.mean(in_market[p] == held[offset:, k])) for k, p in enumerate(pairs)]
        booked = ", ".join(f"{booking.count(b)} {b}" for b in sorted(set(booking)))
        print(
            f"  qgtm [{decision} decision] {qgtm_seconds:.3f}s{first_call} [{booked}]; "
            f"days-in-market agreement min {min(agree):.4f}; "
            f"ratio {vbt_seconds / qgtm_seconds:.3f}x "
            f"({(vbt_seconds + jit_seconds) / qgtm_seconds:.3f}x counting vectorbt's compile)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, default=20, help="sweep pairs (of the 10 x 10 grid; default 20)"
    )
    args = parser.parse_args()
    universe = demo_universe()
    panel = one_etf(universe)
    event_driven_comparison(panel)
    event_driven_comparison(universe)
    grid = [(f, s) for f in FAST_GRID for s in SLOW_GRID if f < s]
    step = max(1, len(grid) // max(1, args.pairs))
    sweep_comparison(panel, grid[::step][: args.pairs])


if __name__ == "__main__":
    main()
