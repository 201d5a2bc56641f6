"""The engine protocol: every command declared once, with its arguments, result type,
kind (read or action) and the role it needs."""

from __future__ import annotations

import pytest

from qgtm.core.protocol import (
    COMMANDS,
    ENGINE_COMMANDS,
    Kind,
    Role,
    Scope,
    UnknownCommandError,
    command,
    parse_args,
)


def test_reads_need_a_viewer_and_actions_at_least_a_trader() -> None:
    for spec in COMMANDS.values():
        if spec.kind is Kind.READ:
            assert spec.role is Role.VIEWER, spec.name
        else:
            assert spec.role in (Role.TRADER, Role.ADMIN), spec.name


def test_who_may_change_who_may_do_what_is_an_admin() -> None:
    admin = {name for name, spec in COMMANDS.items() if spec.role is Role.ADMIN}
    assert admin == {"risk.approve_reset", "risk.add_operator"}
    for name in ("engine.pause", "engine.resume", "engine.advance", "engine.flatten"):
        assert COMMANDS[name].role is Role.TRADER and COMMANDS[name].kind is Kind.ACTION
    assert COMMANDS["risk.request_reset"].role is Role.TRADER
    assert COMMANDS["recon.run"].kind is Kind.ACTION


def test_terminal_polls_are_reads() -> None:
    for name in ("signals.recent", "market.bars", "risk.status", "execution.blotter"):
        assert COMMANDS[name].is_read, name
    assert COMMANDS["engine.hello"].scope is Scope.SESSION
    assert "engine.hello" not in ENGINE_COMMANDS and "engine.subscribe" not in ENGINE_COMMANDS


def test_arguments_are_checked_and_defaults_filled_in() -> None:
    spec = command("signals.recent")
    assert parse_args(spec, {}) == {"symbol": None, "limit": 200}
    assert parse_args(spec, {"symbol": "GLD", "limit": 5}) == {"symbol": "GLD", "limit": 5}
    with pytest.raises(ValueError, match=r"signals\.recent"):
        parse_args(spec, {"limt": 5})  # a typo is refused, not ignored
    with pytest.raises(ValueError, match=r"signals\.recent"):
        parse_args(spec, {"limit": "five"})


def test_an_undeclared_command_is_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownCommandError, match=r"unknown engine command 'no\.such'.*risk"):
        command("no.such")
