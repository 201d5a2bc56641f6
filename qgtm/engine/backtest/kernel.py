"""The vectorised runner's booking pass for the quick "signal" decision, compiled.

`run_vectorised` with decision="signal" knows every session's wanted weights before it
books anything (`target_matrix`); what stays path-dependent is the book: the context-free
checks (kill tier, position, gross, net, final guard) against the current weights, whole
shares, the no-trade band, the algo choice, fills, commissions and the kill switch. This
module runs that pass with numba in integer units of 1/100 cent, so a parameter sweep
books each trial in microseconds per session instead of a Python loop over Decimals.

It is the same arithmetic, not an approximation (tests/engine/backtest/test_kernel.py
compares it with the Python pass on random books, trade by trade and cent by cent):
- prices are the 4-decimal marks the live engine uses, as integers; fills, commissions
  and cash are exact integer sums; fill prices round half-even to 1/100 cent, as
  `fill_price` quantizes;
- algo children use the bucket path of `bucket_prices` as exact fractions and the same
  `schedule` / `participation_capped` rules;
- weights of the book and drawdowns are divisions of two integers below 2^53, which
  IEEE rounds exactly as Python rounds the Decimal quotient it converts to float;
- the checks repeat `run_checks`' float operations in the same order (sorted symbols);
- the kill switch is not repeated: `killswitch.called_tier` and `tier_after`, the rules
  `killswitch.book_close` applies at every close, are compiled here from their source;
  only the drawdown is formed from integer units (the same quotient, see above).
Where exactness cannot be shown inside the kernel, it stops the trial and says why
(`Status`): a whole-share count whose float estimate lies within rounding error of the
edge of `target_quantity`'s snap to a whole number (it works on a Decimal of the
weight's repr, which the kernel cannot form), or a child price
exactly on a rounding tie after an inexact Decimal division. The caller then books that
trial with the Python pass. Impact and borrow charges (Decimal rates with 28-digit
quotients) are not compiled: `eligible` says no and the Python pass runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

import numpy as np
from numba import njit

from qgtm.core.enums import KillTier
from qgtm.engine.backtest.result import BacktestSettings, Trade
from qgtm.engine.execution.algos import INTRADAY_VOLUME_CURVE, Algo, schedule_weights
from qgtm.engine.execution.oms import SHARE_TOLERANCE
from qgtm.engine.risk import killswitch

UNITS = 10_000  # 1/100 cent: PRICE_QUANTUM
_LIMIT = 2**62  # products must stay below this in int64
MARKET, VWAP, TWAP = 0, 1, 2
FLATTEN = int(KillTier.FLATTEN)
NO_NEW = int(KillTier.NO_NEW)
THROTTLE = int(KillTier.THROTTLE)


class Status(IntEnum):
    """How a compiled trial ended."""

    OK = 0
    INEXACT_SHARES = 1  # a share count within float error of the whole-number snap edge
    INEXACT_TIE = 2  # a child price on a half-cent-hundredth tie after an inexact division
    TRADE_BUFFER = 3  # more fills than the trade buffer holds (rerun with a larger one)
    OUT_OF_RANGE = 4  # a book value beyond 2^52 units: float quotients would not be exact


def _fraction(value: Decimal) -> tuple[int, int]:
    """`value` as (numerator, power-of-ten denominator)."""
    sign, digits, exponent = value.normalize().as_tuple()
    numerator = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite number: {value}")
    if exponent >= 0:
        return numerator * 10**exponent, 1
    return numerator, 10**-exponent


def eligible(settings: BacktestSettings, max_price_units: int) -> str | None:
    """None when the compiled pass books `settings` exactly; otherwise why not."""
    costs, limits = settings.costs, settings.risk
    if settings.decision != "signal":
        return "the live decision runs in Python"
    if costs.impact_bps_at_full_adv != 0:
        return "market impact charges are booked in Python"
    if costs.borrow_bps_annual != 0:
        return "borrow charges are booked in Python"
    if limits.vol_target < 0 or limits.cvar_limit < 0:
        return "negative risk limits"
    try:
        cost_num, cost_den = _fraction(costs.fill_cost_bps())
        comm_num, comm_den = _fraction(costs.commission_per_share)
        cash_num, cash_den = _fraction(settings.initial_cash * UNITS)
        _, min_den = _fraction(settings.min_trade_value * UNITS)
    except ValueError as exc:
        return str(exc)
    if cash_den != 1 or min_den != 1:
        return "cash or the minimum trade below 1/100 cent"
    scale = cost_den * UNITS
    buckets = 2 * len(INTRADAY_VOLUME_CURVE)
    if (max_price_units + 1) * buckets * (scale + abs(cost_num)) >= _LIMIT:
        return "prices too large for 64-bit fill arithmetic"
    if comm_den > 10**9 or abs(comm_num) * UNITS >= 2**30:
        return "commission rate needs more than 64-bit arithmetic"
    if abs(cash_num) >= 2**50:
        return "initial cash too large"
    return None


@dataclass(frozen=True, slots=True)
class KernelInputs:
    """One sweep's shared arrays (sorted-symbol columns) and the settings as integers."""

    opens: np.ndarray  # int64 units
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volume: np.ndarray  # float64
    mean_volume: np.ndarray  # float64, what select_algo sees at each session
    first: int
    last: int
    initial_cash: int
    min_trade: int
    cost_num: int
    cost_scale: int
    comm_num: int
    comm_den: int
    algo_fractions: np.ndarray  # (vwap, twap, participation cap)
    curve: np.ndarray
    vwap_weights: np.ndarray
    twap_weights: np.ndarray
    limits: np.ndarray  # see _limits_vector
    kill_switch: bool
    kill_daily: bool  # settings.kill_reset == "daily" (killswitch.tier_after_close)


