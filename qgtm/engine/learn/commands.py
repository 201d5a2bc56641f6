"""Engine commands that show the self-learning loop to the terminal and the attach socket."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from qgtm.engine.learn.loop import LearningLoop


class _Engine(Protocol):
    def register_command(self, name: str, handler: Any) -> None: ...


def register_learn_commands(engine: _Engine, loop: LearningLoop) -> None:
    """learn.status, learn.models, learn.history: plain data for the Models screen."""
    engine.register_command("learn.status", lambda: [asdict(s) for s in loop.status()])
    engine.register_command(
        "learn.models",
        lambda strategy=None: [
            {**asdict(m), "stage": m.stage.value} for m in loop.registry.list(strategy)
        ],
    )
    engine.register_command(
        "learn.history",
        lambda strategy, limit=500: [
            {"session": s, "status": st, "sharpe": sh}
            for s, st, sh in loop.decay_history(strategy, limit)
        ],
    )
