"""The built wheel works on its own: installed outside the repository, `qgtm` starts the
daemon, backtests and reports status from another directory.

The wheel is built from a copy of the sources (no build dirs left in the clone) with the
build backend already installed (`--no-build-isolation`, no network). It goes into a fresh
venv with `--no-deps`; that venv sees this environment's installed dependencies through
a .pth line (a path only: the editable install's .pth hook there is not run), so the
test takes seconds, not a download of every dependency. It checks that `qgtm` is
imported from the new venv, never from the clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT = 600  # seconds; generous for a loaded CI machine


@dataclass(frozen=True)
class Installed:
    """A wheel installed in a fresh venv outside the repository."""

    wheel: Path
    venv: Path
    home: Path

    @property
    def qgtm(self) -> Path:
        return self.venv / "bin" / "qgtm"

    def env(self) -> dict[str, str]:
        """The user's environment less anything that points at the clone or a book."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("QGTM_")
        }
        env |= {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        }
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`qgtm ARGS` run from a directory that is not the repository."""
        return subprocess.run(
            [str(self.qgtm), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )


def _build_wheel(out: Path, scratch: Path) -> Path:
    """`pip wheel` over a copy of the sources: the backend may write build/ and
    *.egg-info beside pyproject.toml, and they must not land in the clone."""
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "qgtm", source / "qgtm", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("qgtm-*.whl")
    return wheel


def _venv_over_these_dependencies(target: Path) -> Path:
    """A new venv whose site-packages also lists this environment's (by path only)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    python = target / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_qgtm_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    scratch = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(scratch / "dist", scratch)
    python = _venv_over_these_dependencies(scratch / "venv")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    home = scratch / "home"
    home.mkdir()
    return Installed(wheel, scratch / "venv", home)


def test_the_wheel_holds_the_themes_the_universe_and_the_styles(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {
        "qgtm/data/universe.toml",
        "qgtm/themes/qgtm-dark.tcss",
        "qgtm/themes/qgtm-contrast.tcss",
        "qgtm/themes/qgtm-light.tcss",
        "qgtm/tui/terminal.tcss",
    } <= names
    assert not any(n.startswith(("tests/", "bench/", "data/", "themes/")) for n in names)


def test_every_file_of_the_package_is_in_the_wheel(installed: Installed) -> None:
    """A runtime file added later (a screen's .tcss, a data file) needs a package-data
    pattern in pyproject.toml: this names the one that lacks it."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    package = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "qgtm").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    assert sorted(set(package) - names) == []


def test_the_installed_qgtm_is_the_wheel_not_the_clone(installed: Installed) -> None:
    done = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import qgtm, qgtm.tui.themes as t; print(qgtm.__file__); print(t.PACKAGE_THEMES_DIR)"],
        cwd=installed.home, env=installed.env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    module, themes = (Path(line) for line in done.stdout.split())
    assert module.is_relative_to(installed.venv), module
    assert themes.is_relative_to(installed.venv) and (themes / "qgtm-dark.tcss").is_file()


def test_the_installed_command_runs_a_daemon_a_backtest_and_status_elsewhere(
    installed: Installed,
) -> None:
    daemon = installed.run("--daemon", "--sessions", "3", "--speed", "0")
    assert daemon.returncode == 0, daemon.stderr[-3000:]
    assert "event=daemon_stop sessions=3" in daemon.stdout

    backtest = installed.run("backtest", "tsmom", "--json")
    assert backtest.returncode == 0, backtest.stderr[-3000:]
    assert json.loads(backtest.stdout)["strategy"] == "tsmom"

    status = installed.run("status", "--json")
    assert status.returncode == 0, status.stderr[-3000:]
    book = installed.home / "data" / "qgtm"
    report = json.loads(status.stdout)
    assert report["sessions"] == 3
    assert report["data_dir"] == str(book)  # the default book, in the user data dir
