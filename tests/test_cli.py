import pytest

from qgtm.cli import main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for word in ("--daemon", "--data-dir", "status", "strategies", "audit", "config"):
        assert word in out


def test_missing_config_file_is_one_clear_line(tmp_path, capsys):
    code = main(["--config", str(tmp_path / "nope.toml"), "config"])
    assert code == 2
    assert (
        capsys.readouterr().err.strip() == f"qgtm: config file not found: {tmp_path / 'nope.toml'}"
    )


def test_status_of_an_empty_data_dir_says_what_to_do(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "status"]) == 2
    assert "run `qgtm` or `qgtm --daemon` first" in capsys.readouterr().err


def test_strategies_lists_tsmom_with_family(capsys):
    assert main(["strategies"]) == 0
    assert "tsmom" in capsys.readouterr().out


def test_strategies_lists_forty_plus_with_family_exposures_and_capacity(capsys):
    from qgtm.engine.strategies.registry import STRATEGIES

    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(STRATEGIES)} strategies\n")
    assert len(STRATEGIES) >= 40
    for name, cls in STRATEGIES.items():
        line = next(row for row in out.splitlines() if row.startswith(f"{name} "))
        assert cls.family in line
        assert f"cap ${cls.capacity_usd / 1e6:,.0f}M" in line
        for factor in cls.factor_exposures:
            assert factor in line


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """`qgtm strategies | head -1`: the pipe closes early; no BrokenPipeError traceback,
    exit 141 (128 + SIGPIPE) as a shell reports for a writer killed by SIGPIPE."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "qgtm.cli", "--data-dir", str(tmp_path), "strategies"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
