"""Regime detector: labels each decision session trending, mean-reverting or crisis.

Inputs, all from bars strictly before the session (a PricePanel `history`):
- the equal-weight index of the universe (mean daily log return across funds);
- a two-state Markov switching model of that index's returns with switching variance
  (statsmodels MarkovRegression, Hamilton 1989; Kim & Nelson 1999), giving the filtered
  probability of the high-variance state;
- rule-based indicators: the index's 21-day vol percentile within its trailing year, its
  drawdown from the 252-day peak, the percentile of the vol-weighted average 21-day
  correlation (a correlation spike), and the mean 63-day Kaufman efficiency ratio of the funds.

Label (first match wins):
  crisis          vol percentile >= 0.85; or vol percentile >= 0.6 together with the
                  Markov high-variance probability > 0.5 or a correlation spike
                  (percentile >= 0.95); or a drawdown of 30% or more;
  trending        mean efficiency ratio >= `trend_threshold`;
  mean_reverting  otherwise.
That is the session's own ("raw") label. The label a session gets is confirmed: a new
regime takes over only once the raw label has called it `confirm` sessions in a row
(default 2); until then the last confirmed regime holds (`confirmed_label`). The raw
rules alone flip often: on the demo market (2008-2025) the raw label changed 609 times
in 4,229 sessions (median spell 2 sessions), and each flip moves every regime-filtered
strategy in or out of the book. Confirmed over 2 sessions it changes 218 times (median
spell 9), with crisis recall 56% and precision 37% on the hidden regimes below (58% and
35% raw). Over 3 sessions: 131 changes, recall 52%; letting a crisis in at once instead:
311-394 changes, recall 70-75% but precision 32-34% (bench/regime_accuracy.py, all on
2026-11-26). The confirmed label is still a function of the bars before the session
only: it reads the raw labels of the sessions before it.

The rules' thresholds were chosen on the demo market's hidden regimes (2008-2014,
bench/regime_accuracy.py): raw crisis recall ~58% and precision ~35-38% at a 13% base
rate, on par with the vol-percentile rule alone; trending vs calm is barely separable there.

Speed: the Markov model is refitted only every `refit_every` sessions (default 21, about
monthly) on the `fit_window` sessions before the refit point, using EM only (about 0.1 s);
between refits the stored parameters run the Hamilton filter forward over the new days,
which costs microseconds. Fits are cached by refit point and a digest of their data, and
raw readings by a digest of the bars they read, so the confirmation costs one new raw
reading a session; a label for session t depends only on bars before t.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from qgtm.core.regime import CONFIRM_DEFAULT, CRISIS, MEAN_REVERTING, TRENDING
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf

CONFIRM_SCAN = 63
"""Sessions `RegimeDetector.label` reads back for a confirmed regime before it gives up
and takes the session's own label (a quarter of flicker without 2 equal labels in a row)."""
RAW_MEMO = 4096
"""Raw readings a detector remembers (a backtest's sessions; the oldest go first)."""


@dataclass(frozen=True, slots=True)
class MarkovFit:
    """Two-state zero-mean switching-variance model: P[i, j] = P(s_t = j | s_{t-1} = i)."""

    transition: np.ndarray
    variance: np.ndarray  # per state, in (percent return)^2
    high_state: int


@dataclass(frozen=True, slots=True)
class RegimeReading:
    """The label for `day` and the indicators behind it."""

    day: date
    label: str  # the confirmed regime (see the module docstring)
    high_vol_probability: float
    vol_percentile: float
    drawdown: float
    correlation_percentile: float
    efficiency: float
    raw_label: str = ""  # what this session's own indicators call for


def confirmed_label(newest_first: Sequence[str | None], confirm: int) -> str | None:
    """The confirmed regime from raw labels, the session's own first, then the sessions
    before it: the newest label that closes `confirm` equal labels in a row. None when
    the labels run out (or reach a session without a label) first: the caller then
    takes the session's own label.

    ("crisis", "trending", "trending") with confirm 2: trending holds until the crisis
    is called twice in a row.
    """
    for j, label in enumerate(newest_first):
        if label is None:
            return None
        if confirm <= 1:
            return label
        run = newest_first[j : j + confirm]
        if len(run) < confirm:
            return None
        if all(other == label for other in run):
            return label
    return None