def _limits_vector(settings: BacktestSettings) -> np.ndarray:
    r = settings.risk
    return np.array(
        [
            r.max_position_weight,
            r.max_gross_leverage,
            r.max_net_leverage,
            r.throttle_factor,
            r.daily_loss_limit,
            r.warn_fraction,
            r.throttle_fraction,
            r.max_drawdown_pct,
            r.vol_target,
            r.cvar_limit,
        ]
    )


def kernel_inputs(
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volume: np.ndarray,
    mean_volume: np.ndarray,
    first: int,
    last: int,
    settings: BacktestSettings,
) -> KernelInputs:
    """Integer forms of the prices and settings; columns already in sorted-symbol order."""
    costs = settings.costs
    cost_num, cost_den = _fraction(costs.fill_cost_bps())
    comm_num, comm_den = _fraction(costs.commission_per_share)
    curve = np.asarray(INTRADAY_VOLUME_CURVE, dtype=float)
    return KernelInputs(
        opens=opens,
        highs=highs,
        lows=lows,
        closes=closes,
        volume=np.ascontiguousarray(volume, dtype=float),
        mean_volume=np.ascontiguousarray(mean_volume, dtype=float),
        first=first,
        last=last,
        initial_cash=int(settings.initial_cash * UNITS),
        min_trade=int(settings.min_trade_value * UNITS),
        cost_num=cost_num,
        cost_scale=cost_den * UNITS,
        comm_num=comm_num * UNITS,
        comm_den=comm_den,
        algo_fractions=np.array(
            [costs.vwap_adv_fraction, costs.twap_adv_fraction, costs.participation_cap]
        ),
        curve=curve,
        vwap_weights=schedule_weights(Algo.VWAP),
        twap_weights=schedule_weights(Algo.TWAP),
        limits=_limits_vector(settings),
        kill_switch=settings.kill_switch,
        kill_daily=settings.kill_reset == "daily",
    )


@dataclass(slots=True)
class TrialBook:
    """One compiled trial: per-session equity, cash, holdings and tier, and its fills."""

    status: Status
    equity: np.ndarray  # int64 units
    cash: np.ndarray
    positions: np.ndarray  # sessions x symbols (sorted-symbol columns)
    tiers: np.ndarray  # int8 KillTier values
    trades: np.ndarray  # (k, 5): session, column, signed quantity, price units, fee units


