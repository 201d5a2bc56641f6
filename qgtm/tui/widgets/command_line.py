"""The Bloomberg-style command line: type a mnemonic (PORT, GLD, HELP, ...) and Enter.

Tab accepts the inline completion, Up/Down walk the history, Escape closes. Words that
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
        bind("command_line.older", "history(-1)", "Older", show=False),
        bind("command_line.newer", "history(1)", "Newer", show=False),
    ]

    def __init__(self, table: dict[str, Mnemonic], history: list[str]) -> None:
        super().__init__()
        self.table = table
        self.history = history
        """Shared with the app: entered words, oldest first; appended on success."""
        self._history_pos = len(history)

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
