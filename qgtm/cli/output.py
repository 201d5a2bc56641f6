"""What every `--json` command prints: strict JSON that jq and JSON.parse read."""

from __future__ import annotations

import json
import math
from typing import Any


def json_ready(value: Any) -> Any:
    """`value` with every float that is not finite (an infinite minimum track record, a
    NaN statistic) replaced by None, in dicts, lists and tuples at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """--json output: strict JSON (RFC 8259) that jq and JSON.parse read. Python's json
    would print Infinity and NaN, which they reject; those are null here."""
    print(json.dumps(json_ready(value), indent=2, default=str, allow_nan=False))
