"""One footer line with the keys that work here, most important first, that fits 80 columns.

Textual's Footer gives every binding a cell of equal width and clips what does not fit
(at 80 columns the last keys were cut off mid-word). This footer writes compact
`key label` pairs in priority order and stops before the line would overflow, ending
with `…` when keys were left out; the Help screen (`?`) lists every binding.

Priority: the screen's own actions (what this screen is for), then the command line,
Help, pause and step, then the focused table's keys, then the other app keys, and
Quit last. Clicking a key presses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from qgtm.tui.themes import palette

FIRST_APP_KEYS = ("app.command_line", "screen.help", "app.pause", "app.step")
"""App bindings (by id) shown right after the screen's own actions, in this order."""
LAST_APP_KEYS = ("app.quit",)
"""App bindings shown after everything else."""
GAP = "  "
MORE = "…"


class FooterItem(NamedTuple):
    """One key as the footer shows it."""

    key: str
    """The key pressed when the item is clicked."""
    display: str
    label: str
    enabled: bool


def _rank(binding: Binding, node_is_app: bool, node_is_screen: bool) -> tuple[int, int]:
    if binding.id in FIRST_APP_KEYS:
        return 1, FIRST_APP_KEYS.index(binding.id)
    if binding.id in LAST_APP_KEYS:
        return 9, LAST_APP_KEYS.index(binding.id)
    if node_is_screen:
        return 0, 0
    if node_is_app:
        return 3, 0
    return 2, 0  # a focused widget's keys (tables: sort, filter, export)


def footer_items(screen: Screen, app: App) -> list[FooterItem]:
    """The shown bindings active on `screen`, one per action, in priority order."""
    ranked: list[tuple[tuple[int, int], int, FooterItem]] = []
    seen: set[str] = set()
    for order, (node, binding, enabled, _tooltip) in enumerate(screen.active_bindings.values()):
        if not binding.show or binding.action in seen:
            continue
        seen.add(binding.action)
        rank = _rank(binding, node is app, node is screen)
        item = FooterItem(binding.key, app.get_key_display(binding), binding.description, enabled)
        ranked.append((rank, order, item))
    return [item for *_, item in sorted(ranked, key=lambda entry: (entry[0], entry[1]))]


def fit(items: Iterable[FooterItem], width: int) -> tuple[list[FooterItem], bool]:
    """The leading items whose `key label` pairs fit in `width` columns (room is kept
    for the `…` that says more keys exist); True if some were left out."""
    items = list(items)
    shown: list[FooterItem] = []
    used = 0
    for index, item in enumerate(items):
        cost = len(GAP if shown else " ") + len(item.display) + 1 + len(item.label)
        reserve = 0 if index == len(items) - 1 else len(GAP) + len(MORE)
        if used + cost + reserve > width:
            return shown, True
        shown.append(item)
        used += cost
    return shown, False


class KeyFooter(Static):
    """The key footer: `key label` pairs that fit the width, most important first."""

    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        width: 100%;
        text-wrap: nowrap;
    }
    """

    def __init__(self) -> None:
        super().__init__("", id="key-footer")
        self.shown: list[FooterItem] = []
        """The items on the line now, in order."""
        self.clipped = False
        """True when keys were left out for lack of width."""

    def on_mount(self) -> None:
        """Follow the screen's bindings (focus changes, screen actions)."""
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.refresh_keys)

    def on_unmount(self) -> None:
        """Stop following the screen's bindings."""
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        """Refit the keys to the new width."""
        self.refresh_keys()

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh_keys()

    def refresh_keys(self) -> None:
        """Recompute which keys show and draw them."""
        if not self.is_attached:
            return
        width = self.size.width or self.app.size.width
        self.shown, self.clipped = fit(footer_items(self.screen, self.app), width)
        colours = palette()
        line = Text(no_wrap=True, overflow="crop")
        for item in self.shown:
            line.append(GAP if line else " ")
            click = Style(meta={"@click": f"app.simulate_key({item.key.split(',')[0]!r})"})
            key_style = Style(bold=True, color=colours.accent) if item.enabled else Style(dim=True)
            line.append(item.display, key_style + click)
            line.append(" " + item.label, click if item.enabled else Style(dim=True) + click)
        if self.clipped:
            line.append(GAP + MORE, Style(color=colours.muted))
        self.update(line, layout=False)

    @property
    def plain(self) -> str:
        """The footer line as plain text."""
        texts = [f"{item.display} {item.label}" for item in self.shown]
        return " " + GAP.join(texts) + (GAP + MORE if self.clipped else "")
