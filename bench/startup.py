"""Start-up time of `qgtm --help`, `qgtm status`, `qgtm status --json` and the terminal's
first frame, before (c8881ed, issue 21's baseline) and after (this tree), warm.

    .venv/bin/python bench/startup.py [--runs 7] [--before c8881ed] [--no-frame]

How it measures:
- each command runs as the console script does (`from qgtm.cli import main`) in a fresh
  interpreter of this venv, with PYTHONPATH pointing at the tree measured: this tree, or
  a `git worktree` of the baseline commit made under /tmp/qgtm-before (kept for reruns);
- one untimed run first (page cache and __pycache__ warm), then `--runs` timed runs,
  before and after interleaved so a change in the machine's load hits both alike; the
  median wall time (subprocess start to exit) is reported with the min and max;
- `status` runs on a small book made by `qgtm --daemon --sessions 3 --speed 0` of the same
  tree; the baseline has no `status --json`;
- the first frame: `qgtm` (terminal on an in-process demo engine, market already
  generated) under a pseudo-terminal of 120x40, timed from spawn to the first output
  that contains the header's title "QGTM"; then `q` quits it; "attached": the same
  while `qgtm --daemon` runs on the book, so the terminal attaches over the socket;
- `python -X importtime` of `qgtm --help`: modules imported and the top offenders by
  cumulative time.
The issue's target (warm venv): `--help` and `status` < 0.5 s, the first frame < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from fcntl import ioctl
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_DIR = Path(tempfile.gettempdir()) / "qgtm-before"
NEUTRAL_CWD = tempfile.gettempdir()  # `python -c` puts the cwd first on sys.path
ENTRY = "import sys; from qgtm.cli import main; sys.exit(main())"
TARGET_S = {
    "--help": 0.5,
    "status": 0.5,
    "status --json": 0.5,
    "first frame": 1.0,
    "first frame, attached": 1.0,
}


def ensure_before(commit: str) -> Path:
    """A worktree of `commit` at /tmp/qgtm-before (reused when it is already there)."""
    if not (BEFORE_DIR / "qgtm").exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(BEFORE_DIR), commit],
            check=True,
            capture_output=True,
        )
    head = subprocess.run(
        ["git", "-C", str(BEFORE_DIR), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not head.startswith(commit) and not commit.startswith(head[:7]):
        sys.exit(f"{BEFORE_DIR} is at {head}, not {commit}: remove it (git worktree remove)")
    return BEFORE_DIR


def env_for(tree: Path) -> dict[str, str]:
    """This venv, with `tree`'s qgtm first on the path, no user config."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    env["QGTM_CONFIG"] = str(Path(tempfile.gettempdir()) / "qgtm-bench-no-config.toml")
    return env


def check_tree(tree: Path) -> None:
    """The interpreter imports qgtm from `tree` (an editable install must not win)."""
    out = subprocess.run(
        [sys.executable, "-c", "import qgtm; print(qgtm.__file__)"],
        env=env_for(tree),
        cwd=NEUTRAL_CWD,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(tree)):
        sys.exit(f"qgtm imports from {out}, not from {tree}")


def qgtm(tree: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `qgtm argv` on `tree`'s code."""
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *argv],
        env=env_for(tree),
        cwd=NEUTRAL_CWD,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def timed(tree: Path, argv: list[str]) -> float:
    """Wall seconds of one `qgtm argv` (exit code 0 required)."""
    start = time.perf_counter()
    proc = qgtm(tree, *argv)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"qgtm {' '.join(argv)} failed: {proc.stderr.strip()[-300:]}")
    return elapsed


def floor() -> float:
    """Wall seconds of `python -c pass`: the interpreter's own start, the floor."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=NEUTRAL_CWD, check=True)
    return time.perf_counter() - start


def make_book(tree: Path, data_dir: Path) -> None:
    """A demo book of three sessions (the market generated once, then kept)."""
    if (data_dir / "state.sqlite").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = qgtm(tree, "--data-dir", str(data_dir), "--daemon", "--sessions", "3", "--speed", "0")
    if proc.returncode != 0:
        raise RuntimeError(f"could not make a book: {proc.stderr.strip()[-500:]}")


def first_frame(tree: Path, data_dir: Path, size: tuple[int, int] = (120, 40)) -> float:
    """Seconds from spawning `qgtm` under a pty to output holding the title "QGTM"."""
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes qgtm on the pty
        env = env_for(tree)
        env["TERM"] = "xterm-256color"
        os.chdir(NEUTRAL_CWD)
        # the size is set before exec: set by the parent, it could land after the app
        # read it (80x24 then: a narrow banner has no "QGTM" and no frame is seen)
        ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        os.execve(sys.executable, [sys.executable, "-c", ENTRY, "--data-dir", str(data_dir)], env)
    start = time.perf_counter()
    seen = b""
    elapsed = float("nan")
    try:
        while time.perf_counter() - start < 120:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen = (seen + chunk)[-4096:]
            if b"QGTM" in seen:
                elapsed = time.perf_counter() - start
                break
    finally:
        _quit(pid, fd)
    if elapsed != elapsed:
        raise RuntimeError(f"no first frame within 120 s; last output {seen[-300:]!r}")
    return elapsed


class Daemon:
    """`qgtm --daemon` on a book, slow replay, for the attached terminal's first frame."""

    def __init__(self, tree: Path, data_dir: Path) -> None:
        argv = ["--data-dir", str(data_dir), "--daemon", "--speed", "0.2"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, *argv],
            env=env_for(tree),
            cwd=NEUTRAL_CWD,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.perf_counter() + 120
        while not (data_dir / "engine.sock").exists():
            if time.perf_counter() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("the daemon did not open its attach socket")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGINT, as an operator's Ctrl-C; the daemon commits and stops."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _quit(pid: int, fd: int) -> None:
    """Press q, drain the pty until the app exits; SIGTERM then SIGKILL if it hangs."""
    with contextlib.suppress(OSError):
        os.write(fd, b"q")
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):
                os.read(fd, 65536)
    else:
        os.kill(pid, signal.SIGTERM)
        time.sleep(2)
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    os.close(fd)


