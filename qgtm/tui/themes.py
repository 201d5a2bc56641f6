"""Terminal themes: each is a `<name>.tcss` file of colour variables.

QGTM's themes ship inside the package (`qgtm/themes/`); a user's own go in `themes/` of
the platform's user config dir, and one there with a packaged theme's name replaces it.
The theme file is the one source of truth: `load_theme` reads its `$name: value;`
declarations into a Textual `Theme` (framework colours from `$primary` .. `$panel`, every
other variable made available to CSS), and `qgtm/tui/terminal.tcss` styles the terminal
with those variables only. Switching theme is `app.theme = name`; the choice persists in
a small file in the platform's user config dir (never in the repo).

Meaning colours have the same names in every theme: `$gain`, `$loss`, `$tier-*`, `$muted`.
Any other Textual theme (nord, dracula, ... offered by Textual's theme picker) gets them
from its framework colours (`qgtm_variables`), so every theme the picker offers works.
`palette()` exposes the active theme's meaning colours to Python code that builds Rich
text (table cells).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs
from textual.color import Color
from textual.theme import Theme

from qgtm.core.paths import APP_NAME, PACKAGE_THEMES_DIR, user_themes_dir

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
    """The requested theme has no `.tcss` file in the packaged or the user's themes."""


@dataclass(frozen=True, slots=True)
class Palette:
    """Meaning colours for Rich text: gains, losses, muted."""

    gain: str
    loss: str
    muted: str
    accent: str


def theme_dirs() -> tuple[Traversable, ...]:
    """Where themes are found, a later folder winning on a name: the packaged themes,
    then the user's own (themes/ in the user config dir)."""
    return (PACKAGE_THEMES_DIR, user_themes_dir())


def theme_files(dirs: Sequence[Traversable] | None = None) -> dict[str, Traversable]:
    """Every theme file by name (the file name without `.tcss`); missing folders are skipped."""
    found: dict[str, Traversable] = {}
    for folder in theme_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".tcss") and entry.is_file():
                found[entry.name.removesuffix(".tcss")] = entry
    return found


def available_themes(dirs: Sequence[Traversable] | None = None) -> list[str]:
    """Theme names, one per `.tcss` file."""
    return sorted(theme_files(dirs))


def theme_css_path(theme_name: str, dirs: Sequence[Traversable] | None = None) -> Traversable:
    """The file of `theme_name`; raises UnknownThemeError naming the choices."""
    found = theme_files(dirs)
    if theme_name in found:
        return found[theme_name]
    choices = ", ".join(sorted(found)) or "none"
    raise UnknownThemeError(
        f"no theme {theme_name!r} (available: {choices}; your own .tcss themes go in "
        f"{user_themes_dir()})"
    )


def theme_variables(path: Traversable) -> dict[str, str]:
    """The `$name: value;` declarations of a theme file, comments ignored."""
    text = _COMMENT.sub("", path.read_text(encoding="utf-8"))
    return {name: value.strip() for name, value in _DECLARATION.findall(text)}


def load_theme(theme_name: str, dirs: Sequence[Traversable] | None = None) -> Theme:
    """A Textual Theme built from the theme file `<theme_name>.tcss`."""
    variables = theme_variables(theme_css_path(theme_name, dirs))
    framework = {k: variables.pop(k) for k in FRAMEWORK_COLOURS if k in variables}
    dark = variables.pop("dark", "true").lower() != "false"
    if "primary" not in framework:
        raise UnknownThemeError(f"theme {theme_name!r} declares no $primary colour")
    return Theme(name=theme_name, dark=dark, variables=variables, **framework)


def load_all_themes(dirs: Sequence[Traversable] | None = None) -> dict[str, Theme]:
    """Every theme in the folders, by name. A file that is not a theme (no `$primary`,
    unreadable) is left out and logged, so one bad user file cannot stop the terminal;
    asking for it by name then says which themes exist."""
    themes: dict[str, Theme] = {}
    for name in available_themes(dirs):
        try:
            themes[name] = load_theme(name, dirs)
        except (UnknownThemeError, OSError, UnicodeDecodeError) as exc:
            logging.getLogger(__name__).warning("event=theme_skipped theme=%s reason=%s", name, exc)
    return themes


