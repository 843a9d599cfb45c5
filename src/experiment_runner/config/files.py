"""The config directory: where the primary config and the config groups are found, and how a file is read."""
from __future__ import annotations

import dataclasses
import errno
import io
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..core_keys import SEARCHES
from ..errors import ConfigError
from ..launchers import BUILTIN_LAUNCHERS, available_launchers, options_class
from ..launchers.options import node_yaml
from ..omegaconf_plain import omegaconf_error_text

#: Where the package's own config group lives: ``backend/<name>.yaml``, one option per registered backend
#: (the built-in ones and the plugins'), generated from the backend's declared settings (launchers/options.py),
#: so no file is there; a project's own ``conf/backend/<name>.yaml`` is used instead when it exists.
PACKAGE_CONF = Path(__file__).resolve().parent.parent / "conf"

#: The config groups whose options the package generates: the backends, and the searches (``search=optuna``).
BACKEND_GROUP = "backend"
SEARCH_GROUP = "search"
_PACKAGE_GROUPS = (BACKEND_GROUP, SEARCH_GROUP)

_HEADER_LINE = re.compile(r"#\s*@")


@dataclasses.dataclass(frozen=True)
class ConfigSource:
    """A config directory: the primary config and the config groups (sub-folders of .yaml options).

    Like Hydra's config search path, a config the directory does not hold is
    looked up in the ``extra`` directories (a decorated script's ``-cd``), then
    in the package's own config (``fallback``: the ``backend`` group, one option
    per registered backend, generated from its declared settings), so
    ``backend=multiprocessing`` works in any project. ``fallback=None``: the
    directories alone.
    """

    root: Path
    fallback: Optional[Path] = PACKAGE_CONF
    extra: Tuple[Path, ...] = ()

    @classmethod
    def at(cls, config_dirs: Any) -> "ConfigSource":
        """The source of a config directory, or of a list of them: the first is the primary config's."""
        if isinstance(config_dirs, (list, tuple)):
            return cls(Path(config_dirs[0]), extra=tuple(Path(d) for d in config_dirs[1:]))
        return cls(Path(config_dirs))

    @property
    def _roots(self) -> List[Path]:
        return [self.root, *self.extra]

    def file(self, name: str) -> Path:
        for root in self._roots:
            if is_file(root / f"{name}.yaml"):
                return root / f"{name}.yaml"
        if self._generated(name) and self.fallback is not None:
            return self.fallback / f"{name}.yaml"
        return self.root / f"{name}.yaml"

    def exists(self, name: str) -> bool:
        return any(is_file(root / f"{name}.yaml") for root in self._roots) or self._generated(name)

    def is_group(self, group: str) -> bool:
        return "." not in group and (any(is_dir(root / group) for root in self._roots) or (
            group in _PACKAGE_GROUPS and self.fallback is not None))

    def options(self, group: str) -> List[str]:
        return sorted({path.stem for root in self._roots for path in (root / group).glob("*.yaml")}
                      | set(self._package_options(group)))

    def groups(self) -> Dict[str, List[str]]:
        """Every config group (nested ones as ``a/b``) with its options, the package's included."""
        found = {}
        folders = {f.relative_to(root).as_posix() for root in self._roots if is_dir(root)
                   for f in root.rglob("*") if f.is_dir()}
        for group in sorted(folders | (set(_PACKAGE_GROUPS) if self.fallback is not None else set())):
            if self.options(group):
                found[group] = self.options(group)
        return found

    def load(self, name: str) -> Tuple[DictConfig, Optional[str]]:
        """The config ``name`` and its ``# @package`` header; bad YAML names the file and line."""
        path = self.file(name)
        try:
            text = path.read_text(encoding="utf-8") if is_file(path) else self._generated_text(name)
        except OSError as error:
            raise ConfigError(f"cannot read {path}: {error.strerror}") from error
        try:
            loaded = OmegaConf.load(io.StringIO(text))
        except yaml.MarkedYAMLError as error:
            raise ConfigError(_yaml_error_text(path, error, text)) from error
        except OmegaConfBaseException as error:
            raise ConfigError(f"{path}: {omegaconf_error_text(error)}") from error
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{path}: a config must be a mapping of keys, got a list")
        return loaded, package_header(text, path)

    def _package_options(self, group: str) -> List[str]:
        """The options the package generates in ``group``: the registered backends' names, the searches."""
        if self.fallback is None or group not in _PACKAGE_GROUPS:
            return []
        return list(available_launchers()) if group == BACKEND_GROUP else list(SEARCHES)

    def _generated(self, name: str) -> bool:
        group, _, option = name.rpartition("/")
        if group not in _PACKAGE_GROUPS or self.fallback is None:
            return False
        if group == SEARCH_GROUP:
            return option in SEARCHES
        return option in BUILTIN_LAUNCHERS or option in self._package_options(group)

    def _generated_text(self, name: str) -> str:
        group, _, option = name.rpartition("/")
        if group == SEARCH_GROUP:
            from ..search.settings import search_node_yaml  # only when a search is composed

            return search_node_yaml(option)
        return node_yaml(option, options_class(option))


def is_file(path: Path) -> bool:
    """``path.is_file()``, with a name too long for the filesystem (a 300-character key) simply absent."""
    return _holds(path, Path.is_file)


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, with a name too long for the filesystem simply absent."""
    return _holds(path, Path.is_dir)


def _holds(path: Path, test: Any) -> bool:
    try:
        return bool(test(path))
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise
        return False


def _yaml_error_text(path: Path, error: yaml.MarkedYAMLError, text: str) -> str:
    """``<path>, line N: bad YAML: ...``, or ``at the end of the file`` where the parser ran out of text.

    There (an unclosed bracket or quote) PyYAML's mark is one line past the
    last, so the line where the unclosed part starts is named instead.
    """
    mark = error.problem_mark or error.context_mark
    context = f" ({error.context})" if error.context else ""
    if mark is None:
        return f"{path}: bad YAML: {error.problem}{context}"
    if mark.line < len(text.splitlines()):
        return f"{path}, line {mark.line + 1}: bad YAML: {error.problem}{context}"
    if error.context and error.context_mark is not None:
        context = f" ({error.context} that starts on line {error.context_mark.line + 1})"
    return f"{path}, at the end of the file: bad YAML: {error.problem}{context}"


def package_header(text: str, where: Path) -> Optional[str]:
    """The package a config's header names, read as Hydra reads it.

    The header is the lines of the form ``# @key value`` at the top of the
    file (blank lines between them allowed); the first other line ends it,
    so ``# @package`` after a plain comment is no header. A header line that
    is not exactly a key and a value is an error.
    """
    package = None
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        if not _HEADER_LINE.match(line):
            break
        words = line.lstrip("#").split()
        if len(words) != 2:
            problem = "has no value" if len(words) < 2 else "has more than one value"
            raise ConfigError(f"{where}: the header line '{line}' {problem}; write it as '# @package PACKAGE'")
        if words[0] == "@package":
            package = words[1]
    return package