def import_profile(tree: Path, top: int = 8) -> tuple[int, list[tuple[float, str]]]:
    """`-X importtime` of `qgtm --help`: modules imported, and the top `top` imports
    made at the top two nesting levels by cumulative seconds."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, "--help"],
        env=env_for(tree),
        cwd=NEUTRAL_CWD,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(cumulative) / 1e6, name.strip(), depth))
    offenders = sorted(((c, n) for c, n, d in rows if d <= 1), reverse=True)[:top]
    return len(rows), offenders


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


def main() -> None:
    """Measure and print the markdown tables bench/README.md keeps."""
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    cli.add_argument("--frames", type=int, default=3, help="timed first frames (median)")
    cli.add_argument("--before", default="c8881ed", help="baseline commit")
    cli.add_argument("--no-frame", action="store_true", help="skip the first-frame timing")
    opts = cli.parse_args()
    trees = {"before": ensure_before(opts.before), "after": ROOT}
    for tree in trees.values():
        check_tree(tree)
    work = Path(tempfile.mkdtemp(prefix="qgtm-startup-"))
    books = {label: work / f"book-{label}" for label in trees}
    for label, tree in trees.items():
        make_book(tree, books[label])
    commands = {
        "--help": ["--help"],
        "status": ["--data-dir", "{book}", "status"],
        "status --json": ["--data-dir", "{book}", "status", "--json"],
    }
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {name: {} for name in commands}
    for name, argv in commands.items():
        for label, tree in trees.items():
            if label == "before" and name == "status --json":
                continue  # c8881ed has no --json
            args = [str(books[label]) if a == "{book}" else a for a in argv]
            timed(tree, args)  # warm
            results[name][label] = []
        for _ in range(opts.runs):
            for label, tree in trees.items():
                if label in results[name]:
                    args = [str(books[label]) if a == "{book}" else a for a in argv]
                    results[name][label].append(timed(tree, args))
    floors = [floor() for _ in range(opts.runs)]
    if not opts.no_frame:
        results["first frame"] = {label: [] for label in trees}
        for label, tree in trees.items():
            first_frame(tree, books[label])  # warm
        for _ in range(opts.frames):
            for label, tree in trees.items():
                results["first frame"][label].append(first_frame(tree, books[label]))
        results["first frame, attached"] = {label: [] for label in trees}
        for label, tree in trees.items():
            daemon = Daemon(tree, books[label])
            try:
                first_frame(tree, books[label])  # warm
                for _ in range(opts.frames):
                    frame = first_frame(tree, books[label])
                    results["first frame, attached"][label].append(frame)
            finally:
                daemon.stop()
    load_after = os.getloadavg()
    print(
        f"load average {'/'.join(f'{x:.2f}' for x in load_before)} -> "
        f"{'/'.join(f'{x:.2f}' for x in load_after)}, {os.cpu_count()} cores, "
        f"{opts.runs} runs ({opts.frames} for the first frame), seconds: median (min-max)\n"
    )
    print(f"| command | before ({opts.before}) | after | before / after | target |")
    print("|---|---|---|---|---|")
    print(f"| `python -c pass` (the floor) | | {summary(floors)} | | |")
    for name, by_label in results.items():
        before = by_label.get("before")
        after = by_label["after"]
        ratio = f"{statistics.median(before) / statistics.median(after):.1f}x" if before else "-"
        met = "yes" if statistics.median(after) < TARGET_S[name] else "no"
        print(
            f"| `qgtm {name}` | {summary(before) if before else 'n/a'} | {summary(after)} "
            f"| {ratio} | < {TARGET_S[name]} s: {met} |"
        )
    for label, tree in trees.items():
        count, offenders = import_profile(tree)
        print(f"\n`-X importtime` of `qgtm --help`, {label}: {count} modules; top by cumulative")
        print("\n| module | cumulative s |\n|---|---|")
        for seconds, module in offenders:
            print(f"| `{module}` | {seconds:.3f} |")


if __name__ == "__main__":
    main()