def book_trial(inputs: KernelInputs, targets: np.ndarray, capacity: int = 0) -> TrialBook:
    """Book one trial whose wanted weights are `targets` (sessions x symbols, NaN: none)."""
    n = inputs.last - inputs.first
    m = targets.shape[1]
    capacity = capacity or max(64, 2 * n * m)
    equity = np.zeros(n, dtype=np.int64)
    cash = np.zeros(n, dtype=np.int64)
    positions = np.zeros((n, m), dtype=np.int64)
    tiers = np.zeros(n, dtype=np.int8)
    trades = np.zeros((capacity, 5), dtype=np.int64)
    status, count = _book(
        np.ascontiguousarray(targets, dtype=float),
        inputs.opens,
        inputs.highs,
        inputs.lows,
        inputs.closes,
        inputs.volume,
        inputs.mean_volume,
        inputs.first,
        inputs.last,
        inputs.initial_cash,
        inputs.min_trade,
        inputs.cost_num,
        inputs.cost_scale,
        inputs.comm_num,
        inputs.comm_den,
        inputs.algo_fractions,
        inputs.curve,
        inputs.vwap_weights,
        inputs.twap_weights,
        inputs.limits,
        inputs.kill_switch,
        inputs.kill_daily,
        float(SHARE_TOLERANCE),
        equity,
        cash,
        positions,
        tiers,
        trades,
    )
    if status == Status.TRADE_BUFFER:
        return book_trial(inputs, targets, capacity * 4)
    return TrialBook(Status(status), equity, cash, positions, tiers, trades[:count])


def trades_of(book: TrialBook, dates: tuple, symbols: tuple[str, ...], first: int) -> list[Trade]:
    """The trial's fills as the runners' Trade records (Decimal prices, 4 decimals)."""
    return [
        Trade(
            dates[first + int(row[0])],
            symbols[int(row[1])],
            int(row[2]),
            Decimal(int(row[3])).scaleb(-4),
            Decimal(int(row[4])).scaleb(-4),
        )
        for row in book.trades
    ]


# ----- compiled parts ------------------------------------------------------------------
@njit(cache=True)
def _round_div(numerator: np.int64, denominator: np.int64) -> np.int64:
    """numerator / denominator rounded half-even (denominator > 0)."""
    q = numerator // denominator
    r = numerator - q * denominator
    if 2 * r > denominator or (2 * r == denominator and q % 2 != 0):
        q += 1
    return q


@njit(cache=True)
def _only_2_and_5(value: np.int64) -> bool:
    while value % 2 == 0:
        value //= 2
    while value % 5 == 0:
        value //= 5
    return value == 1


@njit(cache=True)
def _gcd(a: np.int64, b: np.int64) -> np.int64:
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


@njit(cache=True)
def _reduces(current: float, target: float) -> bool:
    if target == 0:
        return True
    return current * target > 0 and abs(target) <= abs(current)


@njit(cache=True)
def _check(wanted, current, present, tier, limits, out) -> None:
    """checks.run_checks without a market context (check_targets): kill tier, position,
    gross, net, then the final guard's halvings; `out` gets the approved weights of the
    `present` names (targets or holdings), in the same float operations and order.
    Without returns the volatility and CVaR measures are 0, inside any limit >= 0."""
    m = wanted.shape[0]
    max_position, max_gross, max_net = limits[0], limits[1], limits[2]
    throttle_factor = limits[3]
    for j in range(m):
        out[j] = 0.0
        if not present[j]:
            continue
        want = wanted[j] if wanted[j] == wanted[j] else 0.0
        have = current[j]
        if tier >= FLATTEN:
            want = 0.0
        elif tier >= NO_NEW and not _reduces(have, want):
            want = 0.0 if have == 0 or want * have < 0 else have
        elif tier >= THROTTLE and not _reduces(have, want):
            want = have + (want - have) * throttle_factor
        if abs(want) > max_position:
            want = max_position if want > 0 else -max_position
        out[j] = want
    gross = 0.0
    for j in range(m):
        if present[j]:
            gross += abs(out[j])
    if gross > max_gross:
        factor = max_gross / gross
        for j in range(m):
            if present[j]:
                out[j] = out[j] * factor
    net = 0.0
    for j in range(m):
        if present[j]:
            net += out[j]
    if abs(net) > max_net:
        side_total = 0.0
        for j in range(m):
            if present[j] and out[j] * net > 0:
                side_total += abs(out[j])
        factor = (side_total - (abs(net) - max_net)) / side_total
        for j in range(m):
            if present[j] and out[j] * net > 0:
                out[j] = out[j] * factor
    tol = 1e-9
    for _ in range(64):
        broken = False
        gross = 0.0
        net = 0.0
        for j in range(m):
            if present[j]:
                if abs(out[j]) > max_position + tol:
                    broken = True
                gross += abs(out[j])
                net += out[j]
        if gross > max_gross + tol or abs(net) > max_net + tol:
            broken = True
        if not broken:
            break
        for j in range(m):
            if present[j]:
                out[j] = out[j] * 0.5


