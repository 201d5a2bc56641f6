"""Time `qgtm backtest --all` (every registered strategy over the whole demo market).

Issue 4's target: under a minute on 2 cores. Runs the real CLI in a fresh data dir, so
the demo market is generated first (about 0.1 s of the total).

    .venv/bin/python bench/league.py [--decision live|signal] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 60.0


def main() -> int:
    """Run the league (`--runs` times in one data dir) and report wall time per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decision", choices=("live", "signal"), default=None)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs in the same data dir: the first is cold, later ones reuse the "
        "regime labels and compiled kernels the first stored",
    )
    args = parser.parse_args()
    extra = ["--decision", args.decision] if args.decision else []
    ok = True
    with tempfile.TemporaryDirectory() as data_dir:
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "qgtm.cli",
                    "--data-dir",
                    data_dir,
                    "backtest",
                    "--all",
                    "--json",
                    *extra,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            wall = time.perf_counter() - started
            rows = json.loads(out)
            failed = [r["strategy"] for r in rows if "error" in r]
            met = wall < TARGET_SECONDS
            print(
                f"run {run}: strategies {len(rows)}  failed {len(failed)}  wall {wall:.1f} s  "
                f"target < {TARGET_SECONDS:.0f} s: {'met' if met else 'NOT met'}"
            )
            ok = ok and met and not failed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
