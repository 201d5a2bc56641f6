"""Keeping the key path short while the engine works in the same process.

The terminal and the in-process engine share one interpreter, so a full (generation 2)
collection of Python's cyclic garbage collector stops the terminal too. With the demo
market, strategies and stores loaded, one such collection took 200-400 ms on a busy
2-core machine (measured with `gc.callbacks` during `bench/key_latency.py`): the whole
p99 of a key press. Almost all of those objects live as long as the process, so after
start-up they are collected once and moved to the permanent generation
(`gc.freeze`, Python >= 3.7), which later collections do not traverse. Objects that die
later are still freed by reference counting; only reference cycles among the frozen
start-up objects are never reclaimed, which for load-once data is nothing.
"""

from __future__ import annotations

import gc

FREEZE_AT_START = True
"""Whether the terminal freezes the start-up heap (benchmarks turn it off to compare)."""


def freeze_startup_heap() -> int:
    """Collect garbage once, then exempt every surviving object from later collections.

    Returns how many objects were frozen (0 when FREEZE_AT_START is off).
    """
    if not FREEZE_AT_START:
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
