"""Themes are .tcss files of variables; every theme gives the same meanings a colour."""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.core.paths import THEMES_DIR
from qgtm.tui.themes import (
    UnknownThemeError,
    available_themes,
    load_theme,
    save_theme,
    saved_theme,
    theme_variables,
)

MEANINGS = {"gain", "loss", "muted", "tier-normal", "tier-warn", "tier-throttle", "tier-no-new"}


def test_the_three_themes_ship_in_the_themes_folder() -> None:
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
    theme = load_theme("mine", tmp_path)
    assert (theme.primary, theme.dark, theme.variables) == ("#123456", False, {"gain": "#00aa00"})


def test_the_light_theme_is_light() -> None:
    assert not load_theme("qgtm-light").dark
    assert theme_variables(THEMES_DIR / "qgtm-dark.tcss")["background"] == "#000000"


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
