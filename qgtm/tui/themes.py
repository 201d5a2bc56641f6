"""Terminal themes: each is a Textual `Theme` (framework colours) plus `themes/<name>.tcss`.

The `.tcss` file holds layout and QGTM's own colours (gains, losses, kill tiers); the
`Theme` colours Textual's built-in widgets (footer, tables, command palette) to match.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

from qgtm.core.paths import THEMES_DIR

AMBER = "#ffb000"
GAIN = "#3ddc84"
LOSS = "#ff4d4d"
MUTED = "#8a7a5a"

QGTM_DARK = Theme(
    name="qgtm-dark",
    primary=AMBER,
    secondary="#d98e04",
    accent="#ffd166",
    warning="#ffd60a",
    error=LOSS,
    success=GAIN,
    foreground=AMBER,
    background="#000000",
    surface="#0a0a0a",
    panel="#1a1300",
    dark=True,
)

THEMES: dict[str, Theme] = {QGTM_DARK.name: QGTM_DARK}


class UnknownThemeError(ValueError):
    """The requested theme has no `.tcss` file in the themes folder."""


def theme_css_path(theme_name: str) -> Path:
    """The stylesheet for `theme_name`; raises UnknownThemeError naming the choices."""
    path = THEMES_DIR / f"{theme_name}.tcss"
    if path.is_file():
        return path
    choices = ", ".join(sorted(p.stem for p in THEMES_DIR.glob("*.tcss"))) or "none"
    raise UnknownThemeError(f"no theme {theme_name!r} in {THEMES_DIR} (available: {choices})")
