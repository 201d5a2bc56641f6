"""Regime detector against the demo market's hidden regimes.

The demo market is driven by a hidden CALM / TRENDING / CRISIS chain (qgtm.engine.data.demo),
so the detector's labels can be scored: crisis recall and precision, and the share of days
labelled crisis, against a baseline that flags crisis whenever the index's 21-day vol is in
the top 20% of its trailing year (the rule alone, without the Markov model).

    .venv/bin/python bench/regime_accuracy.py [--end 2014-12-31]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import date

from strategies_speed import demo_panel

from qgtm.core.config import DemoConfig
from qgtm.core.universe import load_universe
from qgtm.engine.data.demo import generate_demo_market
from qgtm.engine.features.regime import CRISIS, RegimeDetector


def main() -> None:
    """Label every session after the warm-up and print the confusion table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=date.fromisoformat, default=date(2014, 12, 31))
    args = parser.parse_args()
    demo = DemoConfig()
    panel = demo_panel(args.end)
    hidden = generate_demo_market(load_universe(), demo.start, args.end, demo.seed).regimes
    truth = dict(zip(hidden["date"].to_list(), hidden["regime"].to_list(), strict=True))
    detector = RegimeDetector()
    confusion: Counter[tuple[str, str]] = Counter()
    baseline: Counter[tuple[str, bool]] = Counter()
    start = time.perf_counter()
    for index in range(detector.min_history + 1, len(panel)):
        reading = detector.label(panel.history_before(index), panel.dates[index])
        assert reading is not None
        actual = truth[panel.dates[index]]
        confusion[(actual, reading.label)] += 1
        baseline[(actual, reading.vol_percentile >= 0.8)] += 1
    seconds = time.perf_counter() - start
    labels = sorted({label for _, label in confusion})
    print(f"{'hidden/label':<16}" + "".join(f"{label:>16}" for label in labels))
    for actual in sorted({a for a, _ in confusion}):
        print(f"{actual:<16}" + "".join(f"{confusion[(actual, lab)]:>16}" for lab in labels))
    days = sum(confusion.values())
    crisis_days = sum(v for (a, _), v in confusion.items() if a == "crisis")
    hits = confusion[("crisis", CRISIS)]
    flagged = sum(v for (_, lab), v in confusion.items() if lab == CRISIS)
    base_hits = baseline[("crisis", True)]
    base_flagged = sum(v for (_, f), v in baseline.items() if f)
    print(
        f"\n{days} sessions in {seconds:.1f} s ({detector.fits_done} Markov fits); crisis recall "
        f"{hits / crisis_days:.0%}, precision {hits / max(flagged, 1):.0%}; "
        f"vol-percentile baseline recall {base_hits / crisis_days:.0%}, "
        f"precision {base_hits / max(base_flagged, 1):.0%}; base rate {crisis_days / days:.0%}"
    )


if __name__ == "__main__":
    main()
