from pathlib import Path

import pytest

from qgtm.core.config import ConfigError, check_tradeable, live_trading_allowed, load_config
from qgtm.core.enums import Mode, Source


def test_defaults_are_paper_trading_on_the_demo_source():
    config = load_config(None, environ={})
    assert config.mode is Mode.PAPER
    assert config.source is Source.DEMO


def test_toml_file_then_env_override(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[engine]\nspeed = 3.0\ninitial_cash = "250000"\n[risk]\nmax_gross_leverage = 1.2\n'
    )
    config = load_config(path, environ={"QGTM_ENGINE__SPEED": "8"})
    assert config.engine.speed == 8.0
    assert config.engine.initial_cash == "250000"
    assert config.risk.max_gross_leverage == 1.2


def test_unknown_key_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text("[engine]\nsped = 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) in \[engine\]: sped"):
        load_config(path, environ={})


def test_bad_value_names_the_key(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[engine]\nspeed = "fast"\n')
    with pytest.raises(ConfigError, match=r"engine\.speed"):
        load_config(path, environ={})


def test_live_mode_needs_every_gate():
    config = load_config(None, environ={"QGTM_MODE": "live"})
    assert not live_trading_allowed(config, environ={})
    assert not live_trading_allowed(config, environ={"LIVE_TRADING_ENABLED": "true"})
    with pytest.raises(ConfigError, match="LIVE_TRADING_ENABLED"):
        check_tradeable(config, environ={})
