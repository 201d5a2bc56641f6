"""Where files live: runtime files inside the package, user files in the user dirs, and
replaced_whole: a file is the old one or the new one, never half of either."""

from __future__ import annotations

from pathlib import Path

import pytest

import qgtm
from qgtm.core.paths import PACKAGE_DATA_DIR, PACKAGE_THEMES_DIR, replaced_whole, user_themes_dir
from qgtm.core.universe import UNIVERSE_FILE


def test_the_new_file_replaces_the_old_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text("old")
    with replaced_whole(path) as partial:
        partial.write_text("new, half")
        assert path.read_text() == "old"  # a reader meanwhile sees the old file whole
        partial.write_text("new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"), replaced_whole(path) as partial:
        partial.write_text("new, ha")
        raise OSError("disk full")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]


def test_the_runtime_files_are_found_inside_the_package() -> None:
    """A wheel holds only the package: the universe and the themes must be in it."""
    package = Path(qgtm.__file__).resolve().parent
    universe = Path(str(UNIVERSE_FILE)).resolve()
    themes = Path(str(PACKAGE_THEMES_DIR)).resolve()
    assert universe.is_relative_to(package) and universe.is_file()
    assert themes.is_relative_to(package)
    assert {"qgtm-dark.tcss", "qgtm-contrast.tcss", "qgtm-light.tcss"} <= {
        p.name for p in themes.iterdir()
    }
    assert Path(str(PACKAGE_DATA_DIR)).resolve().is_relative_to(package)


def test_user_themes_live_in_the_user_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_themes_dir() == tmp_path / "qgtm" / "themes"
