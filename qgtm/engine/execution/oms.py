"""Order management: from approved target weights to idempotent orders."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal

from qgtm.core.enums import Side
from qgtm.core.types import Order


def strategy_set_key(strategies: Iterable[str]) -> str:
    """Short stable key naming the set of strategies behind a rebalance."""
    joined = ",".join(sorted(strategies))
    return hashlib.sha256(joined.encode()).hexdigest()[:8]


def client_order_id(strategy_set: str, decision_date: date, symbol: str, slice_no: int = 0) -> str:
    """Deterministic id from (strategy set, rebalance date, symbol, slice).

    The same decision always yields the same id, so a replayed or retried rebalance is
    recognised by the store and the broker instead of trading twice.
    """
    # YYYYMMDD as %Y%m%d gives it, without strftime (about 2 us an order in a backtest)
    return f"{strategy_set}-{decision_date.isoformat().replace('-', '')}-{symbol}-{slice_no}"


SHARE_TOLERANCE = Decimal("0.000001")


def target_quantity(weight: float, equity: Decimal, price: Decimal) -> int:
    """Whole shares for a signed weight of equity at price, truncated toward zero.

    A count within SHARE_TOLERANCE of a whole number is that number: a weight read back
    from a holding (price x shares / equity, e.g. a position NO_NEW holds) comes back
    as a float a hair under or over, and truncating 4,999.9999999 would trade a share.
    """
    exact = Decimal(str(weight)) * equity / price
    nearest = exact.to_integral_value()
    if abs(exact - nearest) <= SHARE_TOLERANCE:
        return int(nearest)
    return int(exact)


def skip_small_trade(target_qty: int, delta: int, price: Decimal, min_trade_value: Decimal) -> bool:
    """No-trade band: skip a trade worth less than min_trade_value unless it closes out."""
    return delta == 0 or (target_qty != 0 and abs(delta) * price < min_trade_value)


def child_order_id(parent_id: str, slice_no: int) -> str:
    """The id of child slice `slice_no` (1, 2, ...) of a parent order (which is slice 0)."""
    stem, _, _ = parent_id.rpartition("-")
    return f"{stem}-{slice_no}"


def orders_for_targets(
    targets: Mapping[str, float],
    holdings: Mapping[str, int],
    prices: Mapping[str, Decimal],
    equity: Decimal,
    decision_date: date,
    created_at: datetime,
    strategy_set: str,
    min_trade_value: Decimal,
) -> list[Order]:
    """Orders moving `holdings` to `targets` (signed weights of `equity`) at `prices`.

    Target shares truncate toward zero. Trades worth less than `min_trade_value` are
    skipped (no-trade band) unless they close a position completely.
    """
    orders = []
    for symbol in sorted(set(targets) | set(holdings)):
        price = prices[symbol]
        target_qty = target_quantity(targets.get(symbol, 0.0), equity, price)
        delta = target_qty - holdings.get(symbol, 0)
        if skip_small_trade(target_qty, delta, price, min_trade_value):
            continue
        orders.append(
            Order(
                client_order_id=client_order_id(strategy_set, decision_date, symbol),
                symbol=symbol,
                side=Side.BUY if delta > 0 else Side.SELL,
                quantity=abs(delta),
                created_at=created_at,
                decision_date=decision_date,
                reason=f"target {targets.get(symbol, 0.0):+.4f} of equity",
            )
        )
    return orders
