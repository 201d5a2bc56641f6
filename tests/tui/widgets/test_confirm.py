from textual.app import App

from qgtm.tui.widgets.confirm import ConfirmModal


class _Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bool] = []

    def ask(self) -> None:
        modal = ConfirmModal("Flatten every position?", ["SELL 100 GLD", "BUY 50 USO"], "Flatten")
        self.push_screen(modal, self.answers.append)


async def test_y_confirms_and_shows_exactly_what_will_happen():
    app = _Host()
    async with app.run_test() as pilot:
        app.ask()
        await pilot.pause()
        texts = [str(w.content) for w in app.screen.query(".confirm-detail")]
        assert texts == ["• SELL 100 GLD", "• BUY 50 USO"]
        await pilot.press("y")
        await pilot.pause()
    assert app.answers == [True]


async def test_escape_cancels():
    app = _Host()
    async with app.run_test() as pilot:
        app.ask()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.answers == [False]
