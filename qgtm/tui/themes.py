"""Terminal themes: each is `themes/<name>.tcss`, a file of colour variables.

The theme file is the one source of truth: `load_theme` reads its `$name: value;`
declarations into a Textual `Theme` (framework colours from `$primary` .. `$panel`, every
other variable made available to CSS), and `qgtm/tui/terminal.tcss` styles the terminal
with those variables only. Switching theme is `app.theme = name`; the choice persists in
a small file in the platform's user config dir (never in the repo).

Meaning colours have the same names in every theme: `$gain`, `$loss`, `$tier-*`, `$muted`.
`palette()` exposes the active theme's meaning colours to Python code that builds Rich
text (table cells).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from textual.theme import Theme

from qgtm.core.paths import APP_NAME, THEMES_DIR

DEFAULT_THEME = "qgtm-dark"
TERMINAL_CSS = Path(__file__).with_name("terminal.tcss")
FRAMEWORK_COLOURS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
)
_DECLARATION = re.compile(r"^\s*\$([\w-]+)\s*:\s*([^;]+);", re.MULTILINE)
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


class UnknownThemeError(ValueError):
    """The requested theme has no `.tcss` file in the themes folder."""


@dataclass(frozen=True, slots=True)
class Palette:
    """Meaning colours for Rich text: gains, losses, muted."""

    gain: str
    loss: str
    muted: str
    accent: str


def available_themes(themes_dir: Path = THEMES_DIR) -> list[str]:
    """Theme names, one per `.tcss` file."""
    return sorted(p.stem for p in themes_dir.glob("*.tcss"))


def theme_css_path(theme_name: str, themes_dir: Path = THEMES_DIR) -> Path:
    """The file of `theme_name`; raises UnknownThemeError naming the choices."""
    path = themes_dir / f"{theme_name}.tcss"
    if path.is_file():
        return path
    choices = ", ".join(available_themes(themes_dir)) or "none"
    raise UnknownThemeError(f"no theme {theme_name!r} in {themes_dir} (available: {choices})")


def theme_variables(path: Path) -> dict[str, str]:
    """The `$name: value;` declarations of a theme file, comments ignored."""
    text = _COMMENT.sub("", path.read_text(encoding="utf-8"))
    return {name: value.strip() for name, value in _DECLARATION.findall(text)}


def load_theme(theme_name: str, themes_dir: Path = THEMES_DIR) -> Theme:
    """A Textual Theme built from `themes/<theme_name>.tcss`."""
    variables = theme_variables(theme_css_path(theme_name, themes_dir))
    framework = {k: variables.pop(k) for k in FRAMEWORK_COLOURS if k in variables}
    dark = variables.pop("dark", "true").lower() != "false"
    if "primary" not in framework:
        raise UnknownThemeError(f"theme {theme_name!r} declares no $primary colour")
    return Theme(name=theme_name, dark=dark, variables=variables, **framework)


def load_all_themes(themes_dir: Path = THEMES_DIR) -> dict[str, Theme]:
    """Every theme in the folder, by name."""
    return {name: load_theme(name, themes_dir) for name in available_themes(themes_dir)}


def palette_of(theme: Theme) -> Palette:
    """The meaning colours of `theme`."""
    v = theme.variables
    return Palette(v["gain"], v["loss"], v["muted"], theme.primary)


THEMES: dict[str, Theme] = load_all_themes()
_active = palette_of(THEMES[DEFAULT_THEME])


def palette() -> Palette:
    """The active theme's meaning colours."""
    return _active


def activate_palette(theme_name: str) -> None:
    """Make `theme_name`'s meaning colours the ones Rich text uses from now on."""
    global _active
    _active = palette_of(THEMES.get(theme_name) or load_theme(theme_name))


def theme_choice_file() -> Path:
    """Where the terminal remembers the chosen theme: the user config dir."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "theme"


def saved_theme(path: Path) -> str | None:
    """The remembered theme name, if any and still available."""
    try:
        name = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name if name in THEMES else None


def save_theme(path: Path, theme_name: str) -> None:
    """Remember `theme_name` for the next start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(theme_name + "\n", encoding="utf-8")


# Colours of the default theme, for code that needs a constant (charts).
AMBER = THEMES[DEFAULT_THEME].primary
GAIN = _active.gain
LOSS = _active.loss
MUTED = _active.muted
