"""The engine's protocol: every command a client may send, declared once.

A command has a name ("area.verb"), an argument struct, a result type, the role a
caller needs (enforced by the roles issue on top of this table) and a kind: a READ
only looks (never audited as an operator action), an ACTION changes something (audited
with the caller's identity before it runs). The engine binds one handler to each
ENGINE command (`TradingEngine.bind`); SESSION commands (hello, subscribe) are answered
by the attach server itself. Over the attach socket a request names the command and
carries its arguments; the reply's result is decoded by the command's declared result
type, so nothing but these types crosses the wire.

Results are core types: frozen dataclasses of `snapshot`/`risk_status` and the msgspec
structs of `results`. A few results are documents by nature (a backtest run's summary,
whose report holds whatever statistics the runner computed): those are declared as
`dict[str, Any]` inside a typed envelope.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from qgtm.core.quality import DatasetStatus, QualityFailure
from qgtm.core.results import (
    BacktestJobStatus,
    Bar,
    BlotterRow,
    ChildOrderRow,
    DecayPoint,
    FlattenPlan,
    LearnStatus,
    ModelInfo,
    OutboxStatus,
    ReconRun,
    SignalRecord,
    StoredRunRow,
    StrategyInfo,
    TcaReport,
)
from qgtm.core.risk_status import ResetResult, RiskStatus
from qgtm.core.snapshot import AuditPage, EngineSnapshot


class Role(StrEnum):
    """Who may send a command: viewers read, traders run the book, admins change who
    may do what (and the config); subscribers only receive publications."""

    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"
    SUBSCRIBER = "subscriber"


class Kind(StrEnum):
    """READ commands only look; ACTION commands change state and are audited."""

    READ = "read"
    ACTION = "action"


class Scope(StrEnum):
    """ENGINE commands have an engine handler; SESSION commands belong to one attach
    connection (the attach server answers them)."""

    ENGINE = "engine"
    SESSION = "session"


class Args(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Arguments of a command that takes none (and the base of every argument struct)."""


class Command(msgspec.Struct, frozen=True):
    """One declared command: what it takes, what it returns, who may send it."""

    name: str
    args: type[Args]
    result: Any
    role: Role
    kind: Kind
    summary: str
    scope: Scope = Scope.ENGINE

    @property
    def is_read(self) -> bool:
        """True when the command only looks (never an operator action)."""
        return self.kind is Kind.READ


class UnknownCommandError(KeyError):
    """A client asked for (or the engine bound) a command the protocol does not declare,
    or one that nothing answers."""

    def __str__(self) -> str:
        return str(self.args[0])


# ----- argument structs ---------------------------------------------------------------
class SpeedArgs(Args, frozen=True):
    """Sessions per second of the replay; 0 runs as fast as possible."""

    speed: float


class AdvanceArgs(Args, frozen=True):
    """How many sessions to process now."""

    sessions: int = 1


class BarsArgs(Args, frozen=True):
    """One symbol's newest daily bars."""

    symbol: str
    lookback: int = 250


class RecentSignalsArgs(Args, frozen=True):
    """Stored signals, of one symbol or all."""

    symbol: str | None = None
    limit: int = 200


class FlattenArgs(Args, frozen=True):
    """The closing orders' ids of the preview the operator confirmed."""

    expected: tuple[str, ...]


class StrategySignalsArgs(Args, frozen=True):
    """One strategy's newest recorded signals."""

    strategy: str
    limit: int = 20


class BacktestRunArgs(Args, frozen=True):
    """One Research run: strategy, window, overrides, optional sweep."""

    strategy: str
    start: str | None = None
    end: str | None = None
    params: dict[str, float] | None = None
    runner: str = "event"
    sweep: str | None = None
    flags: dict[str, Any] | None = None


class JobArgs(Args, frozen=True):
    """A background backtest job by id."""

    job: int


class RunArgs(Args, frozen=True):
    """A stored backtest run by id (or unique prefix)."""

    run: str


class LimitArgs(Args, frozen=True):
    """The newest `limit` rows."""

    limit: int = 200


