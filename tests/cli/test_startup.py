"""`qgtm --help`, `qgtm status` and the publisher's commands load no engine library.

Each case runs in a fresh interpreter (the test process has loaded everything already)
and lists the heavy modules it imported; bench/startup.py times the same commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "duckdb",
    "polars",
    "numpy",
    "scipy",
    "numba",
    "alpaca",
    "textual",
    "rich",
    "statsmodels",
    "qgtm.engine",
    "qgtm.tui",
)
"""Libraries and packages the parser and the quick commands must not import."""

PROBE = """
import json, sys
from qgtm.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help exits through argparse
    code = exc.code
heavy = sorted({{m.split('.')[0] if not m.startswith('qgtm.') else '.'.join(m.split('.')[:2])
                for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def loaded_heavy(*argv: str) -> tuple[int, list[str]]:
    """Run `qgtm argv` in a fresh interpreter: its exit code and the heavy modules loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], report["heavy"]


def test_help_imports_no_engine_library() -> None:
    assert loaded_heavy("--help") == (0, [])


def test_every_subcommand_help_imports_no_engine_library() -> None:
    for command in ("backtest", "data", "publish", "risk", "audit", "status"):
        assert loaded_heavy(command, "--help") == (0, []), command


def test_status_reads_the_book_without_the_engine(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE equity (session TEXT PRIMARY KEY, equity TEXT NOT NULL);"
            "CREATE TABLE positions (symbol TEXT PRIMARY KEY, quantity INTEGER NOT NULL,"
            " avg_price TEXT NOT NULL, last_price TEXT NOT NULL);"
        )
    assert loaded_heavy("--data-dir", str(tmp_path), "status", "--json") == (0, [])


def test_an_expected_error_is_reported_without_importing_the_engine(tmp_path: Path) -> None:
    assert loaded_heavy("--data-dir", str(tmp_path), "status") == (2, [])


@pytest.mark.parametrize("action", ["list", "status"])
def test_publisher_commands_import_no_engine(tmp_path: Path, action: str) -> None:
    """The publisher host runs `qgtm publish ...` from the same package: no engine there."""
    assert loaded_heavy("publish", "--data-dir", str(tmp_path), action) == (0, [])


def test_nothing_under_the_engine_prints_with_rich() -> None:
    """The engine returns data; the CLI and the terminal render it (issue 22)."""
    engine = Path(__file__).parents[2] / "qgtm" / "engine"
    offenders = [
        str(path.relative_to(engine))
        for path in engine.rglob("*.py")
        if any(
            line.lstrip().startswith(("import rich", "from rich"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
