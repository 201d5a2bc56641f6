"""Engine commands that show the self-learning loop to the terminal and the attach socket."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from qgtm.core.results import DecayPoint, ModelInfo
from qgtm.engine.learn.loop import LearningLoop


class _Engine(Protocol):
    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...


def register_learn_commands(engine: _Engine, loop: LearningLoop) -> None:
    """learn.status, learn.models, learn.history: typed rows for the Models screen."""
    engine.bind("learn.status", loop.status)
    engine.bind(
        "learn.models",
        lambda strategy: [
            ModelInfo(**{**asdict(m), "stage": m.stage.value}) for m in loop.registry.list(strategy)
        ],
    )
    engine.bind(
        "learn.history",
        lambda strategy, limit: [
            DecayPoint(session, status, sharpe)
            for session, status, sharpe in loop.decay_history(strategy, limit)
        ],
    )
