"""The OMS's read models: typed rows in the store, the same dicts at the OMS's surface.

The engine's commands (execution.blotter / children / tca) return these dicts; their
keys and value types are what the terminal and the wire rely on, so they are pinned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.core.results import BlotterRow, ChildOrderRow, TcaRow, TcaStrategyRow
from qgtm.engine.execution.algos import Algo
from tests.engine.execution.test_manager import World

BLOTTER_KEYS = [
    "client_order_id",
    "decision_date",
    "symbol",
    "side",
    "quantity",
    "status",
    "filled_quantity",
    "avg_fill_price",
    "algo",
    "strategy",
    "unfilled",
    "note",
    "children",
]
CHILD_KEYS = ["child_order_id", "quantity", "filled", "price", "filled_at", "status", "release_at"]
TCA_KEYS = [
    "client_order_id",
    "strategy",
    "symbol",
    "side",
    "algo",
    "quantity",
    "filled_quantity",
    "avg_fill_price",
    "decision_price",
    "arrival_price",
    "vwap_price",
    "end_price",
    "commission",
    "arrival_cost_bps",
    "vwap_slippage_bps",
    "implementation_shortfall_bps",
    "computed_at",
    "arrival_source",
    "vwap_source",
]


def test_the_blotter_children_and_tca_keep_their_dict_shapes(tmp_path: Path):
    world = World(tmp_path)
    world.place(3_000, Algo.TWAP)
    world.run_session()

    (row,) = world.oms.blotter()
    assert list(row) == BLOTTER_KEYS
    assert isinstance(row["avg_fill_price"], float) and isinstance(row["quantity"], int)
    assert isinstance(row["decision_date"], str)
    children = world.oms.children(row["client_order_id"])
    assert children and all(list(c) == CHILD_KEYS for c in children)
    assert {type(c["price"]) for c in children} == {float}
    (tca,) = world.oms.tca_rows()
    assert list(tca) == TCA_KEYS
    (by_strategy,) = world.oms.tca_by_strategy()
    assert list(by_strategy) == [
        "strategy",
        "orders",
        "arrival_cost_bps",
        "vwap_slippage_bps",
        "implementation_shortfall_bps",
    ]


def test_the_store_answers_with_frozen_typed_rows(tmp_path: Path):
    world = World(tmp_path)
    world.place(3_000, Algo.TWAP)
    world.run_session()
    store = world.oms.store

    (row,) = store.blotter()
    assert isinstance(row, BlotterRow) and row.status == world.oms.blotter()[0]["status"]
    assert all(isinstance(c, ChildOrderRow) for c in store.children(row.client_order_id))
    (tca,) = store.tca_rows()
    assert isinstance(tca, TcaRow) and tca.filled_quantity == row.filled_quantity
    (stats,) = store.tca_by_strategy()
    assert isinstance(stats, TcaStrategyRow) and stats.orders == 1
    with pytest.raises(AttributeError):  # frozen: msgspec refuses the assignment
        row.status = "CANCELED"  # type: ignore[misc]
