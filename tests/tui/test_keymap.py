"""Key bindings as data: defaults in one table, overrides from the config file."""

from __future__ import annotations

import pytest

from qgtm.core.config import ConfigError, config_from_mapping
from qgtm.tui.keymap import DEFAULT_KEYS, UnknownBindingError, bind, check_keymap, keys_label


def test_the_config_file_carries_keymap_overrides() -> None:
    config = config_from_mapping({"tui": {"keymap": {"app.pause": "ctrl+space"}}})
    assert config.tui.keymap == {"app.pause": "ctrl+space"}


def test_a_keymap_that_is_not_a_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"tui\.keymap"):
        config_from_mapping({"tui": {"keymap": "app.pause=x"}})


def test_bindings_take_their_default_keys_from_the_table() -> None:
    binding = bind("app.pause", "toggle_pause", "Pause")
    assert (binding.key, binding.id) == (DEFAULT_KEYS["app.pause"], "app.pause")


def test_unknown_binding_ids_are_named() -> None:
    with pytest.raises(UnknownBindingError, match=r"app\.nope"):
        check_keymap({"app.nope": "x"}, {"app.pause"})


def test_keys_read_as_typed() -> None:
    assert keys_label("question_mark,f11") == "? f11"
    assert keys_label("colon,f12") == ": f12"