def fit_markov(returns_pct: np.ndarray) -> MarkovFit:
    """EM fit of a 2-state switching-variance model (statsmodels, no constant)."""
    model = MarkovRegression(returns_pct, k_regimes=2, trend="n", switching_variance=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from short windows
        # return_params: the fitted parameters only, without the results object's
        # smoothing pass and numerical-Hessian covariance (2/3 of a fit's time, unused)
        fitted = model.fit(disp=False, search_reps=0, em_iter=25, maxiter=0, return_params=True)
    params = dict(zip(model.param_names, np.asarray(fitted), strict=True))
    p00, p10 = params["p[0->0]"], params["p[1->0]"]
    transition = np.array([[p00, 1.0 - p00], [p10, 1.0 - p10]])
    variance = np.array([params["sigma2[0]"], params["sigma2[1]"]])
    return MarkovFit(transition, variance, int(np.argmax(variance)))


def hamilton_filter(fit: MarkovFit, returns_pct: np.ndarray) -> np.ndarray:
    """Filtered P(s_t = k | r_1..r_t) for each t (Hamilton 1989), from the stationary law.

    xi_t = (P' xi_{t-1}) * f(r_t | k) / sum(...), f the zero-mean normal density. Two
    states, so the recursion runs on Python floats (about a microsecond a step).
    """
    (p00, p01), (p10, p11) = fit.transition.tolist()
    s0, s1 = (float(v) ** 0.5 for v in fit.variance)
    stay = p00 + p11
    x0 = (1.0 - p11) / (2.0 - stay) if stay < 2.0 else 0.5
    x1 = 1.0 - x0
    out = np.empty((len(returns_pct), 2))
    for t, r in enumerate(returns_pct.tolist()):
        f0 = math.exp(-0.5 * (r / s0) ** 2) / s0
        f1 = math.exp(-0.5 * (r / s1) ** 2) / s1
        j0 = (p00 * x0 + p10 * x1) * f0
        j1 = (p01 * x0 + p11 * x1) * f1
        total = j0 + j1
        x0, x1 = (j0 / total, j1 / total) if total > 0 else (0.5, 0.5)
        out[t] = (x0, x1)
    return out


class RegimeDetector:
    """Labels sessions from history; refits the Markov model on a schedule (see module)."""

    def __init__(
        self,
        refit_every: int = 21,
        fit_window: int = 504,
        min_history: int = 300,
        trend_threshold: float = 0.18,
        confirm: int = CONFIRM_DEFAULT,
    ) -> None:
        self.refit_every = refit_every
        self.fit_window = fit_window
        self.min_history = min_history
        self.trend_threshold = trend_threshold
        self.confirm = confirm
        self._fits: dict[tuple[date, str], MarkovFit] = {}
        self._raw: dict[tuple[date, int, bytes], RegimeReading | None] = {}
        self.fits_done = 0

    def _fit_rows(self, history: PricePanel) -> tuple[int, int]:
        """(anchor, start): the latest refit point (in daily returns) and the first row
        of its fit window; a reading reads the bars from `start` on."""
        rows = len(history) - 1  # daily returns available
        anchor = self.min_history + (rows - self.min_history) // self.refit_every * self.refit_every
        return anchor, max(anchor - self.fit_window, 0)

    def _fit_for(self, history: PricePanel) -> tuple[MarkovFit, np.ndarray]:
        """The fit at the latest refit point and the index returns (percent) from the start
        of its data window to the end of `history`."""
        anchor, start = self._fit_rows(history)
        log_close = np.log(history.close[start:])
        index_pct = 100.0 * np.diff(log_close, axis=0).mean(axis=1)
        window = index_pct[: anchor - start]
        digest = hashlib.blake2b(window.tobytes(), digest_size=12).hexdigest()
        key = (history.dates[anchor], digest)  # the last session inside the fit window
        if key not in self._fits:
            self._fits[key] = fit_markov(window)
            self.fits_done += 1
        return self._fits[key], index_pct

    def label(self, history: PricePanel, day: date) -> RegimeReading | None:
        """The confirmed regime for decision session `day` from `history` (bars before
        it), with the session's own indicators; None until `min_history` sessions exist.

        Reads the raw labels of the sessions before `day` (each from the bars before
        it, remembered) until one confirms a regime (`confirmed_label`), at most
        CONFIRM_SCAN sessions back; without one, the session's own label stands."""
        reading = self._raw_reading(history, day)
        if reading is None or self.confirm <= 1:
            return reading
        labels: list[str | None] = [reading.label]
        confirmed = None
        for back in range(1, CONFIRM_SCAN + self.confirm):
            earlier = self._raw_reading(
                history.history_before(len(history) - back), history.dates[-back]
            )
            labels.append(earlier.label if earlier is not None else None)
            if earlier is None or len(labels) >= self.confirm:
                confirmed = confirmed_label(labels, self.confirm)
                if confirmed is not None or earlier is None:
                    break
        return replace(reading, label=confirmed or reading.label)

    def _raw_reading(self, history: PricePanel, day: date) -> RegimeReading | None:
        """The session's own reading (the rules of the module docstring), remembered by
        the bars it reads (the fit window's start to the end of `history`)."""
        if len(history) <= self.min_history:
            return None
        _, start = self._fit_rows(history)
        tail = np.ascontiguousarray(history.close[start:])
        key = (day, len(history), hashlib.blake2b(tail.tobytes(), digest_size=16).digest())
        if key not in self._raw:
            if len(self._raw) >= RAW_MEMO:
                del self._raw[next(iter(self._raw))]  # the oldest first
            self._raw[key] = self._compute(history, day)
        return self._raw[key]

    def _compute(self, history: PricePanel, day: date) -> RegimeReading:
        fit, index_pct = self._fit_for(history)
        # The filter forgets its start within ~1 / (1 - p_stay) sessions; a year is ample.
        probabilities = hamilton_filter(fit, index_pct[-252:])
        high = float(probabilities[-1, fit.high_state])

        index_returns = np.diff(np.log(history.close[-254:]), axis=0).mean(axis=1)
        year = np.exp(np.r_[0.0, np.cumsum(index_returns)])[:, None][-253:]
        vol = tf.realised_vol(year, 21)[-252:, 0]
        vol_pct = float(np.mean(vol[:-1] < vol[-1]))
        drawdown = float(year[-1, 0] / year.max() - 1.0)
        corr = tf.rolling_weighted_correlation(history.close[-274:], 21)[-252:]
        corr_pct = float(np.mean(corr[:-1] < corr[-1])) if np.isfinite(corr[-1]) else 0.0
        efficiency = float(np.nanmean(tf.efficiency_ratio(history.close[-64:], 63)[-1]))

        if (
            vol_pct >= 0.85
            or (vol_pct >= 0.6 and (high > 0.5 or corr_pct >= 0.95))
            or drawdown <= -0.30
        ):
            label = CRISIS
        elif efficiency >= self.trend_threshold:
            label = TRENDING
        else:
            label = MEAN_REVERTING
        return RegimeReading(day, label, high, vol_pct, drawdown, corr_pct, efficiency, label)
