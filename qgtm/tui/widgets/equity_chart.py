"""The equity curve, drawn with plotext; redrawn only when the curve gains data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from textual.app import RenderResult
from textual.geometry import Size
from textual_plotext import PlotextPlot

from qgtm.tui.themes import palette

X_LABELS = 4
Y_LABELS = 5
X_LABEL_SPACING = 16
"""Columns per date label; plotext places overlapping labels unpredictably, so avoid overlap."""


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


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

    def on_mount(self) -> None:
        """Draw the empty chart."""
        super().on_mount()
        self.show_curve(())

    def show_curve(self, curve: Sequence[tuple[date, float]]) -> None:
        """Redraw if `curve` differs from what is drawn (its length or last point)."""
        key = (len(curve), curve[-1] if curve else None)
        if key == self._drawn:
            return
        self._drawn = key
        self._curve = curve
        self._draw(curve)
        self.refresh()

    def redraw(self) -> None:
        """Draw the curve again (after a theme change)."""
        self._draw(self._curve)
        self.refresh()

    def render(self) -> RenderResult:
        """Build the figure afresh after a resize: plotext keeps stale layout otherwise."""
        if self.size != self._drawn_size:
            self._draw(self._curve)
        return super().render()

    def _draw(self, curve: Sequence[tuple[date, float]]) -> None:
        self._drawn_size = self.size
        plt = self.plt
        plt.clear_figure()
        plt.frame(False)
        if not curve:
            plt.title("No sessions yet")
            return
        xs = list(range(len(curve)))
        equity = [value for _, value in curve]
        plt.plot(xs, equity, color=_rgb(palette().accent), marker="braille")
        low, high = min(equity), max(equity)
        y_ticks = [low + (high - low) * i / (Y_LABELS - 1) for i in range(Y_LABELS)]
        y_labels = [f"{value:,.0f}" for value in y_ticks]
        if high == low:
            y_ticks, y_labels = [low], [f"{low:,.0f}"]
        plt.yticks(y_ticks, y_labels)
        plot_width = self.size.width - max(len(label) for label in y_labels) - 2
        x_ticks = evenly_spaced(len(curve), min(X_LABELS, 1 + plot_width // X_LABEL_SPACING))
        plt.xticks(x_ticks, [curve[i][0].isoformat() for i in x_ticks])
