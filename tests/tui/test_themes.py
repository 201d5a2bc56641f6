"""Themes are .tcss files of variables; every theme gives the same meanings a colour."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import astuple
from pathlib import Path

import pytest
from textual.color import Color
from textual.command import CommandInput, CommandList
from textual.pilot import Pilot
from textual.theme import BUILTIN_THEMES

from qgtm.core.paths import PACKAGE_THEMES_DIR, user_themes_dir
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.monitor import MonitorScreen
from qgtm.tui.themes import (
    _COMMENT,
    DEFAULT_THEME,
    TERMINAL_CSS,
    UnknownThemeError,
    activate_palette,
    available_themes,
    load_all_themes,
    load_theme,
    palette,
    palette_of,
    qgtm_variables,
    save_theme,
    saved_theme,
    theme_variables,
)
from tests.tui.conftest import RecordingClient, make_engine

MEANINGS = {"gain", "loss", "muted", "tier-normal", "tier-warn", "tier-throttle", "tier-no-new"}


def test_the_three_themes_ship_inside_the_package() -> None:
    assert {"qgtm-dark", "qgtm-contrast", "qgtm-light"} <= set(available_themes())


@pytest.mark.parametrize("name", ["qgtm-dark", "qgtm-contrast", "qgtm-light"])
def test_every_theme_defines_every_meaning_colour(name: str) -> None:
    theme = load_theme(name)
    assert set(theme.variables) >= MEANINGS
    assert theme.variables["gain"] != theme.variables["loss"]


def test_a_theme_file_becomes_a_textual_theme(tmp_path: Path) -> None:
    (tmp_path / "mine.tcss").write_text(
        "/* a comment: $ignored: #000; */\n$primary: #123456;\n$dark: false;\n$gain: #00aa00;\n"
    )
    theme = load_theme("mine", [tmp_path])
    assert (theme.primary, theme.dark, theme.variables) == ("#123456", False, {"gain": "#00aa00"})


def test_the_light_theme_is_light() -> None:
    assert not load_theme("qgtm-light").dark
    assert theme_variables(PACKAGE_THEMES_DIR / "qgtm-dark.tcss")["background"] == "#000000"


def test_an_unknown_theme_names_the_choices() -> None:
    with pytest.raises(UnknownThemeError, match=r"available: .*qgtm-dark"):
        load_theme("neon")


def test_the_choice_is_remembered_and_a_stale_choice_ignored(tmp_path: Path) -> None:
    path = tmp_path / "qgtm" / "theme"
    assert saved_theme(path) is None
    save_theme(path, "qgtm-light")
    assert saved_theme(path) == "qgtm-light"
    path.write_text("gone-theme\n")
    assert saved_theme(path) is None


def test_a_users_theme_is_offered_and_replaces_a_packaged_one_of_its_name(
    tmp_path: Path,
) -> None:
    user = tmp_path / "user-themes"
    user.mkdir()
    (user / "mine.tcss").write_text("$primary: #123456;\n")
    (user / "qgtm-dark.tcss").write_text("$primary: #654321;\n$gain: #00aa00;\n")
    dirs = [PACKAGE_THEMES_DIR, user]
    assert {"mine", "qgtm-dark", "qgtm-light"} <= set(available_themes(dirs))
    assert load_theme("qgtm-dark", dirs).primary == "#654321"


def test_themes_are_read_from_the_user_config_dir(private_config_dir: Path) -> None:
    assert user_themes_dir() == private_config_dir / "qgtm" / "themes"
    user_themes_dir().mkdir(parents=True)
    (user_themes_dir() / "mine.tcss").write_text("$primary: #123456;\n")
    assert "mine" in available_themes()
    assert load_theme("mine").primary == "#123456"


def _variables_used_by(css: str) -> set[str]:
    return set(re.findall(r"\$([a-z][\w-]*)", _COMMENT.sub("", css)))


def test_every_textual_theme_defines_every_variable_the_terminal_uses() -> None:
    used = _variables_used_by(TERMINAL_CSS.read_text(encoding="utf-8"))
    for name, theme in BUILTIN_THEMES.items():
        defined = {*theme.to_color_system().generate(), *qgtm_variables(theme)}
        assert used <= defined, f"{name} lacks {sorted(used - defined)}"
        assert all(c.startswith("#") and len(c) == 7 for c in astuple(palette_of(theme)))


async def _choose(pilot: Pilot, query: str, label: str) -> None:
    """Enter `query` in the open palette, highlight the hit named `label`, run it."""
    pilot.app.screen.query_one(CommandInput).value = query  # as typed, in one step
    commands = pilot.app.screen.query_one(CommandList)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        options = (commands.get_option_at_index(i) for i in range(commands.option_count))
        prompts = [str(option.prompt).split("\n")[0] for option in options]
        if label in prompts:
            commands.highlighted = prompts.index(label)
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError(f"no {label!r} among {prompts}")
    await pilot.press("enter")
    await pilot.pause()


async def test_every_theme_the_picker_offers_works(tmp_path: Path) -> None:
    """ctrl+p -> Theme -> NAME for every theme the picker lists: the app keeps running
    and paints with that theme (nord crashed it: `$bg` undefined)."""
    engine = make_engine(tmp_path / "book", running=False)
    app = QGTMApp(RecordingClient(engine), data_dir=tmp_path / "book", theme_file=tmp_path / "t")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            offered = sorted(app.available_themes)
            assert {"nord", "dracula", "ansi-dark", "qgtm-dark", "qgtm-light"} <= set(offered)
            for n, name in enumerate(offered):
                if n == 0:  # the whole way once; then the picker the Theme command opens
                    await pilot.press("ctrl+p")
                    await _choose(pilot, "Theme", "Theme")
                else:
                    app.action_change_theme()
                    await pilot.pause()
                await _choose(pilot, name, name)
                await pilot.pause()
                assert app.is_running and app.return_code is None, name
                assert app.theme == name
                assert isinstance(app.screen, MonitorScreen)
                background = app.theme_variables["bg"]
                assert app.screen.styles.background == Color.parse(background), name
                assert palette() == palette_of(app.current_theme)
            assert "QGTM" in app.export_screenshot()
        assert (tmp_path / "t").read_text().strip() == offered[-1]
    finally:
        engine.close()


def _run_in_a_terminal(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal (80x24) as its tty; its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            try:
                chunk = os.read(master, 65536) if ready else b""
            except OSError:  # the child closed the terminal
                break
            output += chunk
            if not chunk and proc.poll() is not None:
                break
        return proc.wait(timeout=30), output.decode(errors="replace")
    finally:
        proc.kill()
        os.close(master)


def test_a_crash_inside_the_terminal_makes_qgtm_exit_non_zero(tmp_path: Path) -> None:
    """A user theme with a colour Textual cannot parse makes the app crash at its first
    frame: the real `qgtm` prints why and exits 1, not 0 (scripts and supervisors see it)."""
    config_home = tmp_path / "config"
    (config_home / "qgtm" / "themes").mkdir(parents=True)
    (config_home / "qgtm" / "themes" / "broken.tcss").write_text(
        "$primary: #123456;\n$fg: nonsense;\n"
    )
    config = tmp_path / "config.toml"
    config.write_text('[tui]\ntheme = "broken"\n[demo]\nstart = 2008-01-02\nend = 2009-06-30\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home), "TERM": "xterm-256color"}
    argv = [sys.executable, "-m", "qgtm.cli", "--config", str(config)]
    code, output = _run_in_a_terminal([*argv, "--data-dir", str(tmp_path / "book")], env, 120)
    assert code == 1, output[-2000:]
    assert "nonsense" in output


def test_a_remembered_textual_theme_is_restored_at_the_next_start(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "book", running=False)
    try:
        save_theme(tmp_path / "t", "nord")
        app = QGTMApp(RecordingClient(engine), theme_file=tmp_path / "t")
        assert app.theme == "nord"
        assert palette() == palette_of(app.current_theme)
        assert palette().gain == app.current_theme.success.lower()
    finally:
        activate_palette(DEFAULT_THEME)  # the app never ran, so never reset it
        engine.close()


def test_a_file_that_is_not_a_theme_is_left_out_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good.tcss").write_text("$primary: #123456;\n")
    (tmp_path / "notes.tcss").write_text("/* no colours yet */\n")
    assert set(load_all_themes([tmp_path])) == {"good"}
