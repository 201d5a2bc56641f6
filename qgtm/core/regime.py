"""The market regimes the engine's detector labels (`qgtm.engine.features.regime`),
shared with the screens that show them."""

from __future__ import annotations

TRENDING = "trending"
MEAN_REVERTING = "mean_reverting"
CRISIS = "crisis"
CONFIRM_DEFAULT = 2
"""Sessions in a row the raw label must call a new regime before it takes over."""
