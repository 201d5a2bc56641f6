"""Key bindings as data: every binding has an id, its default keys live here, users remap.

Classes declare their bindings with `bind(id, action, description)`; the keys come from
`DEFAULT_KEYS`. A user overrides any of them in the config file:

    [tui.keymap]
    "app.pause" = "ctrl+space"
    "screen.portfolio" = "f9,P"

`QGTMApp` applies the overrides with Textual's `App.set_keymap` (binding ids map to keys).
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

DEFAULT_KEYS: dict[str, str] = {
    "app.command_line": "colon,f12",
    "app.pause": "p,space",
    "app.faster": "plus,equals_sign",
    "app.slower": "minus",
    "app.step": "n",
    "app.quit": "q",
    "table.sort": "s",
    "table.filter": "slash",
    "table.export_csv": "x",
    "table.export_parquet": "X",
    "table.reverse": "S",
    "research.run": "ctrl+r",
    "research.switch_tables": "ctrl+t",
    "research.stored_runs": "ctrl+o",
    "research.cancel": "ctrl+g",
    "research.leave_field": "escape",
    "risk.request_reset": "r",
    "risk.approve_reset": "a",
    "audit.filter": "slash",
    "audit.leave_filter": "escape",
    "audit.event": "e",
    "audit.actor": "a",
    "audit.clear": "c",
    "data.refresh": "r",
    "recon.reconcile": "r",
    "command_line.close": "escape",
    "command_line.complete": "tab",
    "command_line.complete_back": "shift+tab",
    "command_line.older": "up",
    "command_line.newer": "down",
    "confirm.yes": "y,enter",
    "confirm.no": "n,escape",
    "operator.cancel": "escape",
    "stored_runs.close": "escape",
}
"""Binding id -> default keys (comma-separated). Screen keys are added from SCREEN_SLOTS."""


class UnknownBindingError(ValueError):
    """A keymap override names a binding id that does not exist."""


def bind(
    binding_id: str,
    action: str,
    description: str,
    *,
    keys: str | None = None,
    show: bool = True,
    key_display: str | None = None,
    priority: bool = False,
) -> Binding:
    """A Binding with id `binding_id` and its default keys (from DEFAULT_KEYS unless given)."""
    return Binding(
        keys if keys is not None else DEFAULT_KEYS[binding_id],
        action,
        description,
        show=show,
        key_display=key_display,
        priority=priority,
        id=binding_id,
    )


def check_keymap(overrides: Mapping[str, str], known_ids: set[str]) -> dict[str, str]:
    """The overrides as a plain dict; raises UnknownBindingError naming bad ids."""
    unknown = sorted(set(overrides) - known_ids)
    if unknown:
        raise UnknownBindingError(
            f"unknown key binding id(s) in [tui.keymap]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known_ids))})"
        )
    return {str(k): str(v) for k, v in overrides.items()}


_KEY_NAMES = {
    "question_mark": "?",
    "colon": ":",
    "slash": "/",
    "equals_sign": "=",
    "plus": "+",
    "minus": "-",
    "space": "space",
}


def keys_label(keys: str) -> str:
    """Readable keys for help and footers, e.g. "question_mark,f11" -> "? f11"."""
    return " ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(",") if k.strip())
