"""Order state machine: the only legal moves between OrderStatus values.

NEW -> SUBMITTED (we sent it) -> ACCEPTED (the venue acknowledged it) ->
PARTIALLY_FILLED* -> FILLED; any open state may end CANCELED, REJECTED or EXPIRED.
A venue may skip ACCEPTED and fill or reject a SUBMITTED order directly. Terminal
states never change again.
"""

from __future__ import annotations

from qgtm.core.enums import OrderStatus as S

LEGAL_TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELED}),
    S.SUBMITTED: frozenset(
        {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}
    ),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


class IllegalTransitionError(ValueError):
    """An order was asked to move between two states that are not connected."""


def is_legal(current: S, new: S) -> bool:
    """True if an order may move from `current` to `new` (staying put is always legal)."""
    return new == current or new in LEGAL_TRANSITIONS[current]


def transition(current: S, new: S) -> S:
    """`new` if the move is legal, else IllegalTransitionError naming both states."""
    if not is_legal(current, new):
        raise IllegalTransitionError(f"order cannot move from {current.value} to {new.value}")
    return new


def is_terminal(status: S) -> bool:
    """True for FILLED, CANCELED, REJECTED, EXPIRED."""
    return not LEGAL_TRANSITIONS[status]
