"""Worker processes that leave Ctrl+C to the process that started them.

Ctrl+C in a terminal signals the whole foreground process group: the parent and every
worker. The parent stops cleanly (the CLI exits 130), but a worker with Python's
default handler raises KeyboardInterrupt wherever it is, often while importing numpy,
and prints a traceback: one per worker. `worker_pool`'s workers never receive SIGINT;
the parent ends them (Pool.terminate) when it leaves the pool's `with` block, whether
the work is done or it was interrupted, so Ctrl+C stops everything at once and quietly.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker
from multiprocessing.pool import Pool
from typing import Any


@contextmanager
def ctrl_c_left_to_parent() -> Iterator[None]:
    """Processes started inside this block never receive SIGINT; a Ctrl+C pressed
    meanwhile is raised here as KeyboardInterrupt when the block ends.

    SIGINT is blocked in this thread for the block, and a child inherits its parent
    thread's signal mask across fork and exec, so the workers keep it blocked for life.
    Ignoring the signal instead (SIG_IGN is inherited too) would lose a Ctrl+C pressed
    while the workers start. Another thread of this process may still take the signal;
    where it would raise KeyboardInterrupt (Python's default handler, main thread) the
    handler is swapped for one that only notes it, so nothing is raised while a worker
    is being started (a parent interrupted while handing a worker its start-up data
    leaves that worker a truncated pickle, and a traceback). Any other handler, such as
    the daemon's asyncio one, keeps receiving Ctrl+C as before.
    """
    # Starting multiprocessing's resource tracker unblocks SIGINT in this thread (it
    # blocks and then unblocks it around the tracker's own start): have it running first
    resource_tracker.ensure_running()
    caught: list[int] = []
    # only where Ctrl+C would raise KeyboardInterrupt (the main thread with Python's
    # default handler); another handler (asyncio's, in the daemon) is left in place
    holds = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    previous = signal.signal(signal.SIGINT, lambda n, _f: caught.append(n)) if holds else None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending one lands now
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def worker_pool(
    workers: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Pool:
    """A multiprocessing Pool of `workers` spawned processes that never receive SIGINT
    (spawn, never fork: callers run threads, and a forked child can inherit a lock
    another thread held). Use it as a context manager: leaving the block terminates
    the workers, so an interrupted parent does not wait for their work."""
    with ctrl_c_left_to_parent():  # a Pool starts all its workers here
        return multiprocessing.get_context("spawn").Pool(workers, initializer, initargs)
