"""Money matrices: exact 4-decimal prices, converted row by row when first read."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from qgtm.engine.backtest.result import money_matrix


def _eager(values: np.ndarray) -> list[list[Decimal]]:
    """The whole-array conversion the lazy rows must reproduce."""
    return [[Decimal(str(round(float(v), 4))) for v in row] for row in values]


def test_every_row_is_the_eager_conversion_digit_for_digit() -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(0.5, 5000, size=(40, 4))
    values[:10] = np.round(values[:10], 4) + 0.00005  # half-unit ties
    values[10, 1] = np.nan
    values[11, 2] = 12.0  # "12.0", not "12"
    matrix = money_matrix(values)
    # str() tells Decimal("12.0") from Decimal("12") and NaN from anything
    assert [[str(p) for p in row] for row in matrix] == [
        [str(p) for p in row] for row in _eager(values)
    ]


def test_integer_arrays_convert_as_floats() -> None:
    values = np.array([[12, 7], [3, 40]], dtype=np.int64)
    assert [[str(p) for p in row] for row in money_matrix(values)] == [
        ["12.0", "7.0"],
        ["3.0", "40.0"],
    ]


def test_rows_index_from_the_end_and_stop_at_the_last_session() -> None:
    values = np.arange(12.0).reshape(4, 3) + 0.123456
    matrix = money_matrix(values)
    assert len(matrix) == 4
    assert matrix[-1] == _eager(values)[3]
    assert sum(1 for _ in matrix) == 4


def test_a_row_is_converted_once_and_the_matrix_is_remembered_per_array() -> None:
    values = np.ones((3, 2)) * 1.5
    matrix = money_matrix(values)
    assert matrix[1] is matrix[1]
    assert money_matrix(values) is matrix
    assert money_matrix(values.copy()) is not matrix
