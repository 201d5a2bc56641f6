"""An attached terminal says so in its banner: which daemon, since when; in process not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual.app import App, ComposeResult
from textual.widgets import Label

from qgtm.core.protocol import Hello
from qgtm.tui.widgets.banner import Banner, attached_text
from tests.tui.widgets.test_banner import SNAPSHOT

STARTED = datetime(2026, 12, 7, 14, 2, tzinfo=UTC)
HELLO = Hello(pid=1234, data_dir="/tmp/book", started_at=STARTED, commands=("risk.status",))


class BannerApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Banner()


def test_the_attached_text_names_the_daemon_and_its_start_in_local_time() -> None:
    local = STARTED.astimezone()
    assert attached_text(HELLO, now=STARTED + timedelta(minutes=5)) == (
        f"ATTACHED pid 1234 since {local:%H:%M}"
    )
    later = attached_text(HELLO, now=STARTED + timedelta(days=2))
    assert later == f"ATTACHED pid 1234 since {local:%Y-%m-%d %H:%M}"
    assert attached_text(HELLO, narrow=True) == "ATT"


async def test_the_banner_shows_the_attachment_only_when_attached() -> None:
    app = BannerApp()
    async with app.run_test(size=(140, 3)):
        banner = app.query_one(Banner)
        banner.show(SNAPSHOT)
        assert not banner.has_class("-attached")
        assert str(app.query_one("#attached", Label).content) == ""
        banner.show(SNAPSHOT, HELLO)
        assert banner.has_class("-attached")
        assert str(app.query_one("#attached", Label).content).startswith("ATTACHED pid 1234 since")


async def test_an_in_process_terminal_shows_no_attachment(client) -> None:
    from qgtm.tui.app import QGTMApp

    app = QGTMApp(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        banner = app.screen.query_one(Banner)
        assert app.latest is not None and not banner.has_class("-attached")
        assert not app.screen.query_one("#attached", Label).display
        assert not [n for n in app._notifications if n.title == "attached"]
