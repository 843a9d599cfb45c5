"""Which keys of a composed config are secret: declared ones, backends' secret settings, and keys that read them."""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, AbstractSet, Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError
from ..launchers import BUILTIN_LAUNCHERS, available_launchers, get_launcher_class, secret_options
from ..omegaconf_plain import unresolved_container
from ..serialization import ABSENT as _ABSENT, copy_plain, lookup as _lookup, secret_paths
from .data import is_variation
from .files import ConfigSource
from .overrides import parse_override

if TYPE_CHECKING:
    from .composition import Branch


def near_a_secret(keys: Sequence[str], secret_keys: AbstractSet[str]) -> bool:
    """Whether one of ``keys`` is a secret, lies inside one (``db.password.old``) or holds one (``db``)."""
    return any(key == path or key.startswith(f"{path}.") or path.startswith(f"{key}.")
               for key in keys for path in secret_keys)


def secret_keys_before_composing(
    source: ConfigSource, config_name: Optional[str], texts: Sequence[str]
) -> FrozenSet[str]:
    """The secret keys known before composing, so that no message about an override shows a secret.

    The built-in backends' secret settings and those of a plugin's backend
    that an override or the primary config chooses, and the ``secret_keys``
    that the primary config or an override names; an option file that sets
    ``secret_keys`` counts from its composition on.
    """
    names, primary = [], {}
    try:
        if config_name is not None:
            primary = unresolved_container(source.load(config_name)[0])
            names += named_secret_keys(primary.get("secret_keys"))
    except ConfigError:
        pass  # composing loads it again and raises this error then
    for text in texts:
        if text.lstrip("+").partition("=")[0].strip() == "secret_keys":
            try:
                names += named_secret_keys(parse_override(text).value)
            except ConfigError:
                pass  # parsing every override raises this error next
    chosen = _chosen_plugin_backend(primary, texts)
    return secret_paths(names, secret_options(get_launcher_class(chosen) if chosen else None))


def _chosen_plugin_backend(primary: Dict[str, Any], texts: Sequence[str]) -> Optional[str]:
    """The plugin's backend that the last ``backend=NAME`` override, or else the primary config, chooses."""
    chosen = [text.partition("=")[2].strip() for text in reversed(texts)
              if text.lstrip("+").partition("=")[0].strip() == "backend"]
    defaults = primary.get("defaults") if isinstance(primary.get("defaults"), list) else []
    chosen += [entry.get("backend") for entry in defaults if isinstance(entry, dict)]
    chosen.append(primary.get("backend"))
    name = next((name for name in chosen if isinstance(name, str) and name), None)
    return name if name is not None and name not in BUILTIN_LAUNCHERS and name in available_launchers() else None


def declared_secret_keys(branch: "Branch") -> FrozenSet[str]:
    """The secret keys of a composed config: its ``secret_keys``, and its backend's secret settings."""
    container = unresolved_container(branch.config)
    names = named_secret_keys(container.get("secret_keys"))
    return secret_paths(names, secret_options(_plugin_backend_class(container, branch.choices)))


def derived_in(branches: Sequence["Branch"], secret_keys: FrozenSet[str]) -> FrozenSet[str]:
    return frozenset().union(*(derived_secret_keys(branch.config, secret_keys) for branch in branches))


def derived_secret_keys(config: Any, secret_keys: AbstractSet[str]) -> FrozenSet[str]:
    """The keys of ``config`` whose values read one of ``secret_keys`` through an interpolation: secrets too.

    ``header: Bearer ${api_key}``, ``${.api_key}`` (relative), ``${oc.select:api_key,none}``, or a key
    that reads such a key. ``config`` is a DictConfig or its unresolved container. Each value that
    interpolates is resolved in a copy of the config whose secrets hold a marker: a value that then holds
    the marker reads a secret, whatever form its interpolation takes. One that cannot be resolved here (an
    unset environment variable) counts as reading a secret when its text names one.
    """
    plain = config if isinstance(config, dict) else unresolved_container(config)
    present = frozenset(path for path in secret_keys if _lookup(plain, path) is not _ABSENT)
    if not present:
        return frozenset()
    marker = f"secret-marker-{os.urandom(8).hex()}"  # secrets.token_hex(8), without importing secrets (hashlib)
    probe = copy_plain(plain)
    for path in present:
        _put_marker(probe, path, marker)
    probe_config = OmegaConf.create(probe)
    return frozenset(
        path for path, node in _interpolating_values(plain)
        if not near_a_secret([path], present) and _reads_marker(probe_config, path, node, marker, present)
    )


def _put_marker(config: Dict[str, Any], path: str, marker: str) -> None:
    """Replace each value of the secret at ``path`` (each leaf of a dict or list) by ``marker``."""
    def marked(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: marked(child) for key, child in value.items()}
        if isinstance(value, list):
            return [marked(child) for child in value]
        return marker

    parent_path, _, last = path.rpartition(".")
    parent = _lookup(config, parent_path) if parent_path else config
    key: Any = int(last) if isinstance(parent, list) else last
    parent[key] = marked(parent[key])


def _interpolating_values(node: Any, path: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of each value that holds ``${...}``; a dimension counts as one value."""
    if isinstance(node, str) or is_variation(node):
        if "${" in str(node):
            yield path, node
        return
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _interpolating_values(child, f"{path}.{key}" if path else str(key))


def _reads_marker(probe: DictConfig, path: str, written: Any, marker: str, secret_keys: AbstractSet[str]) -> bool:
    try:
        value = OmegaConf.select(probe, path)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
    except OmegaConfBaseException:
        names = {key.rpartition(".")[2] for key in secret_keys}
        return any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", str(written)) for name in names)
    return marker in str(value)


def named_secret_keys(value: Any) -> List[str]:
    """The names a ``secret_keys`` setting gives (a malformed one is an error of the run's settings, later)."""
    if isinstance(value, str):
        return [value]
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _plugin_backend_class(container: Dict[str, Any], choices: Mapping[str, Optional[str]]) -> Optional[type]:
    """The launcher class of a backend that a plugin registers, which may declare secret settings of its own."""
    node = container.get("backend")
    name = (node.get("name") if isinstance(node, dict) else node) or choices.get("backend")
    if not isinstance(name, str) or name in BUILTIN_LAUNCHERS or name not in available_launchers():
        return None
    return get_launcher_class(name)
