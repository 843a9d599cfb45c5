"""Hydra's ``${hydra:runtime.output_dir}`` in a config: found, and replaced by the folder of a repetition.

A composed config keeps it as text until a stage's cfg is made; the config
files and results of an experiment hold the folder itself.
"""
from __future__ import annotations

from typing import Any

from .serialization import copy_plain

#: Hydra's ``${hydra:runtime.output_dir}``, kept as this text in a composed config until a stage's cfg is made:
#: there it is the folder of the experiment's repetition (absolute), where the stage writes.
OUTPUT_DIR = "${hydra:runtime.output_dir}"


def with_output_dir(config: Any, folder: str) -> Any:
    """A copy of ``config`` with :data:`OUTPUT_DIR` in its text values replaced by ``folder``."""
    if isinstance(config, str):
        return config.replace(OUTPUT_DIR, folder) if OUTPUT_DIR in config else config
    if type(config) is dict:
        return {key: with_output_dir(value, folder) for key, value in config.items()}
    if type(config) is list:
        return [with_output_dir(value, folder) for value in config]
    return copy_plain(config)


def mentions_output_dir(config: Any) -> bool:
    """Whether a text value of ``config`` holds :data:`OUTPUT_DIR` (looking costs less than copying)."""
    if isinstance(config, str):
        return OUTPUT_DIR in config
    if type(config) is dict:
        values: Any = config.values()
    elif type(config) is list:
        values = config
    else:
        return False
    for value in values:
        if type(value) not in _NO_TEXT and mentions_output_dir(value):
            return True
    return False


#: Types of values that hold no text: skipped without a call when looking for OUTPUT_DIR.
_NO_TEXT = frozenset({int, float, bool, type(None)})
