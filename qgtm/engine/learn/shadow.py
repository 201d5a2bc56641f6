"""Shadow verdict: does the candidate beat production on the same days?

Test: one-sided paired t-test on the daily return differences d_t = c_t - p_t,
H0: E[d] <= 0 against H1: E[d] > 0, t = mean(d) / (sd(d) / sqrt(n)) with n-1 degrees of
freedom (scipy.stats.ttest_rel, alternative="greater"). Pairing removes the market moves
both versions share, which is why a paired test is used rather than two independent
Sharpe ratios. Promote only if the candidate's Sharpe is higher AND p <= alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from qgtm.engine.backtest.stats import sharpe_ratio


@dataclass(frozen=True, slots=True)
class ShadowVerdict:
    """Outcome of a completed shadow comparison."""

    candidate_sharpe: float
    production_sharpe: float
    p_value: float
    passed: bool


def paired_p_value(candidate: np.ndarray, production: np.ndarray) -> float:
    """One-sided p-value of H1 mean(candidate - production) > 0 (paired t-test)."""
    diff = np.asarray(candidate) - np.asarray(production)
    if len(diff) < 2:
        return 1.0
    if np.all(diff == diff[0]):
        return 0.0 if diff[0] > 0 else 1.0
    return float(stats.ttest_rel(candidate, production, alternative="greater").pvalue)


def judge(candidate: np.ndarray, production: np.ndarray, alpha: float) -> ShadowVerdict:
    """Passed iff Sharpe(candidate) > Sharpe(production) and the paired p-value <= alpha."""
    cand_sharpe = sharpe_ratio(np.asarray(candidate))
    prod_sharpe = sharpe_ratio(np.asarray(production))
    p_value = paired_p_value(np.asarray(candidate), np.asarray(production))
    return ShadowVerdict(
        cand_sharpe, prod_sharpe, p_value, cand_sharpe > prod_sharpe and p_value <= alpha
    )
