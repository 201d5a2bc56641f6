"""Soak: the full daemon on the demo market at maximum replay speed for ~20 simulated years.

Run:  .venv/bin/python bench/soak.py [--years 20] [--out bench/soak_result.json]

What runs: TradingDaemon with every task it has in production (replay clock firing the
rebalance / recon / data-refresh jobs, heartbeat, audit writer, control socket, watchdog
thread), speed 0 (as fast as possible). The demo market is regenerated to span the
requested years plus one year of strategy warm-up: by default START=2004-01-02 and
END=2025-12-31 (the XNYS calendar of exchange_calendars ends about a year after today,
so the soak extends the demo backwards instead of past 2027).

"Recon every simulated minute" in a daily replay: the replay clock fires the recon job
(IntervalTrigger, 60 s) at every simulated minute of every XNYS session (390 a regular
day, 210 on an early close); minutes outside the session coalesce into one run at the
next open, because nothing can change between a close and the next open in a daily
replay (fills happen at the open, decisions at 15:30, marks at the close).

Reported: RSS sampled every 100 sessions (it must stay flat: we report the slope of a
least-squares line over the second half, in KiB per 1000 sessions, and max/min), events
per second (job fires = rebalance + recon + data refresh; audit records written), and a
baseline in the same run: the bare engine (`engine.step()` in a loop, no daemon, no
recon) over the first `--baseline-years` years, as a sessions-per-second ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgtm.core.config import Config, DemoConfig, EngineConfig, LiveConfig
from qgtm.engine.live.daemon import TradingDaemon
from qgtm.engine.live.engine import TradingEngine

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kib() -> int:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE // 1024


def slope_per_1000(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of RSS (KiB) against sessions, per 1000 sessions."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return 1000 * sxy / sxx if sxx else 0.0


def config_for(start: date, end: date) -> Config:
    """Max-speed demo config with the production daemon settings."""
    return replace(
        Config(),
        demo=DemoConfig(seed=7, start=start, end=end),
        engine=EngineConfig(speed=0.0),
        live=LiveConfig(heartbeat_interval_s=1.0, watchdog_timeout_s=60.0),
    )


async def soak(config: Config, data_dir: Path) -> dict:
    """Run the daemon to the end of the data, sampling RSS every 100 sessions."""
    engine = TradingEngine(config, data_dir)
    daemon = TradingDaemon(config, data_dir, engine)
    samples: list[tuple[int, int]] = []
    wall: list[tuple[int, float]] = []
    start = time.perf_counter()

    async def sampler() -> None:
        last = -1
        while True:
            done = daemon.sessions_done
            if done // 100 != last // 100 or last < 0:
                samples.append((done, rss_kib()))
                wall.append((done, time.perf_counter() - start))
                last = done
                if done and done % 500 == 0:
                    print(
                        f"  {done:>5} sessions  {engine.current_session}  "
                        f"RSS {samples[-1][1] / 1024:.1f} MiB  "
                        f"recon runs {daemon.recon.runs:,}",
                        flush=True,
                    )
            await asyncio.sleep(0.05)

    audit_before = engine.state.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    task = asyncio.create_task(sampler())
    sessions = await daemon.run()
    elapsed = time.perf_counter() - start
    task.cancel()
    samples.append((sessions, rss_kib()))
    audit_after = engine.state.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    fires = daemon.clock.fired if daemon.clock else {}
    verify = engine.audit.verify_all()
    first, last = engine.panel.dates[0], engine.current_session
    engine.close()
    half = [p for p in samples if p[0] >= sessions // 2]
    return {
        "sessions": sessions,
        "simulated_years": round(sessions / 252, 2),
        "first_bar": str(first),
        "last_session": str(last),
        "elapsed_s": round(elapsed, 1),
        "sessions_per_s": round(sessions / elapsed, 1),
        "job_fires": fires,
        "job_fires_per_s": round(sum(fires.values()) / elapsed, 0),
        "recon_runs": daemon.recon.runs,
        "audit_records": audit_after - audit_before,
        "audit_records_per_s": round((audit_after - audit_before) / elapsed, 0),
        "audit_verified": verify.ok,
        "sealed_days": verify.sealed_days,
        "task_restarts": daemon.restarts,
        "rss_kib_first_sample": samples[0][1],
        "rss_kib_at_10pct": next(y for x, y in samples if x >= sessions // 10),
        "rss_kib_end": samples[-1][1],
        "rss_kib_max": max(y for _, y in samples),
        "rss_kib_min_second_half": min(y for _, y in half),
        "rss_kib_max_second_half": max(y for _, y in half),
        "rss_slope_kib_per_1000_sessions_second_half": round(slope_per_1000(half), 1),
        "max_rss_kib_getrusage": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_samples": samples,
    }


def baseline(config: Config, data_dir: Path, sessions: int) -> dict:
    """The bare engine stepping `sessions` sessions: no daemon, no recon, no socket."""
    engine = TradingEngine(config, data_dir)
    start = time.perf_counter()
    done = 0
    while done < sessions and engine.step():
        done += 1
    elapsed = time.perf_counter() - start
    engine.close()
    return {"sessions": done, "elapsed_s": round(elapsed, 1), "sessions_per_s": done / elapsed}


def main() -> int:
    """Run the soak and the baseline, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2004, 1, 2))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--baseline-sessions", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/soak_result.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = config_for(args.start, args.end)
    with tempfile.TemporaryDirectory(prefix="qgtm-soak-") as tmp:
        base = Path(tmp)
        print(f"soak: demo {args.start} .. {args.end}, daemon at max speed", flush=True)
        report = asyncio.run(soak(config, base / "daemon"))
        print(f"baseline: bare engine, {args.baseline_sessions} sessions", flush=True)
        report["baseline"] = baseline(config, base / "bare", args.baseline_sessions)
    report["daemon_vs_bare_engine_speed"] = round(
        report["sessions_per_s"] / report["baseline"]["sessions_per_s"], 3
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    summary = {k: v for k, v in report.items() if k != "rss_samples"}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
