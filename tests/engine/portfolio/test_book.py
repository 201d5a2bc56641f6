from datetime import datetime
from decimal import Decimal

from qgtm.core.enums import Side
from qgtm.core.types import Fill
from qgtm.engine.portfolio.book import Book

T = datetime(2024, 1, 2, 9, 30)


def _fill(side: Side, qty: int, price: str, commission: str = "0") -> Fill:
    return Fill("f", "o", "GLD", side, qty, Decimal(price), Decimal(commission), T)


def test_buying_moves_cash_by_price_times_quantity_plus_commission():
    book = Book(cash=Decimal("10000"))
    book.apply_fill(_fill(Side.BUY, 10, "100.50", "0.05"))
    assert book.cash == Decimal("8994.95")
    assert book.holdings["GLD"].quantity == 10


def test_adding_reweights_the_average_price_and_reducing_keeps_it():
    book = Book(cash=Decimal(0))
    book.apply_fill(_fill(Side.BUY, 10, "100"))
    book.apply_fill(_fill(Side.BUY, 30, "104"))
    assert book.holdings["GLD"].avg_price == Decimal("103")
    book.apply_fill(_fill(Side.SELL, 20, "110"))
    assert book.holdings["GLD"].avg_price == Decimal("103")
    assert book.holdings["GLD"].quantity == 20


def test_crossing_through_zero_starts_a_new_position_at_the_fill_price():
    book = Book(cash=Decimal(0))
    book.apply_fill(_fill(Side.BUY, 10, "100"))
    book.apply_fill(_fill(Side.SELL, 15, "90"))
    assert book.holdings["GLD"].quantity == -5
    assert book.holdings["GLD"].avg_price == Decimal("90")


def test_equity_is_cash_plus_marked_positions_to_the_cent():
    book = Book(cash=Decimal("1000"))
    book.apply_fill(_fill(Side.BUY, 3, "33.33"))
    assert book.equity({"GLD": Decimal("33.34")}) == Decimal("1000.03")
