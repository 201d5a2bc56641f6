"""The banner shows mode, kill tier (coloured by class), replay state, equity and P&L."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Label

from qgtm.core.enums import KillTier, Mode, Source
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.widgets.banner import Banner

SNAPSHOT = EngineSnapshot(
    version=3,
    mode=Mode.PAPER,
    source=Source.DEMO,
    session=date(2024, 3, 1),
    sim_time=datetime(2024, 3, 1, 15, 30),
    running=True,
    speed=1.0,
    kill_tier=KillTier.NORMAL,
    equity=1_012_345.67,
    cash=500_000.0,
    daily_pnl=-2_345.5,
    total_pnl=12_345.67,
    drawdown=0.01,
    gross_leverage=0.5,
    sessions_done=3,
)


class BannerApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Banner()


def text(app: App[None], label_id: str) -> str:
    return str(app.query_one(f"#{label_id}", Label).content)


async def test_banner_shows_mode_clock_equity_and_signed_day_pnl() -> None:
    app = BannerApp()
    async with app.run_test(size=(140, 3)):
        app.query_one(Banner).show(SNAPSHOT)
        assert text(app, "mode").strip() == "PAPER · DEMO"
        assert text(app, "clock") == "2024-03-01 15:30"
        assert text(app, "equity") == "EQ 1,012,346"
        assert text(app, "day-pnl") == "DAY -2,345.50"
        assert app.query_one("#day-pnl").has_class("-loss")
        assert text(app, "run-state") == "RUNNING 1.0 s/s"


@pytest.mark.parametrize("tier", list(KillTier))
async def test_kill_tier_carries_the_class_that_colours_it(tier: KillTier) -> None:
    app = BannerApp()
    async with app.run_test(size=(140, 3)):
        app.query_one(Banner).show(dataclasses.replace(SNAPSHOT, kill_tier=tier))
        label = app.query_one("#kill-tier")
        assert text(app, "kill-tier").strip() == tier.name
        assert label.has_class(f"-tier-{tier.name.lower()}")
        others = [t for t in KillTier if t is not tier]
        assert not any(label.has_class(f"-tier-{t.name.lower()}") for t in others)


async def test_paused_max_speed_reads_paused_max() -> None:
    app = BannerApp()
    async with app.run_test(size=(140, 3)):
        app.query_one(Banner).show(dataclasses.replace(SNAPSHOT, running=False, speed=0.0))
        assert text(app, "run-state") == "PAUSED MAX"


async def test_live_mode_is_marked_for_its_warning_colour() -> None:
    app = BannerApp()
    async with app.run_test(size=(140, 3)):
        app.query_one(Banner).show(dataclasses.replace(SNAPSHOT, mode=Mode.LIVE))
        assert app.query_one("#mode").has_class("-live")


async def test_narrow_banner_keeps_the_date_and_drops_the_cents() -> None:
    app = BannerApp()
    async with app.run_test(size=(80, 3)) as pilot:
        await pilot.pause()
        app.query_one(Banner).show(SNAPSHOT)
        assert text(app, "clock") == "2024-03-01"
        assert text(app, "day-pnl") == "DAY -2,346"
