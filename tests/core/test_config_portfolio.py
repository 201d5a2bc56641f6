"""The [portfolio] section and the risk limits added for the risk manager."""

from __future__ import annotations

import pytest

from qgtm.core.config import ConfigError, config_from_mapping, load_config


def test_portfolio_section_reads_method_and_leverage_bounds():
    config = config_from_mapping({"portfolio": {"method": "hrp", "min_leverage": 0.5}})
    assert config.portfolio.method == "hrp"
    assert config.portfolio.min_leverage == 0.5


def test_unknown_allocation_method_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"\[portfolio\]: method must be one of"):
        config_from_mapping({"portfolio": {"method": "magic"}})


def test_new_risk_limits_come_from_the_environment():
    config = load_config(None, {"QGTM_RISK__VOL_TARGET": "0.1", "QGTM_RISK__KELLY_MIN_OBS": "30"})
    assert config.risk.vol_target == 0.1
    assert config.risk.kelly_min_obs == 30


def test_a_cvar_alpha_outside_its_range_is_refused():
    with pytest.raises(ConfigError, match="cvar_alpha"):
        config_from_mapping({"risk": {"cvar_alpha": 0.3}})
