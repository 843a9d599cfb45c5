"""A composed config's dimensions as a user writes them: ``${variation:a,b}``, for ``--cfg`` and the sweep."""
from __future__ import annotations

from typing import Any, List

from .data import VARIATION_KEY, is_variation
from .override_dirname import escape_special_characters, quoted_argument


def holds_variation(node: Any) -> bool:
    if is_variation(node):
        return True
    if isinstance(node, dict):
        return any(holds_variation(v) for v in node.values())
    if isinstance(node, list):
        return any(holds_variation(v) for v in node)
    return isinstance(node, str) and f"'{VARIATION_KEY}'" in node


def is_whole_interpolation(text: str, resolver: str = "") -> bool:
    """Whether ``text`` is one ``${resolver:...}`` (any ``${...}`` without ``resolver``) and nothing else."""
    if not text.startswith("${" + (f"{resolver}:" if resolver else "")):
        return False
    depth = 0
    for index, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and char == "}":
            return index == len(text) - 1
    return False


def written_dimensions(node: Any, resolved: bool, as_written: Any = None) -> Any:
    """``node`` with each dimension ``{_variation_: [...]}`` written as in YAML: ``${variation:a,b}``.

    What ``--cfg`` prints, with or without ``--resolve``: the sweep as a user
    writes it, in a form that composes to the same sweep again. Resolved, an
    interpolation of a dimension (``name: run_${lr}``, ``copy: ${lr}``) is
    resolved per experiment, so it is shown as written, from ``as_written``.
    """
    follows_a_dimension = isinstance(as_written, str) and not is_whole_interpolation(as_written, "variation")
    if resolved and follows_a_dimension and holds_variation(node):
        return as_written
    if _is_well_formed_variation(node):
        return _variation_text(node[VARIATION_KEY], resolved)
    if isinstance(node, dict):
        written = as_written if isinstance(as_written, dict) else {}
        return {key: written_dimensions(value, resolved, written.get(key)) for key, value in node.items()}
    if isinstance(node, list):
        written = as_written if isinstance(as_written, list) and len(as_written) == len(node) else [None] * len(node)
        return [written_dimensions(value, resolved, other) for value, other in zip(node, written)]
    return node


def _is_well_formed_variation(node: Any) -> bool:
    return is_variation(node) and set(node) == {VARIATION_KEY} and isinstance(node[VARIATION_KEY], list)


def _variation_text(choices: List[Any], resolved: bool) -> str:
    return "${variation:" + ",".join(_resolver_argument(choice, resolved) for choice in choices) + "}"


def _resolver_argument(value: Any, resolved: bool) -> str:
    """``value`` in OmegaConf's grammar of resolver arguments: typed like YAML, text quoted."""
    if _is_well_formed_variation(value):
        return _variation_text(value[VARIATION_KEY], resolved)
    if isinstance(value, dict):
        items = (f"{escape_special_characters(str(key))}: {_resolver_argument(item, resolved)}"
                 for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_resolver_argument(item, resolved) for item in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if not resolved and is_whole_interpolation(str(value)):
        return str(value)  # ${a} as written: it keeps the type of what it points to
    return quoted_argument(str(value), escape_interpolations=resolved)
