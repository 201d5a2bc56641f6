"""Price (close line) over volume (bars) for one symbol, drawn with plotext."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plotext import PlotextPlot

from qgtm.core.results import Bar
from qgtm.tui.themes import palette
from qgtm.tui.widgets.equity_chart import _rgb, evenly_spaced

X_LABELS = 4


class PriceVolumeChart(Vertical):
    """Two stacked plots sharing the x axis: closes on top, volume below."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._bars: Sequence[Bar] = ()

    def compose(self) -> ComposeResult:
        """Price plot (3/4 of the height) and volume plot."""
        yield PlotextPlot(classes="price-plot")
        yield PlotextPlot(classes="volume-plot")

    def show_bars(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Redraw both plots for `bars`."""
        self._bars = bars
        price = self.query_one(".price-plot", PlotextPlot)
        volume = self.query_one(".volume-plot", PlotextPlot)
        for plot in (price, volume):
            plot.plt.clear_figure()
            plot.plt.frame(False)
        if not bars:
            price.plt.title(f"{symbol}: no bars yet")
            price.refresh()
            volume.refresh()
            return
        xs = list(range(len(bars)))
        ticks = evenly_spaced(len(bars), X_LABELS)
        labels = [bars[i].session.isoformat() for i in ticks]
        price.plt.plot(xs, [b.close for b in bars], color=_rgb(palette().accent), marker="braille")
        price.plt.title(f"{symbol} close")
        price.plt.xticks(ticks, labels)
        volumes = [b.volume for b in bars]
        volume.plt.bar(xs, volumes, color=_rgb(palette().muted), marker="sd", width=0.6)
        volume.plt.xticks([], [])
        volume.plt.ylim(min(volumes) * 0.9, max(volumes) * 1.02)
        volume.plt.yticks([max(volumes)], [f"{max(volumes):,}"])
        price.refresh()
        volume.refresh()
