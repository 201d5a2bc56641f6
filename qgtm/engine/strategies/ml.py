"""ML ensemble: regularised models pooled across the universe, trained only on the past.

Features per (session t, fund i), all known at t: 21-, 63- and 252-session log returns and
21-session realised vol, each standardised cross-sectionally. Label: the next `horizon`
sessions' log return (ridge) or its sign (logistic). A model is fitted every `refit_every`
sessions on samples whose label window ends before the refit point, so no label
overlaps the future; between refits the fitted coefficients are reused (cached per refit
point and data digest).
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import Parameter, RuleStrategy, vol_scale

HORIZONS = (21, 63, 252)


def feature_matrix(close: np.ndarray) -> np.ndarray:
    """(T, N, 4) features: 21/63/252-session log returns and 21-session vol, each
    z-scored across funds per session (NaN until known)."""
    columns = [tf.horizon_return(close, h) for h in HORIZONS]
    columns.append(tf.realised_vol(close, 21))
    stacked = np.stack(columns, axis=-1)
    known = np.isfinite(stacked)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows before warm-up
        mean = np.nanmean(stacked, axis=1, keepdims=True)
        std = np.nanstd(stacked, axis=1, keepdims=True)
        scaled = np.where(std > 0, (stacked - mean) / std, 0.0)
    return np.where(known, scaled, np.nan)


def latest_features(close: np.ndarray) -> np.ndarray:
    """The last row of `feature_matrix(close)`, computed from the last 253 closes only."""
    log_close = np.log(close[-253:])
    columns = [log_close[-1] - log_close[-1 - h] for h in HORIZONS]
    columns.append(np.diff(log_close[-22:], axis=0).std(axis=0, ddof=1) * np.sqrt(tf.TRADING_DAYS))
    stacked = np.column_stack(columns)
    std = stacked.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, (stacked - stacked.mean(axis=0)) / std, 0.0)


def ridge_fit(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """b = (X'X + lambda I)^-1 X'y with an unpenalised intercept first (Hoerl, Kennard 1970)."""
    design = np.column_stack([np.ones(len(x)), x])
    gram = design.T @ design
    reg = penalty * np.eye(design.shape[1])
    reg[0, 0] = 0.0
    return np.linalg.solve(gram + reg, design.T @ y)


def logistic_fit(x: np.ndarray, y: np.ndarray, penalty: float, iterations: int = 25) -> np.ndarray:
    """L2-penalised logistic regression by Newton-Raphson (IRLS), intercept unpenalised:
    maximise sum [y log p + (1 - y) log(1 - p)] - lambda/2 |b|^2, p = 1/(1 + e^-Xb)
    (Hastie, Tibshirani, Friedman, ESL 2nd ed., sec. 4.4)."""
    design = np.column_stack([np.ones(len(x)), x])
    reg = penalty * np.eye(design.shape[1])
    reg[0, 0] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        gradient = design.T @ (y - p) - reg @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


class _PooledModel(RuleStrategy):
    family = "ML ensemble"
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 0.5, "reversal": 0.2, "low_vol": 0.2}
    capacity_usd = 100_000_000.0
    features = ("horizon_return", "realised_vol")
    needs_full_history = True
    parameters = (
        Parameter("train", 756, 252, 2520, "sessions of training samples"),
        Parameter("horizon", 21, 5, 63, "sessions of the forward return label"),
        Parameter("refit_every", 63, 5, 126, "sessions between refits (quarterly)"),
        Parameter("penalty", 10.0, 0.0, 1000.0, "L2 penalty lambda"),
        Parameter("target_vol", 0.15, 0.05, 0.60, "annual vol each position is scaled to"),
    )

    def __init__(self, **overrides: float) -> None:
        super().__init__(**overrides)
        self._models: dict[tuple[date, str], np.ndarray] = {}

    @property
    def warmup(self) -> int:
        """252 sessions of features, a label horizon and a year of samples."""
        return 252 + int(self.params["horizon"]) + 252

    def coefficients(self, view: PricePanel) -> np.ndarray:
        """Model fitted at the latest refit point (cached)."""
        warm, every = self.warmup, int(self.params["refit_every"])
        anchor = warm + (len(view) - warm) // every * every
        start = max(anchor - int(self.params["train"]) - 252, 0)
        window = view.close[start:anchor]
        key = (
            view.dates[anchor - 1],
            hashlib.blake2b(window.tobytes(), digest_size=12).hexdigest(),
        )
        if key not in self._models:
            self._models[key] = self.fit(window)
        return self._models[key]

    def samples(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X, forward return) for every (t, i) whose label ends inside `close`."""
        horizon = int(self.params["horizon"])
        features = feature_matrix(close)[:-horizon]
        forward = np.log(close[horizon:] / close[:-horizon])
        x = features.reshape(-1, features.shape[-1])
        y = forward.reshape(-1)
        keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
        return x[keep], y[keep]

    def fit(self, close: np.ndarray) -> np.ndarray:
        """Coefficients from the training window."""
        raise NotImplementedError

    def score(self, coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Signed forecast per fund (positive = long)."""
        return np.column_stack([np.ones(len(x)), x]) @ coefficients

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        coefficients = self.coefficients(view)
        latest = latest_features(view.close)
        forecast = self.score(coefficients, np.nan_to_num(latest))
        size = vol_scale(view.close, 63, self.params["target_vol"], 1.0)
        spread = np.std(forecast) or 1.0
        return (
            np.sign(forecast) * size,
            np.clip(np.abs(forecast) / (2 * spread), 0, 1),
            "pooled model forecast",
        )


class RidgeForecast(_PooledModel):
    """Pooled ridge regression of the next month's return on trend and vol features."""

    name = "ml_ridge"
    description = "pooled ridge regression of the next month's return on trend and vol features"
    reference = (
        "Hoerl, Kennard (1970), Ridge regression, Technometrics 12(1); Gu, "
        "Kelly, Xiu (2020), RFS 33(5)"
    )

    def fit(self, close: np.ndarray) -> np.ndarray:
        """Ridge on the forward log return."""
        x, y = self.samples(close)
        return ridge_fit(x, y, self.params["penalty"])


class LogisticForecast(_PooledModel):
    """Pooled L2 logistic regression of the next month's direction."""

    name = "ml_logit"
    description = "pooled L2 logistic regression of the next month's direction"
    reference = "Hastie, Tibshirani, Friedman (2009), Elements of Statistical Learning, sec. 4.4"

    def fit(self, close: np.ndarray) -> np.ndarray:
        """Penalised logistic on 1[forward return > 0]."""
        x, y = self.samples(close)
        return logistic_fit(x, (y > 0).astype(float), self.params["penalty"])


class MlEnsemble(_PooledModel):
    """Average of the ridge forecast (in units of its stdev across funds) and the logistic
    log-odds (in units of theirs): long when the average is positive."""

    name = "ml_ensemble"
    description = "equal-weight ensemble of the ridge and logistic forecasts"
    reference = (
        "Dietterich (2000), Ensemble methods in machine learning, MCS 2000; Gu, Kelly, Xiu (2020)"
    )

    def fit(self, close: np.ndarray) -> np.ndarray:
        """Stacked ridge and logistic coefficients."""
        x, y = self.samples(close)
        penalty = self.params["penalty"]
        ridge = ridge_fit(x, y, penalty)
        logit = logistic_fit(x, (y > 0).astype(float), penalty)
        return np.stack([ridge, logit])

    def score(self, coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Mean of the two standardised forecasts."""
        design = np.column_stack([np.ones(len(x)), x])
        parts = []
        for row in coefficients:
            raw = design @ row
            parts.append(raw / (np.std(raw) or 1.0))
        return np.mean(parts, axis=0)
