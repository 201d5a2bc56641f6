"""Bloomberg-style mnemonics: what the command line understands.

A mnemonic names a screen (`PORT`, `RISK`, ...) as declared in the screen slots, or a
universe symbol (`GLD`), which opens the Security page for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class UnknownMnemonicError(ValueError):
    """The command line got something that is neither a mnemonic nor a symbol."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a mnemonic leads: a screen mode, and for the Security page its symbol."""

    mode: str
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class Mnemonic:
    """One command-line word and what it opens."""

    word: str
    title: str
    target: Target


def mnemonic_table(
    slots: Iterable[tuple[str, str, tuple[str, ...]]], symbols: Iterable[str]
) -> dict[str, Mnemonic]:
    """Every word the command line accepts: slot mnemonics, then each universe symbol.

    `slots` are (mode, title, mnemonics) triples.
    """
    table: dict[str, Mnemonic] = {}
    for mode, title, words in slots:
        for word in words:
            table[word.upper()] = Mnemonic(word.upper(), title, Target(mode))
    for symbol in symbols:
        word = symbol.upper()
        table.setdefault(word, Mnemonic(word, f"Security page {word}", Target("security", word)))
    return table


def resolve(text: str, table: dict[str, Mnemonic]) -> Target:
    """The target of `text` (case-insensitive, surrounding spaces ignored)."""
    word = text.strip().upper()
    if not word:
        raise UnknownMnemonicError("type a mnemonic (e.g. PORT) or a symbol (e.g. GLD)")
    try:
        return table[word].target
    except KeyError:
        raise UnknownMnemonicError(
            f"unknown mnemonic {word!r}: type HELP for the list of mnemonics and symbols"
        ) from None
