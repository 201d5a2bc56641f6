"""The engine answers exactly the protocol's commands, and every result crosses the
attach wire as its declared type."""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.protocol import COMMANDS, ENGINE_COMMANDS, Kind
from qgtm.engine.live import wire
from qgtm.engine.live.daemon import TradingDaemon
from qgtm.engine.live.engine import TradingEngine

# Sample arguments for the reads that need some; reads left out need state a short demo
# run does not have (a backtest job or stored run; they have their own tests).
READ_ARGS = {
    "market.bars": {"symbol": "GLD", "lookback": 5},
    "strategies.signals": {"strategy": "tsmom", "limit": 3},
    "learn.history": {"strategy": "tsmom"},
    "execution.children": {"parent_id": "none"},
}
NEEDS_A_JOB_OR_RUN = {"backtest.status", "backtest.load"}


@pytest.fixture
def served(short_config: Config, tmp_path: Path):
    engine = TradingEngine(short_config, tmp_path)
    TradingDaemon(short_config, tmp_path, engine, control_socket=False, watchdog=False)
    for _ in range(3):
        engine.step()
    yield engine
    engine.close()


def test_the_daemon_binds_every_engine_command_of_the_protocol_and_no_other(served) -> None:
    assert served.bound_commands() == ENGINE_COMMANDS


def test_every_read_result_round_trips_through_the_wire_as_its_declared_type(served) -> None:
    reads = sorted(
        name
        for name in ENGINE_COMMANDS
        if COMMANDS[name].kind is Kind.READ and name not in NEEDS_A_JOB_OR_RUN
    )
    assert len(reads) >= 15
    for name in reads:
        result = served.call(name, **READ_ARGS.get(name, {}))
        reply = wire.decode_server(wire.reply(1, result))
        assert reply.ok and wire.decode_result(name, reply.result) == result, name
