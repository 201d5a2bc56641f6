"""The equity curve, drawn with plotext; redrawn only when the curve gains data, and at
most once per CHART_INTERVAL seconds, so a fast replay does not spend the terminal's
time on frames the eye cannot follow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from time import monotonic

from textual.app import RenderResult
from textual.geometry import Size
from textual.timer import Timer
from textual_plotext import PlotextPlot

from qgtm.tui.themes import palette

X_LABELS = 4
Y_LABELS = 5
X_LABEL_SPACING = 16
"""Columns per date label; plotext places overlapping labels unpredictably, so avoid overlap."""
CHART_INTERVAL = 2.0
"""Seconds between redraws while the curve keeps growing (the last state is always drawn)."""
POINTS_PER_COLUMN = 2
"""Braille markers have two dots per column: more points than that cannot be seen."""


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def thinned(count: int, columns: int) -> list[int]:
    """Indices of at most POINTS_PER_COLUMN * `columns` points of `count`, first and last
    always kept: what a plot `columns` wide can show of a long curve."""
    limit = max(2, POINTS_PER_COLUMN * columns)
    if count <= limit:
        return list(range(count))
    return evenly_spaced(count, limit)


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """Up to `wanted` indices spread over range(count), always including both ends."""
    if wanted <= 1:
        return [count - 1]
    if count <= wanted:
        return list(range(count))
    step = (count - 1) / (wanted - 1)
    return sorted({round(i * step) for i in range(wanted)})


class EquityChart(PlotextPlot):
    """Account equity per session, x labelled with session dates, y with separators."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._curve: Sequence[tuple[date, float]] = ()
        self._drawn: tuple[int, tuple[date, float] | None] = (-1, None)
        self._drawn_size = Size(0, 0)
        self._drawn_at = -CHART_INTERVAL
        self._pending: Timer | None = None
        self._rendered: tuple[tuple[object, ...], RenderResult] | None = None
        self._generation = 0

    def on_mount(self) -> None:
        """Draw the empty chart."""
        super().on_mount()
        self.show_curve(())

    def show_curve(self, curve: Sequence[tuple[date, float]]) -> None:
        """Redraw if `curve` differs from what is drawn (its length or last point).

        Within CHART_INTERVAL of the previous redraw the curve is kept and drawn when
        the interval is up, so the newest curve is always shown, at most once per
        CHART_INTERVAL; a chart that showed no points yet draws its first ones at once.
        """
        key = (len(curve), curve[-1] if curve else None)
        if key == self._drawn:
            return
        had_points = bool(self._curve)
        self._drawn = key
        self._curve = curve
        wait = self._drawn_at + CHART_INTERVAL - monotonic()
        if wait > 0 and had_points:  # the first points are drawn at once
            if self._pending is None:
                self._pending = self.set_timer(wait, self._draw_pending)
            return
        self.redraw()

    @property
    def redraw_pending(self) -> bool:
        """True while a newer curve waits for its CHART_INTERVAL to be drawn."""
        return self._pending is not None

    def _draw_pending(self) -> None:
        self._pending = None
        self.redraw()

    def redraw(self) -> None:
        """Draw the curve now (also after a theme change)."""
        self._drawn_at = monotonic()
        self._draw(self._curve)
        self.refresh()

    def render(self) -> RenderResult:
        """The figure, built afresh only after a redraw, a resize or a theme change.

        plotext keeps stale layout after a resize, so the figure is drawn again then.
        """
        if self.size != self._drawn_size:
            self._draw(self._curve)
        key = (self._generation, self.size, self.app.theme)
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        result = super().render()
        self._rendered = (key, result)
        return result

    def _draw(self, curve: Sequence[tuple[date, float]]) -> None:
        self._generation += 1
        self._drawn_size = self.size
        plt = self.plt
        plt.clear_figure()
        plt.frame(False)
        if not curve:
            plt.title("No sessions yet")
            return
        equity = [value for _, value in curve]
        # the lowest and highest points stay in, so the line spans its y labels
        extremes = {equity.index(min(equity)), equity.index(max(equity))}
        xs = sorted(set(thinned(len(curve), self.size.width)) | extremes)
        plt.plot(xs, [equity[i] for i in xs], color=_rgb(palette().accent), marker="braille")
        low, high = min(equity), max(equity)
        y_ticks = [low + (high - low) * i / (Y_LABELS - 1) for i in range(Y_LABELS)]
        y_labels = [f"{value:,.0f}" for value in y_ticks]
        if high == low:
            y_ticks, y_labels = [low], [f"{low:,.0f}"]
        plt.yticks(y_ticks, y_labels)
        plot_width = self.size.width - max(len(label) for label in y_labels) - 2
        x_ticks = evenly_spaced(len(curve), min(X_LABELS, 1 + plot_width // X_LABEL_SPACING))
        plt.xticks(x_ticks, [curve[i][0].isoformat() for i in x_ticks])
