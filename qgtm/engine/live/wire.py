"""The attach socket's wire format: one JSON object per line, encoded with msgspec.

msgspec encodes the core dataclasses natively (date/datetime as ISO 8601, Decimal as a
string, enums by value) and decodes them back into the declared types, so an
EngineSnapshot survives the round trip exactly. Command results carry their type name
(`module:QualName`) when it is a qgtm dataclass, so the client can rebuild it.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import msgspec

from qgtm.core.snapshot import EngineSnapshot

MAX_LINE = 64 * 1024 * 1024

_encoder = msgspec.json.Encoder(decimal_format="string")
_snapshot_decoder = msgspec.json.Decoder(EngineSnapshot)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line."""
    return _encoder.encode(message) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """A JSON line back into a plain dict."""
    value = msgspec.json.decode(line)
    if not isinstance(value, dict):
        raise ValueError("attach protocol: expected a JSON object")
    return value


def encode_snapshot(snapshot: EngineSnapshot) -> bytes:
    """A snapshot as JSON (bytes, no newline)."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes | str | dict[str, Any]) -> EngineSnapshot:
    """JSON (or the already-parsed object) back into an EngineSnapshot."""
    if isinstance(data, dict):
        return msgspec.convert(data, EngineSnapshot)
    return _snapshot_decoder.decode(data)


def _qgtm_kind(value: Any) -> str | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__.startswith("qgtm."):
            return f"{cls.__module__}:{cls.__qualname__}"
    return None


def pack_result(value: Any) -> dict[str, Any]:
    """A command result with its qgtm dataclass type, if any (also for a list of them)."""
    kind, many = _qgtm_kind(value), False
    if kind is None and isinstance(value, list | tuple) and value:
        kinds = {_qgtm_kind(item) for item in value}
        if len(kinds) == 1 and None not in kinds:
            kind, many = kinds.pop(), True
    packed = {"type": kind, "data": msgspec.to_builtins(value, builtin_types=())}
    if many:
        packed["many"] = True
    return packed


def unpack_result(packed: dict[str, Any]) -> Any:
    """Rebuild a result packed by `pack_result` (only qgtm types are imported)."""
    kind, data = packed.get("type"), packed.get("data")
    if not kind:
        return data
    module, _, name = kind.partition(":")
    if not module.startswith("qgtm."):
        raise ValueError(f"attach protocol: refusing result type {kind!r}")
    cls: Any = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part)
    if packed.get("many"):
        return [msgspec.convert(item, cls, strict=False) for item in data]
    return msgspec.convert(data, cls, strict=False)
