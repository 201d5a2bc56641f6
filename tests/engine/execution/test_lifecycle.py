import pytest
from hypothesis import given
from hypothesis import strategies as st

from qgtm.core.enums import OrderStatus as S
from qgtm.engine.execution.lifecycle import (
    IllegalTransitionError,
    is_legal,
    is_terminal,
    transition,
)

TERMINAL = {S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}


def test_the_happy_path_is_legal():
    status = S.NEW
    for nxt in (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED):
        status = transition(status, nxt)
    assert status is S.FILLED


def test_a_filled_order_cannot_be_cancelled():
    with pytest.raises(IllegalTransitionError, match="FILLED to CANCELED"):
        transition(S.FILLED, S.CANCELED)


def test_an_order_never_fills_before_it_is_sent():
    assert not is_legal(S.NEW, S.FILLED)
    assert not is_legal(S.NEW, S.PARTIALLY_FILLED)


@given(st.lists(st.sampled_from(list(S)), max_size=12))
def test_any_walk_through_transition_keeps_terminal_states_final_and_fills_monotone(moves):
    status = S.NEW
    seen_partial = False
    for move in moves:
        try:
            new = transition(status, move)
        except IllegalTransitionError:
            assert move not in {status} and move not in _legal_from(status)
            continue
        if status in TERMINAL:
            assert new == status
        if seen_partial:
            assert new not in {S.NEW, S.SUBMITTED, S.ACCEPTED}
        seen_partial = seen_partial or new is S.PARTIALLY_FILLED
        status = new
    assert is_terminal(status) == (status in TERMINAL)


def _legal_from(status: S) -> set[S]:
    return {s for s in S if is_legal(status, s)}
