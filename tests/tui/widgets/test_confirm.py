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


async def test_a_long_plan_scrolls_between_a_visible_title_and_visible_buttons_at_80x24():
    app = _Host()
    details = [f"SELL {n} SYM{n} at the next open" for n in range(40)]
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ConfirmModal("Flatten all positions: 40 closing orders", details))
        await pilot.pause()
        screen = app.screen
        title = screen.query_one("#confirm-title")
        buttons = [screen.query_one("#cancel"), screen.query_one("#confirm")]
        for widget in (title, *buttons):
            assert widget.region.y >= 0 and widget.region.bottom <= 24
        assert str(buttons[0].label) == "Cancel [n]"  # the keys show, not eaten as markup
        assert str(buttons[1].label) == "Confirm [y]"
        scroller = screen.query_one("#confirm-details")
        assert scroller.max_scroll_y > 0  # the rest of the plan is one scroll away
