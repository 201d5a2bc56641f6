"""Mnemonics as data: what the command line accepts and where it leads."""

from __future__ import annotations

import pytest

from qgtm.tui.app import PLACEHOLDER_SLOTS, SCREEN_SLOTS, effective_slots
from qgtm.tui.mnemonics import Target, UnknownMnemonicError, mnemonic_table, resolve
from qgtm.tui.screens.base import ScreenSlot
from qgtm.tui.screens.empty import placeholder_screen
from qgtm.tui.screens.portfolio import PortfolioScreen
from qgtm.tui.widgets.command_line import fuzzy_matches

TABLE = mnemonic_table(
    [("portfolio", "Portfolio", ("PORT",)), ("help", "Help", ("HELP",))], ["GLD"]
)


def test_a_screen_mnemonic_leads_to_its_screen_in_any_case() -> None:
    assert resolve(" port ", TABLE) == Target("portfolio")


def test_a_symbol_leads_to_its_security_page() -> None:
    assert resolve("gld", TABLE) == Target("security", "GLD")


def test_an_unknown_word_gets_a_message_pointing_to_help() -> None:
    with pytest.raises(UnknownMnemonicError, match=r"unknown mnemonic .XYZ.*HELP"):
        resolve("xyz", TABLE)


def test_fuzzy_matches_rank_the_closest_word_first() -> None:
    assert fuzzy_matches("prt", TABLE)[0].word == "PORT"


PENDING = (
    ScreenSlot("risk", "Risk", placeholder_screen("Risk", "arrives later"), "4,f4", ("RISK",)),
    ScreenSlot("research", "Research", placeholder_screen("Research", "later"), "5,f5", ("BT",)),
)


def test_every_screen_owner_has_landed_so_no_placeholder_is_left() -> None:
    assert PLACEHOLDER_SLOTS == ()


def test_a_real_slot_takes_over_its_placeholder_by_mode_and_inherits_its_mnemonics() -> None:
    risk = ScreenSlot("risk", "Risk", PortfolioScreen, "4,f4")
    slots = effective_slots((risk,), PENDING)
    taken = [s for s in slots if s.mode == "risk"]
    assert taken == [ScreenSlot("risk", "Risk", PortfolioScreen, "4,f4", ("RISK",))]


def test_a_real_slot_takes_over_a_placeholder_by_mnemonic() -> None:
    backtests = ScreenSlot("backtests", "Backtests", PortfolioScreen, "5,f5", ("BT",))
    slots = effective_slots((backtests,), PENDING)
    assert "research" not in {s.mode for s in slots}


def test_every_issue_mnemonic_is_reachable() -> None:
    slots = effective_slots(SCREEN_SLOTS, PLACEHOLDER_SLOTS)
    words = {w for s in slots for w in s.mnemonics}
    wanted = {"PORT", "RISK", "SIG", "ORD", "TCA", "STRAT", "BT", "REGIME", "RECON", "AUD"}
    assert wanted | {"DATA", "HELP"} <= words
