"""Where the project's own files live (data/, themes/) and where user state goes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

APP_NAME = "qgtm"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DATA_DIR = PROJECT_ROOT / "data"
THEMES_DIR = PROJECT_ROOT / "themes"


def default_data_dir() -> Path:
    """The data directory: $QGTM_DATA_DIR, else the platform's user data dir."""
    env = os.environ.get("QGTM_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME))


def default_config_file() -> Path:
    """The config file: $QGTM_CONFIG, else config.toml in the platform's user config dir."""
    env = os.environ.get("QGTM_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


@contextmanager
def replaced_whole(path: Path) -> Iterator[Path]:
    """Write to the yielded sibling path; on success it replaces `path` in one rename, so
    a reader (or a crash) sees the old file or the new one, never half of one; on an
    error the partial file is removed and `path` is untouched."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