class ParentArgs(Args, frozen=True):
    """One parent order by client order id."""

    parent_id: str


class RefreshArgs(Args, frozen=True):
    """Data sources to refresh; None: every keyed source."""

    sources: tuple[str, ...] | None = None


class OperatorArgs(Args, frozen=True):
    """An operator's name and passphrase (redacted from every audit record)."""

    operator: str
    passphrase: str


class ApproverArgs(Args, frozen=True):
    """The second operator's name and passphrase."""

    approver: str
    passphrase: str


class ModelsArgs(Args, frozen=True):
    """Registered model versions, of one strategy or all."""

    strategy: str | None = None


class DecayHistoryArgs(Args, frozen=True):
    """One strategy's decay history, oldest first."""

    strategy: str
    limit: int = 500


class AuditSearchArgs(Args, frozen=True):
    """Audit records matching every given filter, newest first."""

    event: str | None = None
    actor: str | None = None
    text: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 200


class Hello(msgspec.Struct, frozen=True):
    """The daemon's answer to a new attach session: who it is and since when."""

    pid: int
    data_dir: str
    started_at: datetime
    commands: tuple[str, ...]


# ----- the command table --------------------------------------------------------------
V, T, A = Role.VIEWER, Role.TRADER, Role.ADMIN
READ, ACTION = Kind.READ, Kind.ACTION

_TABLE: tuple[Command, ...] = (
    Command("engine.hello", Args, Hello, V, READ, "daemon pid, data dir, start", Scope.SESSION),
    Command("engine.subscribe", Args, EngineSnapshot, V, READ, "stream snapshots", Scope.SESSION),
    Command("engine.snapshot", Args, EngineSnapshot, V, READ, "the latest snapshot"),
    Command("engine.pause", Args, EngineSnapshot, T, ACTION, "hold the replay clock"),
    Command("engine.resume", Args, EngineSnapshot, T, ACTION, "restart the replay clock"),
    Command("engine.faster", Args, EngineSnapshot, T, ACTION, "double the replay speed"),
    Command("engine.slower", Args, EngineSnapshot, T, ACTION, "halve the replay speed"),
    Command("engine.speed", SpeedArgs, EngineSnapshot, T, ACTION, "set the replay speed"),
    Command("engine.advance", AdvanceArgs, EngineSnapshot, T, ACTION, "process sessions now"),
    Command("engine.flatten_preview", Args, FlattenPlan, V, READ, "what a flatten would do"),
    Command("engine.flatten", FlattenArgs, FlattenPlan, T, ACTION, "close every holding"),
    Command("market.bars", BarsArgs, list[Bar], V, READ, "daily bars up to the last close"),
    Command("signals.recent", RecentSignalsArgs, list[SignalRecord], V, READ, "stored signals"),
    Command("strategies.list", Args, list[StrategyInfo], V, READ, "the strategy library"),
    Command(
        "strategies.signals",
        StrategySignalsArgs,
        list[SignalRecord],
        V,
        READ,
        "one strategy's signals",
    ),
    Command("backtest.strategies", Args, list[str], V, READ, "strategies a run may use"),
    Command("backtest.run", BacktestRunArgs, BacktestJobStatus, T, ACTION, "queue a run"),
    Command("backtest.status", JobArgs, BacktestJobStatus, V, READ, "one job's progress"),
    Command("backtest.cancel", JobArgs, BacktestJobStatus, T, ACTION, "cancel a job"),
    Command("backtest.jobs", Args, list[BacktestJobStatus], V, READ, "every job"),
    Command("backtest.stored", Args, list[StoredRunRow], V, READ, "stored runs"),
    Command("backtest.load", RunArgs, dict[str, Any], V, READ, "a stored run's summary"),
    Command("backtest.market", Args, dict[str, Any], V, READ, "lend the processed bars"),
    Command("execution.blotter", LimitArgs, list[BlotterRow], V, READ, "parent orders"),
    Command("execution.children", ParentArgs, list[ChildOrderRow], V, READ, "a parent's slices"),
    Command("execution.tca", LimitArgs, TcaReport, V, READ, "transaction costs"),
    Command("data.status", Args, list[DatasetStatus], V, READ, "stored datasets"),
    Command("data.failures", LimitArgs, list[QualityFailure], V, READ, "quality failures"),
    Command("data.refresh", RefreshArgs, list[str], T, ACTION, "refresh data sources"),
    Command("risk.status", Args, RiskStatus, V, READ, "limits, tier, reset requests"),
    Command("risk.request_reset", OperatorArgs, ResetResult, T, ACTION, "ask for a reset"),
    Command("risk.approve_reset", ApproverArgs, ResetResult, A, ACTION, "approve a reset"),
    Command("risk.add_operator", OperatorArgs, ResetResult, A, ACTION, "add an operator"),
    Command("learn.status", Args, list[LearnStatus], V, READ, "decay and jobs per strategy"),
    Command("learn.models", ModelsArgs, list[ModelInfo], V, READ, "registered models"),
    Command("learn.history", DecayHistoryArgs, list[DecayPoint], V, READ, "a strategy's decay"),
    Command("publish.status", Args, OutboxStatus, V, READ, "the publication outbox"),
    Command("recon.run", Args, ReconRun, T, ACTION, "reconcile with the broker now"),
    Command("audit.search", AuditSearchArgs, AuditPage, V, READ, "search the audit log"),
)

