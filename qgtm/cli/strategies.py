"""`qgtm strategies`: every registered strategy with its family, exposures and inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from qgtm.cli.config import data_dir_of


def run(args: argparse.Namespace) -> int:
    """List the registry; the inputs say which series this data dir's store holds."""
    return _strategies(data_dir_of(args))


def _strategies(data_dir: Path | None = None) -> int:
    from qgtm.engine.features.pit_features import store_input_sources, summarise_inputs
    from qgtm.engine.strategies.registry import STRATEGIES

    sources = store_input_sources(data_dir)
    print(f"{len(STRATEGIES)} strategies")
    for name, cls in sorted(STRATEGIES.items(), key=lambda item: (item[1].family, item[0])):
        exposures = ", ".join(f"{k} {v:+.1f}" for k, v in cls.factor_exposures.items())
        print(f"{name:<18} {cls.family:<24} {exposures:<30} cap ${cls.capacity_usd / 1e6:,.0f}M")
        print(f"{'':<18} {cls.description} ({cls.reference})")
        print(f"{'':<18} regimes: {', '.join(cls.regimes)}")
        inputs = summarise_inputs({f: sources[f] for f in cls.features if f in sources})
        if inputs:
            print(f"{'':<18} inputs: {inputs}")
    return 0
