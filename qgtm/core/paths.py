"""Where the program's own files live (inside the package) and where user state goes.

Every file the program reads at run time ships inside the `qgtm` package: `qgtm/data/`
and `qgtm/themes/` are found through importlib.resources, `qgtm/tui/terminal.tcss` beside
the module that loads it. A clone, an editable install and a wheel in site-packages find
them the same way; nothing depends on where the repository sits. What a user adds (own
themes, config, the choice of theme) lives in the platform's user config dir, never in
the package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs

APP_NAME = "qgtm"
PACKAGE_DATA_DIR: Traversable = files("qgtm") / "data"
"""Small files the program needs (the universe), shipped inside the package."""
PACKAGE_THEMES_DIR: Traversable = files("qgtm") / "themes"
"""The themes that ship with QGTM, one `.tcss` file each."""


def default_data_dir() -> Path:
    """The data directory: $QGTM_DATA_DIR, else the platform's user data dir."""
    env = os.environ.get("QGTM_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME))


def default_config_file() -> Path:
    """The config file: $QGTM_CONFIG, else config.toml in the platform's user config dir."""
    env = os.environ.get("QGTM_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def user_themes_dir() -> Path:
    """Where a user puts their own `.tcss` themes: themes/ in the platform's user config
    dir (a theme there with a packaged theme's name replaces it)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "themes"


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
