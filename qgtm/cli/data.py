"""`qgtm data fetch` (providers into market.duckdb) and `qgtm data import` (the user's
own bars)."""

from __future__ import annotations

import argparse
import logging
import sys

import duckdb

from qgtm.cli import CliError
from qgtm.cli.config import load
from qgtm.engine.data.store import MarketStore


def run(args: argparse.Namespace) -> int:
    """Dispatch one `qgtm data` action."""
    if args.data_command == "import":
        return import_bars(args)
    return fetch(args)


def fetch(args: argparse.Namespace) -> int:
    """`qgtm data fetch SOURCE`: incremental fetch, then the quality checks' failures."""
    from qgtm.core.universe import load_universe
    from qgtm.engine.data.providers.base import ProviderError
    from qgtm.engine.data.providers.ingest import ingest, make_provider

    _, data_dir = load(args)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    if args.since and args.until and args.since > args.until:
        raise CliError(f"--from {args.since} is after --to {args.until}")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = MarketStore(data_dir)
    except duckdb.IOException as exc:
        raise CliError(f"market.duckdb is busy (is an engine running?): {exc}") from None
    try:
        provider = make_provider(args.source, load_universe().symbols, args.timeframe)
        print(f"fetching {args.source} ...", flush=True)
        try:
            report = ingest(store, provider, args.since, args.until)
        finally:
            provider.close()
    except ProviderError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    print(f"{args.source}: {report.rows} rows stored (from {report.since or 'start'})")
    for failure in report.failures[:20]:
        print(
            f"  {failure.severity.value:<8} {failure.dataset}:{failure.subject} "
            f"{failure.check} {failure.day} {failure.detail}"
        )
    if len(report.failures) > 20:
        print(f"  ... {len(report.failures) - 20} more quality failures")
    return 0


def import_bars(args: argparse.Namespace) -> int:
    """`qgtm data import FILE [--symbol S]`: validate, store as source=user, summarise."""
    from qgtm.engine.data.user_bars import load_user_bars, summary_lines

    _, data_dir = load(args)
    bars = load_user_bars(args.file, args.symbol)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = MarketStore(data_dir)
    except duckdb.IOException:
        raise CliError(f"{data_dir}/market.duckdb is held by a running engine") from None
    try:
        written = store.upsert_user_bars(bars.bars)
    finally:
        store.close()
    for line in summary_lines(bars):
        print(line)
    print(f"stored {written} bars in {data_dir / 'market.duckdb'} (source=user)")
    return 0