# the kill switch's own rules, compiled from their one source (killswitch.book_close)
_called_tier = njit(cache=True)(killswitch.called_tier)
_tier_after = njit(cache=True)(killswitch.tier_after)


@njit(cache=True)
def _schedule(quantity: np.int64, weights, out) -> None:
    """algos.schedule for VWAP/TWAP (weights already normalised)."""
    n = weights.shape[0]
    exact = weights * quantity
    slices = np.floor(exact).astype(np.int64)
    leftover = quantity - slices.sum()
    keys = -(exact - slices)
    order = np.argsort(keys, kind="mergesort")
    for k in range(n):
        out[k] = slices[k]
    for k in range(min(leftover, n)):
        out[order[k]] += 1


@njit(cache=True)
def _book(
    targets,
    opens,
    highs,
    lows,
    closes,
    volume,
    mean_volume,
    first,
    last,
    initial_cash,
    min_trade,
    cost_num,
    cost_scale,
    comm_num,
    comm_den,
    algo_fractions,
    curve,
    vwap_weights,
    twap_weights,
    limits,
    kill_switch,
    kill_daily,
    share_tolerance,
    equity_out,
    cash_out,
    positions,
    tiers,
    trades,
):
    """The booking loop of vectorised.run_vectorised for the signal decision."""
    m = targets.shape[1]
    buckets = curve.shape[0]
    twice = 2 * buckets
    cash = np.int64(initial_cash)
    held = np.zeros(m, dtype=np.int64)
    pending_qty = np.zeros(m, dtype=np.int64)
    pending_algo = np.zeros(m, dtype=np.int64)
    pending_count = 0
    pending_col = np.zeros(m, dtype=np.int64)
    wanted = np.empty(m)
    current = np.zeros(m)
    present = np.zeros(m, dtype=np.bool_)
    approved = np.zeros(m)
    planned = np.zeros(buckets, dtype=np.int64)
    tier = 0
    prev_equity = np.int64(initial_cash)
    peak = np.int64(initial_cash)
    count = 0
    capacity = trades.shape[0]
    for row in range(last - first):
        i = first + row
        # open: yesterday's orders
        for p in range(pending_count):
            j = pending_col[p]
            qty = pending_qty[p]
            sign = 1 if qty > 0 else -1
            size = abs(qty)
            algo = pending_algo[p]
            carry = np.int64(0)
            if algo != MARKET:
                _schedule(size, vwap_weights if algo == VWAP else twap_weights, planned)
            for b in range(buckets):
                if algo == MARKET:
                    if b > 0:
                        break
                    child = size
                    price_num = opens[i, j] * twice  # a fraction over `twice`
                else:
                    want = planned[b] + carry
                    can = max(np.int64(algo_fractions[2] * (curve[b] * volume[i, j])), 0)
                    child = min(want, can)
                    carry = want - child
                    # bucket_prices: open + (close - open) * (2b + 1) / (2 * buckets),
                    # inside [low, high]
                    price_num = opens[i, j] * twice + (closes[i, j] - opens[i, j]) * (2 * b + 1)
                    price_num = max(price_num, lows[i, j] * twice)
                    price_num = min(price_num, highs[i, j] * twice)
                if child == 0:
                    continue
                numerator = price_num * (cost_scale + sign * cost_num)
                denominator = twice * cost_scale
                price = _round_div(numerator, denominator)
                if 2 * (numerator - (numerator // denominator) * denominator) == denominator:
                    # a tie: exact in Decimal only if the bucket price was
                    reduced = twice // _gcd(price_num, twice)
                    if not _only_2_and_5(reduced):
                        return 2, count
                fee = _round_div(comm_num * child, comm_den)
                cash -= price * (sign * child) + fee
                held[j] += sign * child
                if count >= capacity:
                    return 3, count
                trades[count, 0] = row
                trades[count, 1] = j
                trades[count, 2] = sign * child
                trades[count, 3] = price
                trades[count, 4] = fee
                count += 1
        pending_count = 0
        # 15:30: decide at yesterday's close marks
        equity = cash
        for j in range(m):
            if held[j] != 0:
                value = closes[i - 1, j] * held[j]
                if abs(value) >= 2**52 or abs(held[j]) >= 2**31:
                    return 4, count
                equity += value
        if abs(equity) >= 2**52:
            return 4, count
        for j in range(m):
            current[j] = 0.0
            present[j] = False
            if held[j] != 0 and equity > 0:
                current[j] = (closes[i - 1, j] * held[j]) / equity
                present[j] = True
            wanted[j] = targets[i, j] if tier < FLATTEN else np.nan
            if wanted[j] == wanted[j]:
                present[j] = True
        _check(wanted, current, present, tier, limits, approved)
        for j in range(m):
            if not present[j] and held[j] == 0:
                continue
            mark = closes[i - 1, j]
            target = np.int64(0)
            w = approved[j] if present[j] else 0.0
            if w != 0:
                # oms.target_quantity: the Decimal of repr(w) x equity / mark, snapped to
                # a whole number within SHARE_TOLERANCE, else truncated. The float
                # estimate is within 4e-16 relative of that Decimal, so the answer is
                # certain unless the estimate sits that close to the snap boundary.
                estimate = w * equity / mark
                nearest = np.round(estimate)
                off = abs(estimate - nearest)
                error = 4e-16 * abs(estimate) + 1e-300
                if abs(off - share_tolerance) <= error or error >= 0.1 * share_tolerance:
                    return 1, count
                target = (
                    np.int64(nearest) if off < share_tolerance else np.int64(np.trunc(estimate))
                )
            delta = target - held[j]
            if delta == 0 or (target != 0 and abs(delta) * mark < min_trade):
                continue
            volume_mean = mean_volume[i, j]
            fraction = abs(delta) / volume_mean if volume_mean > 0 else np.inf
            if volume_mean <= 0 or fraction > algo_fractions[1]:
                algo = TWAP
            elif fraction > algo_fractions[0]:
                algo = VWAP
            else:
                algo = MARKET
            pending_col[pending_count] = j
            pending_qty[pending_count] = delta
            pending_algo[pending_count] = algo
            pending_count += 1
        # close: mark, peak, kill tier
        equity = cash
        for j in range(m):
            if held[j] != 0:
                equity += closes[i, j] * held[j]
        peak = max(peak, equity)
        if kill_switch:
            drawdown = (peak - equity) / peak
            called = _called_tier(
                (equity - prev_equity) / 10_000.0,
                prev_equity / 10_000.0,
                drawdown,
                limits[7],
                limits[4],
                limits[5],
                limits[6],
            )
            new_tier = _tier_after(tier, called, kill_daily)
            if new_tier >= FLATTEN and tier < FLATTEN:
                pending_count = 0
                for j in range(m):
                    if held[j] != 0:
                        pending_col[pending_count] = j
                        pending_qty[pending_count] = -held[j]
                        pending_algo[pending_count] = MARKET
                        pending_count += 1
            tier = new_tier
        prev_equity = equity
        equity_out[row] = equity
        cash_out[row] = cash
        for j in range(m):
            positions[row, j] = held[j]
        tiers[row] = tier
    return 0, count
