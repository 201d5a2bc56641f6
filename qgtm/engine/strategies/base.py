"""BaseStrategy: what every strategy declares and the one method it implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel


@dataclass(frozen=True, slots=True)
class Parameter:
    """A tunable parameter with its default and the range a retrain may search."""

    name: str
    default: float
    low: float
    high: float
    description: str


class BaseStrategy(ABC):
    """A rule that turns point-in-time history into Signals.

    `generate` receives only bars strictly before the decision session; it must not
    read anything else about the future.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    reference: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    factor_exposures: ClassVar[dict[str, float]] = {}
    capacity_usd: ClassVar[float] = 0.0

    def __init__(self, **overrides: float) -> None:
        known = {p.name: p for p in self.parameters}
        unknown = set(overrides) - set(known)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.params: dict[str, float] = {p.name: p.default for p in self.parameters}
        for key, value in overrides.items():
            spec = known[key]
            if not spec.low <= value <= spec.high:
                raise ValueError(
                    f"{self.name}: {key}={value} outside its range [{spec.low}, {spec.high}]"
                )
            self.params[key] = value

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Sessions of history needed before the first signal."""

    @abstractmethod
    def generate(self, history: PricePanel, as_of: date) -> list[Signal]:
        """Signals for decision session `as_of` from `history` (bars before `as_of`)."""
