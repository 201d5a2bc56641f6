"""The attach socket's wire format: one JSON object per line, encoded with msgspec.

A client sends a `protocol.Request` (a declared command and its arguments); the server
sends `protocol.Reply` (tagged "reply") and, to subscribed sessions, `SnapshotPush`
(tagged "snapshot"). A reply's result is decoded by the declared result type of the
command it answers (`protocol.COMMANDS[name].result`): only protocol types cross the
wire, and nothing the daemon sends names a type to import. msgspec encodes the core
dataclasses and structs natively (date/datetime as ISO 8601, Decimal as a string, enums
by value) and decodes them back exactly.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from qgtm.core.protocol import (
    COMMANDS,
    Reply,
    Request,
    ServerMessage,
    SnapshotPush,
    command,
)
from qgtm.core.snapshot import EngineSnapshot

MAX_LINE = 64 * 1024 * 1024

_encoder = msgspec.json.Encoder(decimal_format="string")
_request_decoder = msgspec.json.Decoder(Request)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_snapshot_decoder = msgspec.json.Decoder(EngineSnapshot)


def _line(message: Any) -> bytes:
    return _encoder.encode(message) + b"\n"


def encode_request(request: Request) -> bytes:
    """A request as a JSON line."""
    return _line(request)


def decode_request(line: bytes) -> Request:
    """A JSON line back into a Request; ValueError when it is not one."""
    try:
        return _request_decoder.decode(line)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ValueError(f"attach protocol: {exc}") from None


def reply(request_id: int | None, result: Any = None) -> bytes:
    """A successful reply carrying `result` as a JSON line."""
    return _line(Reply(request_id, True, msgspec.Raw(_encoder.encode(result))))


def refusal(request_id: int | None, error: str) -> bytes:
    """A failed reply as a JSON line."""
    return _line(Reply(request_id, False, error=error))


def push(snapshot: EngineSnapshot) -> bytes:
    """A snapshot pushed to a subscribed session, as a JSON line."""
    return _line(SnapshotPush(snapshot))


def decode_server(line: bytes) -> Reply | SnapshotPush:
    """A line from the server: a Reply or a SnapshotPush; ValueError otherwise."""
    try:
        return _server_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ValueError(f"attach protocol: {exc}") from None


@functools.cache
def _result_decoder(name: str) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(COMMANDS[name].result)


def decode_result(name: str, raw: msgspec.Raw | bytes) -> Any:
    """A reply's result, decoded as the declared result type of the command `name`."""
    command(name)  # UnknownCommandError for a name the protocol does not declare
    return _result_decoder(name).decode(raw)


def encode_snapshot(snapshot: EngineSnapshot) -> bytes:
    """A snapshot as JSON (bytes, no newline)."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes | str) -> EngineSnapshot:
    """JSON back into an EngineSnapshot."""
    return _snapshot_decoder.decode(data)
