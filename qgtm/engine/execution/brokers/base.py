"""The one Broker protocol every venue adapter implements."""

from __future__ import annotations

from typing import Protocol

from qgtm.core.types import Order


class Broker(Protocol):
    """A venue that accepts orders; fills come back through the engine's step."""

    name: str

    def submit(self, order: Order) -> None:
        """Send an order; submitting an id the broker already has is a no-op."""
        ...

    def open_orders(self) -> list[Order]:
        """Orders sent and not yet filled, cancelled or rejected."""
        ...
