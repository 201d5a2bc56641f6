import numpy as np
import pytest

from qgtm.core.universe import UniverseError, load_universe, parse_universe

EXPECTED = {
    "precious": {"GLD", "IAU", "SLV", "PPLT", "PALL", "GDX"},
    "energy": {"USO", "BNO", "UNG", "UGA"},
    "agriculture": {"DBA", "CORN", "WEAT", "SOYB"},
    "industrial": {"CPER", "DBB"},
    "broad": {"DBC", "GSG"},
}


def test_universe_file_lists_every_etf_with_its_sector():
    universe = load_universe()
    by_sector: dict[str, set[str]] = {}
    for inst in universe.instruments:
        by_sector.setdefault(inst.sector, set()).add(inst.symbol)
    assert by_sector == EXPECTED


def test_target_correlation_is_a_valid_correlation_matrix():
    corr = load_universe().correlation
    assert np.allclose(corr, corr.T)
    assert np.allclose(np.diag(corr), 1.0)
    assert np.linalg.eigvalsh(corr).min() > 0


def test_undeclared_sector_is_rejected():
    text = '[sectors]\nenergy = "Energy"\n[instruments.XYZ]\nname = "x"\nsector = "moon"\n'
    with pytest.raises(UniverseError, match="XYZ: sector 'moon'"):
        parse_universe(text)
