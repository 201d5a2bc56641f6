"""The Bloomberg-style command line: type a mnemonic (PORT, GLD, HELP, ...) and Enter.

Tab completes the word (the inline suggestion first); pressing it again cycles through
the other matches, shift+Tab back. Up/Down walk the history, Escape closes. Words that
fuzzily match what is typed are listed below the line; an unknown word gets a clear
message and the line stays open.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from qgtm.tui.keymap import bind
from qgtm.tui.mnemonics import Mnemonic, Target, UnknownMnemonicError, resolve

MAX_MATCHES = 6


def fuzzy_matches(
    text: str, table: dict[str, Mnemonic], limit: int = MAX_MATCHES
) -> list[Mnemonic]:
    """Mnemonics matching `text` (fuzzy on word and title), best first."""
    if not text.strip():
        return []
    matcher = Matcher(text.strip())
    scored = []
    for mnemonic in table.values():
        score = max(matcher.match(mnemonic.word) * 2, matcher.match(mnemonic.title))
        if score > 0:
            scored.append((score, mnemonic.word, mnemonic))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [m for _, _, m in scored[:limit]]


def completions(text: str, table: dict[str, Mnemonic]) -> list[str]:
    """Words Tab offers for `text`, in cycling order: those that start with it
    (alphabetical, so the first is the inline suggestion), then fuzzy matches."""
    typed = text.strip().upper()
    if not typed:
        return []
    prefixed = sorted(word for word in table if word.startswith(typed))
    fuzzy = [m.word for m in fuzzy_matches(typed, table) if m.word not in prefixed]
    return prefixed + fuzzy


class CommandLine(ModalScreen[Target | None]):
    """A one-line prompt at the bottom of the screen; dismisses with the chosen Target."""

    DEFAULT_CSS = """
    CommandLine { align: left bottom; background: $background 40%; }
    CommandLine > Vertical { height: auto; width: 100%; background: $panel; }
    CommandLine #command-matches { color: $text-muted; padding: 0 1; height: auto; }
    CommandLine #command-error { color: $error; padding: 0 1; height: auto; }
    CommandLine Input { border: none; height: 1; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("command_line.close", "close", "Close"),
        bind("command_line.complete", "complete(1)", "Complete", show=False),
        bind("command_line.complete_back", "complete(-1)", "Complete back", show=False),
        bind("command_line.older", "history(-1)", "Older", show=False),
        bind("command_line.newer", "history(1)", "Newer", show=False),
    ]

    def __init__(self, table: dict[str, Mnemonic], history: list[str]) -> None:
        super().__init__()
        self.table = table
        self.history = history
        """Shared with the app: entered words, oldest first; appended on success."""
        self._history_pos = len(history)
        self._cycle: list[str] = []
        """The words Tab cycles through, fixed at the first Tab after typing."""
        self._cycle_index = 0

    def compose(self) -> ComposeResult:
        """Matches, error line, the prompt."""
        with Vertical():
            yield Static("", id="command-matches", markup=False)
            yield Static("", id="command-error", markup=False)
            yield Input(
                placeholder="mnemonic (PORT, SIG, GLD, HELP …) and Enter; Tab completes",
                suggester=SuggestFromList(sorted(self.table), case_sensitive=False),
                id="command-input",
            )

    @on(Input.Changed)
    def _show_matches(self, event: Input.Changed) -> None:
        if self._cycle and event.value == self._cycle[self._cycle_index]:
            return  # Tab put it there: keep listing what Tab cycles through
        self._cycle = []
        self.query_one("#command-error", Static).update("")
        matches = fuzzy_matches(event.value, self.table)
        lines = [f"{m.word:<8} {m.title}" for m in matches]
        self.query_one("#command-matches", Static).update("\n".join(lines))

    @on(Input.Submitted)
    def _go(self, event: Input.Submitted) -> None:
        try:
            target = resolve(event.value, self.table)
        except UnknownMnemonicError as error:
            self.query_one("#command-error", Static).update(str(error))
            return
        word = event.value.strip().upper()
        if not self.history or self.history[-1] != word:
            self.history.append(word)
        self.dismiss(target)

    def action_complete(self, step: int) -> None:
        """Complete the typed word; again, the next (+1) or previous (-1) match.

        Nothing matches: the text stays as typed and the error line says so.
        """
        line = self.query_one("#command-input", Input)
        cycling = bool(self._cycle) and line.value == self._cycle[self._cycle_index]
        if cycling:
            self._cycle_index = (self._cycle_index + step) % len(self._cycle)
        else:
            self._cycle = completions(line.value, self.table)
            if not self._cycle:
                if line.value.strip():
                    message = f"no mnemonic or symbol matches {line.value.strip().upper()!r}"
                    self.query_one("#command-error", Static).update(message)
                return
            self._cycle_index = 0 if step > 0 else len(self._cycle) - 1
            self._list_cycle()
        line.value = self._cycle[self._cycle_index]
        line.cursor_position = len(line.value)

    def _list_cycle(self) -> None:
        """Show what Tab cycles through (up to MAX_MATCHES of them) with their titles."""
        lines = [f"{word:<8} {self.table[word].title}" for word in self._cycle[:MAX_MATCHES]]
        self.query_one("#command-matches", Static).update("\n".join(lines))
        self.query_one("#command-error", Static).update("")

    def action_history(self, step: int) -> None:
        """Replace the line with an older (-1) or newer (+1) history entry."""
        if not self.history:
            return
        self._history_pos = max(0, min(len(self.history), self._history_pos + step))
        line = self.query_one("#command-input", Input)
        line.value = (
            self.history[self._history_pos] if self._history_pos < len(self.history) else ""
        )
        line.cursor_position = len(line.value)

    def action_close(self) -> None:
        """Leave without going anywhere."""
        self.dismiss(None)