def _truecolor(value: str, foreground: bool = True) -> Color:
    """`value` as an RGB colour; an ANSI colour (Textual's ansi-* themes) becomes the RGB
    of Rich's standard terminal palette, `ansi_default` the default fore/background."""
    colour = Color.parse(value)
    if colour.ansi is None:
        return colour.with_alpha(1.0)
    red, green, blue = colour.rich_color.get_truecolor(foreground=foreground)
    return Color(red, green, blue)


def _mix(value: str, other: str, fraction: float) -> str:
    """`value` moved `fraction` of the way towards `other`, as #RRGGBB."""
    return _truecolor(value).blend(_truecolor(other, foreground=False), fraction).hex6


def qgtm_variables(theme: Theme) -> dict[str, str]:
    """QGTM's own colour variables (what terminal.tcss and `palette()` use besides
    Textual's) for any Textual theme, from its framework colours: gains in its success
    colour, losses in its error colour, the kill tiers from success through warning to
    error, dim text blended towards the background. A QGTM theme file's declarations
    override these; a theme without them (Textual's nord, dracula, ...) still gets them all."""
    system = theme.to_color_system().generate()
    fg, bg = system["foreground"], system["background"]
    warning, error, success = system["warning"], system["error"], system["success"]
    return {
        "fg": fg,
        "bg": bg,
        "fg-dim": _mix(fg, bg, 0.5),
        "fg-faint": _mix(fg, bg, 0.85),
        "cursor-bg": _mix(system["primary"], bg, 0.55),
        "cursor-fg": fg,
        "badge-bg": system["accent"],
        "badge-fg": bg,
        "gain": success,
        "loss": error,
        "muted": _mix(fg, bg, 0.4),
        "tier-normal": success,
        "tier-warn": warning,
        "tier-throttle": _mix(warning, error, 0.5),
        "tier-no-new": error,
        "tier-flatten": error,
    }


def palette_of(theme: Theme) -> Palette:
    """The meaning colours of `theme` as #RRGGBB (Rich styles and chart colours)."""
    v = {**qgtm_variables(theme), **theme.variables}
    return Palette(
        _truecolor(v["gain"]).hex6.lower(),
        _truecolor(v["loss"]).hex6.lower(),
        _truecolor(v["muted"]).hex6.lower(),
        _truecolor(theme.primary or v["fg"]).hex6.lower(),
    )


THEMES: dict[str, Theme] = load_all_themes()
_active = palette_of(THEMES[DEFAULT_THEME])


def palette() -> Palette:
    """The active theme's meaning colours."""
    return _active


def activate_palette(theme: str | Theme) -> None:
    """Make the meaning colours of `theme` (a Theme, or the name of one of QGTM's) the
    ones Rich text uses from now on."""
    global _active
    if isinstance(theme, str):
        theme = THEMES.get(theme) or load_theme(theme)
    _active = palette_of(theme)


def theme_choice_file() -> Path:
    """Where the terminal remembers the chosen theme: the user config dir."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "theme"


def saved_theme(path: Path, known: Collection[str] | None = None) -> str | None:
    """The remembered theme name, if any and still available (in `known`, by default
    QGTM's themes; the app passes every theme it offers)."""
    try:
        name = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name if name in (THEMES if known is None else known) else None


def save_theme(path: Path, theme_name: str) -> None:
    """Remember `theme_name` for the next start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(theme_name + "\n", encoding="utf-8")


# Colours of the default theme, for code that needs a constant (charts).
AMBER = THEMES[DEFAULT_THEME].primary
GAIN = _active.gain
LOSS = _active.loss
MUTED = _active.muted