COMMANDS: dict[str, Command] = {command.name: command for command in _TABLE}
"""Every command of the engine protocol by name."""

ENGINE_COMMANDS: frozenset[str] = frozenset(
    name for name, command in COMMANDS.items() if command.scope is Scope.ENGINE
)
"""The commands the engine must bind a handler to."""


def command(name: str) -> Command:
    """The declared command `name`; UnknownCommandError naming the known ones."""
    try:
        return COMMANDS[name]
    except KeyError:
        known = ", ".join(sorted(COMMANDS))
        raise UnknownCommandError(f"unknown engine command {name!r} (known: {known})") from None


def parse_args(spec: Command, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` checked against the command's argument struct (names and types, defaults
    filled in), as keyword arguments for its handler. ValueError on a mistake."""
    try:
        args = msgspec.convert(kwargs, spec.args)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{spec.name}: {exc}") from None
    return {name: getattr(args, name) for name in args.__struct_fields__}


class EngineClient(Protocol):
    """What a screen may ask of the engine: the terminal's only door to it, in process
    (`qgtm.engine.live.inprocess`) or attached to a daemon (`qgtm.engine.live.attach`).

    `info` is the daemon's hello when attached, None in process."""

    info: Hello | None

    def snapshot(self) -> EngineSnapshot:
        """The latest state; cheap, call it as often as you like."""
        ...

    async def start(self) -> None:
        """Begin running (or attach); called once when the app mounts."""
        ...

    async def stop(self) -> None:
        """Stop running (or detach) cleanly; called when the app exits."""
        ...

    def pause(self) -> None:
        """Stop the replay clock after the current step."""
        ...

    def resume(self) -> None:
        """Restart the replay clock."""
        ...

    def faster(self) -> None:
        """Double the replay speed."""
        ...

    def slower(self) -> None:
        """Halve the replay speed."""
        ...

    async def advance(self, sessions: int) -> None:
        """Step the engine by `sessions` sessions now, whether paused or not."""
        ...

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run the command `name` of the protocol (e.g. "risk.request_reset") with its
        arguments and return its result, of the command's declared result type."""
        ...


# ----- the attach wire's envelopes ----------------------------------------------------
class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A client's request: a declared command and its arguments."""

    id: int
    command: str
    args: dict[str, Any] = {}


class Reply(msgspec.Struct, frozen=True, tag="reply", tag_field="kind", omit_defaults=True):
    """The answer to request `id`: its result (of the command's result type) or an error."""

    id: int | None
    ok: bool
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: str = ""


class SnapshotPush(msgspec.Struct, frozen=True, tag="snapshot", tag_field="kind"):
    """A new snapshot pushed to a subscribed session."""

    data: EngineSnapshot


ServerMessage = Reply | SnapshotPush
"""What the attach server sends."""
