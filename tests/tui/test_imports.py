"""The terminal depends only on qgtm.core (and Textual/Rich): importing any of its modules
loads no qgtm.engine module, so attaching to a daemon loads no engine library."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import qgtm.tui


def _tui_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(qgtm.tui.__path__, prefix="qgtm.tui."))


def test_importing_every_terminal_module_loads_nothing_of_the_engine() -> None:
    modules = _tui_modules()
    assert "qgtm.tui.app" in modules and "qgtm.tui.screens.research" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('qgtm.engine'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
