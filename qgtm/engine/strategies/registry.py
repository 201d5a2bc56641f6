"""The registry of every strategy by name; the terminal and `qgtm strategies` read it."""

from __future__ import annotations

from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.tsmom import TimeSeriesMomentum

STRATEGIES: dict[str, type[BaseStrategy]] = {cls.name: cls for cls in (TimeSeriesMomentum,)}


class UnknownStrategyError(KeyError):
    """A strategy name that is not registered."""

    def __str__(self) -> str:
        return f"unknown strategy {self.args[0]!r}; known: {', '.join(sorted(STRATEGIES))}"


def create(name: str, **params: float) -> BaseStrategy:
    """Instantiate the registered strategy `name` with parameter overrides."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(name) from None
    return cls(**params)
