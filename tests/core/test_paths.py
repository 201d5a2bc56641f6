"""replaced_whole: a file is the old one or the new one, never half of either."""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.core.paths import replaced_whole


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
