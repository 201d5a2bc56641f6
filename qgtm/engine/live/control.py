"""The daemon's attach socket: `engine.sock` in the data dir, reachable only by its owner.

The socket file is created with mode 0600 and every connection's peer credentials
(SO_PEERCRED) must carry the daemon's own uid. Protocol: JSON lines (see `wire`) of
the commands declared in `qgtm.core.protocol`. `engine.hello` answers who this daemon is
(pid, data dir, start time); `engine.subscribe` makes the server push every new
snapshot; every other command runs on the engine (`TradingEngine.call`). Every ACTION
command is audited as OPERATOR_ACTION before it runs: actor = the peer's user name from
SO_PEERCRED, payload = the command, its arguments (secrets redacted), peer uid and pid.
READ commands (the terminal's polls) are not operator actions and are not audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import struct
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qgtm.core.protocol import (
    COMMANDS,
    Command,
    Hello,
    Request,
    Scope,
    UnknownCommandError,
    command,
)
from qgtm.engine.live import wire

if TYPE_CHECKING:  # the engine's type only: attaching must not load the engine
    from qgtm.engine.live.engine import TradingEngine


class ControlledDaemon(Protocol):
    """What the attach socket needs of the daemon serving it (`TradingDaemon` is one),
    stated here so this module does not import the daemon that starts it."""

    engine: TradingEngine
    data_dir: Path
    started_at: datetime

    def audit_operator_action(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record who asked for what before it runs."""


log = logging.getLogger(__name__)

SOCKET_NAME = "engine.sock"
PUSH_INTERVAL_S = 0.1
SUBSCRIBE = "engine.subscribe"


def socket_path(data_dir: Path) -> Path:
    """Where the daemon of `data_dir` listens."""
    return data_dir / SOCKET_NAME


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (Linux SO_PEERCRED,
    filled in by the kernel at connect time, so a client cannot forge it)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    return peer_credentials(sock)[1]


_SECRET_WORDS = ("passphrase", "password", "secret", "token", "api_key")


def redact(value: Any) -> Any:
    """`value` with every field named like a secret replaced by "***" (for the audit log:
    an operator's reset passphrase travels in the request but must never be recorded)."""
    if isinstance(value, dict):
        return {
            k: "***" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


class ControlServer:
    """Serves the daemon's state and commands to attached terminals."""

    def __init__(self, daemon: ControlledDaemon) -> None:
        self.daemon = daemon
        self.engine = daemon.engine
        self.path = socket_path(daemon.data_dir)
        self.clients = 0

    async def serve(self) -> None:
        """Listen until cancelled; removes the socket file afterwards."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                self._handle, path=str(self.path), limit=wire.MAX_LINE
            )
        except OSError as exc:  # e.g. a data dir path longer than AF_UNIX allows
            self.daemon.engine.alert(f"attach socket unavailable at {self.path}: {exc}")
            log.error("event=control_unavailable path=%s error=%r", self.path, exc)
            await asyncio.Event().wait()  # the daemon runs on, without attach
            return
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        log.info("event=control_listening path=%s", self.path)
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _gid = peer_credentials(sock)
        if uid != os.getuid():
            log.warning("event=control_refused peer_uid=%d", uid)
            writer.write(wire.refusal(None, "not the daemon's owner"))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        actor = _user(uid)
        peer = {"peer_uid": uid, "peer_pid": pid}
        self.clients += 1
        lock = asyncio.Lock()
        pusher: asyncio.Task[None] | None = None
        try:
            while line := await reader.readline():
                try:
                    request = wire.decode_request(line)
                except ValueError as exc:
                    await self._send(writer, lock, wire.refusal(None, str(exc)))
                    continue
                if request.command == SUBSCRIBE and pusher is None:
                    pusher = asyncio.create_task(self._push(writer, lock))
                await self._send(writer, lock, await self._reply(request, actor, peer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # The daemon is stopping with this terminal attached. End the handler
            # normally: on Python 3.11 the stream server's done-callback calls
            # task.exception() and logs a traceback for a cancelled handler task.
            log.info("event=control_detached reason=daemon_stopping peer_pid=%d", pid)
        finally:
            self.clients -= 1
            if pusher is not None:
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await pusher
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, lock: asyncio.Lock, line: bytes) -> None:
        async with lock:
            writer.write(line)
            await writer.drain()

    async def _push(self, writer: asyncio.StreamWriter, lock: asyncio.Lock) -> None:
        sent = None
        while True:
            snap = self.engine.snapshot()
            key = (snap.version, snap.running, snap.speed)
            if key != sent:
                await self._send(writer, lock, wire.push(snap))
                sent = key
            await asyncio.sleep(PUSH_INTERVAL_S)

    async def _reply(
        self, request: Request, actor: str, peer: dict[str, int] | None = None
    ) -> bytes:
        """Run one request; ACTION commands are audited (who, what, from where) first."""
        try:
            spec = command(request.command)
            if not spec.is_read:
                detail: dict[str, Any] = {"args": redact(request.args), **(peer or {})}
                await asyncio.to_thread(self.daemon.audit_operator_action, actor, spec.name, detail)
            result = await self._run(spec, request.args)
        except UnknownCommandError as exc:
            return wire.refusal(request.id, str(exc))
        except (TypeError, ValueError, KeyError, RuntimeError) as exc:
            return wire.refusal(request.id, f"{type(exc).__name__}: {exc}")
        return wire.reply(request.id, result)

    def hello(self) -> Hello:
        """Who this daemon is, for a new session (the terminal's ATTACHED banner)."""
        session = {name for name, c in COMMANDS.items() if c.scope is Scope.SESSION}
        return Hello(
            pid=os.getpid(),
            data_dir=str(self.daemon.data_dir),
            started_at=self.daemon.started_at,
            commands=tuple(sorted(self.engine.bound_commands() | session)),
        )

    async def _run(self, spec: Command, args: dict[str, Any]) -> Any:
        if spec.name == "engine.hello":
            return self.hello()
        if spec.name == SUBSCRIBE:
            return self.engine.snapshot()
        return await asyncio.to_thread(self.engine.call, spec.name, **args)
