"""The daemon's attach socket: `engine.sock` in the data dir, reachable only by its owner.

The socket file is created with mode 0600 and every connection's peer credentials
(SO_PEERCRED) must carry the daemon's own uid. Protocol: JSON lines (see `wire`).
Requests `{"id": n, "op": ...}` get `{"id": n, "ok": true, "result": ...}` or
`{"id": n, "ok": false, "error": "..."}`. Ops: hello, snapshot, subscribe (then the
server pushes `{"push": "snapshot", "data": ...}` on every new snapshot), pause,
resume, faster, slower, advance(sessions), call(name, kwargs) for any registered engine
command. Every state-changing op is audited as OPERATOR_ACTION before it runs: actor =
the peer's user name from SO_PEERCRED, payload = the op, its arguments, peer uid and pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import struct
from pathlib import Path
from typing import Any, Protocol

from qgtm.engine.live import wire
from qgtm.engine.live.engine import TradingEngine, UnknownCommandError


class ControlledDaemon(Protocol):
    """What the attach socket needs of the daemon serving it (`TradingDaemon` is one),
    stated here so this module does not import the daemon that starts it."""

    engine: TradingEngine
    data_dir: Path

    def audit_operator_action(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record who asked for what before it runs."""


log = logging.getLogger(__name__)

SOCKET_NAME = "engine.sock"
PUSH_INTERVAL_S = 0.1
_READ_ONLY = {"hello", "snapshot", "subscribe"}


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
            writer.write(wire.encode({"ok": False, "error": "not the daemon's owner"}))
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
                    request = wire.decode(line)
                except ValueError as exc:
                    await self._send(writer, lock, {"ok": False, "error": str(exc)})
                    continue
                if request.get("op") == "subscribe" and pusher is None:
                    pusher = asyncio.create_task(self._push(writer, lock))
                reply = await self._reply(request, actor, peer)
                await self._send(writer, lock, reply)
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

    async def _send(
        self, writer: asyncio.StreamWriter, lock: asyncio.Lock, message: dict[str, Any]
    ) -> None:
        async with lock:
            writer.write(wire.encode(message))
            await writer.drain()

    async def _push(self, writer: asyncio.StreamWriter, lock: asyncio.Lock) -> None:
        sent = None
        while True:
            snap = self.engine.snapshot()
            key = (snap.version, snap.running, snap.speed)
            if key != sent:
                await self._send(writer, lock, {"push": "snapshot", "data": snap})
                sent = key
            await asyncio.sleep(PUSH_INTERVAL_S)

    async def _reply(
        self, request: dict[str, Any], actor: str, peer: dict[str, int] | None = None
    ) -> dict[str, Any]:
        rid = request.get("id")
        op = request.get("op")
        try:
            if op not in _READ_ONLY:
                detail = redact({k: v for k, v in request.items() if k not in ("id", "op")})
                detail.update(peer or {})
                await asyncio.to_thread(self.daemon.audit_operator_action, actor, str(op), detail)
            result = await self._run(op, request)
        except UnknownCommandError as exc:
            return {"id": rid, "ok": False, "error": str(exc)}
        except (TypeError, ValueError, KeyError, RuntimeError) as exc:
            return {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"id": rid, "ok": True, "result": result}

    async def _run(self, op: Any, request: dict[str, Any]) -> Any:
        engine = self.engine
        if op == "hello":
            return {
                "pid": os.getpid(),
                "data_dir": str(self.daemon.data_dir),
                "commands": sorted(engine._commands),
            }
        if op in ("snapshot", "subscribe"):
            return engine.snapshot()
        if op == "pause":
            engine.pause()
        elif op == "resume":
            engine.resume()
        elif op == "faster":
            engine.faster()
        elif op == "slower":
            engine.slower()
        elif op == "speed":
            engine.set_speed(float(request["speed"]))
        elif op == "advance":
            for _ in range(int(request.get("sessions", 1))):
                if not await asyncio.to_thread(engine.step):
                    break
        elif op == "call":
            name = str(request["name"])
            kwargs = request.get("kwargs") or {}
            value = await asyncio.to_thread(engine.call, name, **kwargs)
            return wire.pack_result(value)
        else:
            raise ValueError(f"unknown op {op!r}")
        return engine.snapshot()
