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


def test_the_printed_config_reads_back_to_the_same_config(tmp_path: Path, capsys):
    """`qgtm config` prints TOML; saved as config.toml it loads to the same Config."""
    from qgtm.cli import main
    from qgtm.core.config import config_to_toml

    path = tmp_path / "config.toml"
    path.write_text(
        'source = "alpaca"\n'
        '[engine]\nstrategies = ["tsmom", "rsi2"]\nstart = 2010-01-04\n'
        '[tui.keymap]\n"app.pause" = "ctrl+p"\n'
        '[live]\nrefresh_sources = ["alpaca", "fred"]\n'
    )
    custom = load_config(path, environ={})
    for config in (load_config(None, environ={}), custom):
        path.write_text(config_to_toml(config))
        assert load_config(path, environ={}) == config
    assert main(["--config", str(path), "--data-dir", str(tmp_path), "config"]) == 0
    printed = capsys.readouterr().out
    assert 'source = "alpaca"' in printed and "[tui.keymap]" in printed
    assert "Config(" not in printed  # TOML, not a Python repr


def test_backtest_costs_come_from_their_section_and_refuse_negatives(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text("[backtest]\nimpact_bps_at_full_adv = 50\n")
    config = load_config(path, environ={"QGTM_BACKTEST__BORROW_BPS_ANNUAL": "150"})
    assert config.backtest.impact_bps_at_full_adv == 50.0
    assert config.backtest.borrow_bps_annual == 150.0
    path.write_text("[backtest]\nborrow_bps_annual = -1\n")
    with pytest.raises(ConfigError, match=r"\[backtest\]: borrow_bps_annual must be"):
        load_config(path, environ={})
