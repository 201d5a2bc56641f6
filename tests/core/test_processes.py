"""Ctrl+C stops a pool of spawned workers without a traceback from each worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from pathlib import Path
from qgtm.core.processes import worker_pool


def warm_up(marks):
    # this worker runs Python code; note whether SIGINT can reach it
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    Path(marks, f"{os.getpid()}.{'blocked' if blocked else 'open'}").touch()
    time.sleep(1.5)


def main(marks, guarded):
    spawn = multiprocessing.get_context("spawn")
    try:
        if guarded:
            with worker_pool(2, warm_up, (marks,)) as pool:
                list(pool.imap(time.sleep, [30] * 4))
        else:
            with ProcessPoolExecutor(2, spawn, initializer=warm_up, initargs=(marks,)) as pool:
                list(pool.map(time.sleep, [0.05] * 2))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "guarded")
"""


@pytest.mark.parametrize("guarded", [True, False])
def test_ctrl_c_reaches_only_the_parent_of_a_worker_pool(tmp_path: Path, guarded: bool) -> None:
    """Ctrl+C signals the terminal's whole process group. worker_pool's workers never
    see it and end with the parent's pool at once; a plain pool's (the control) each
    print a traceback."""
    script, marks = tmp_path / "pool.py", tmp_path / "marks"
    script.write_text(SCRIPT)
    marks.mkdir()
    mode = "guarded" if guarded else "bare"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marks), mode],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + 30
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(marks.iterdir())) == 2, "workers did not start"
    masks = {m.suffix.lstrip(".") for m in marks.iterdir()}
    assert masks == ({"blocked"} if guarded else {"open"})
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
    pressed = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert ("Traceback" in err) is not guarded, err
    if guarded:  # the workers' 30 s tasks end with them: no wait for the work to finish
        assert time.monotonic() - pressed < 10


EARLY = """
import os, signal, sys, time
from qgtm.core.processes import ctrl_c_left_to_parent

try:
    with ctrl_c_left_to_parent():
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C while workers would be starting
        time.sleep(0.2)
        print("the block ran to its end", flush=True)
    print("not reached", flush=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_ctrl_c_while_workers_start_is_raised_when_they_have_started() -> None:
    done = subprocess.run([sys.executable, "-c", EARLY], capture_output=True, text=True)
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines() == ["the block ran to its end"]


OTHER_HANDLER = """
import os, signal, time
from qgtm.core.processes import ctrl_c_left_to_parent

seen = []
signal.signal(signal.SIGINT, lambda n, f: seen.append(n))  # as asyncio's, in the daemon
with ctrl_c_left_to_parent():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.1)
    print("held", seen, flush=True)
time.sleep(0.1)
print("handled", seen, flush=True)
"""


def test_a_handler_other_than_keyboard_interrupt_gets_the_ctrl_c_itself() -> None:
    """The daemon's asyncio handler stays in place: it receives the Ctrl+C once the
    workers have started, and nothing is raised in its place."""
    done = subprocess.run([sys.executable, "-c", OTHER_HANDLER], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["held []", "handled [2]"]
