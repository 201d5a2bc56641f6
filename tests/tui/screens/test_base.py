"""The contract between screens / palette commands and the app (screens.base.TerminalApp)."""

from __future__ import annotations

import inspect

from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.base import TerminalApp


def _protocol_members() -> set[str]:
    own = {
        name
        for name, value in vars(TerminalApp).items()
        if not name.startswith("_") and callable(value)
    }
    return own | set(TerminalApp.__annotations__)


def test_the_app_has_every_member_screens_and_palette_commands_use(client):
    app = QGTMApp(client)

    missing = sorted(name for name in _protocol_members() if not hasattr(app, name))

    assert missing == []


def test_the_apps_methods_take_what_the_contract_passes():
    for name in _protocol_members() - set(TerminalApp.__annotations__):
        wanted = inspect.signature(getattr(TerminalApp, name))
        actual = inspect.signature(getattr(QGTMApp, name))
        for param in wanted.parameters.values():
            assert param.name in actual.parameters, f"QGTMApp.{name} lacks {param.name}"
        assert inspect.iscoroutinefunction(getattr(TerminalApp, name)) == (
            inspect.iscoroutinefunction(getattr(QGTMApp, name))
        ), f"QGTMApp.{name}: async differs from the contract"
