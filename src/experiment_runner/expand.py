"""Expand a composed config into the run's settings and its (lazy) sequence of experiments.

The composed config is split by one rule: its top-level keys named in
:data:`~experiment_runner.config.RUN_KEYS` (the run settings, plus the sweep's
``n_configs`` and ``seed``) and the whole ``backend`` node are run settings;
every other top-level key is an experiment parameter.

Each dimension (``${variation:...}`` or a sweep override's
``{_variation_: [...]}``) becomes a :class:`~experiment_runner.sweep.Variation`
and :func:`~experiment_runner.sweep.generate_configs` does the rest: the whole
grid, or ``n_configs`` unique samples with ``seed``. When parameters hold
interpolations besides the dimensions, each experiment is resolved on its own
so that ``name: run_${lr}`` follows a swept ``lr``; otherwise the config is
resolved once, which keeps a sweep of a million experiments fast.
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import json
import random
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from .config import PARAMETER_KEYS, RUN_KEYS, SWEEP_KEYS, VARIATION_KEY, Composition, describe_choices, is_variation
from .config.data import INTERVAL_KEY, is_interval
from .config import register_resolvers, resolved_container, unresolved_container
from .config.composition import is_group_override
from .config.overrides import SET
from .config.hydra_resolver import inline_hydra_values
from .config.written import holds_variation, is_whole_interpolation
from .errors import ConfigError
from .search.space import GroupSweep, Interval, Space
from .serialization import copy_plain
from .sweep import SweepConfigs, Variation, choice_key, space_size, sweep_configs

__all__ = ["SweepPlan", "plan_sweep", "split_config", "MAX_GRID"]

#: Without n_configs a sweep runs its whole grid; past this size that is most likely a mistake.
MAX_GRID = 1_000_000


@dataclasses.dataclass
class SweepPlan:
    """The settings of the run and its experiments, as a sweep expands them."""

    settings: Dict[str, Any]
    basecfg: Dict[str, Any]
    #: The experiments' parameters, each decoded from the sweep's space when read (see SweepConfigs).
    experiments: SweepConfigs
    size: int
    dimensions: List[str]
    n_configs: Optional[int]
    seed: Optional[int]
    #: A group sweep whose options vary different dimensions: each option (``model=knn``) with its
    #: dimensions in the order its experiments vary them; empty when every option varies ``dimensions``.
    dimensions_per_option: List[Tuple[str, List[str]]] = dataclasses.field(default_factory=list)
    #: The dimensions (and group sweeps) that list equal values: equal configurations run once (Hydra
    #: would launch a job per value), which ``--list`` and the run say.
    repeated: List[str] = dataclasses.field(default_factory=list)


def split_config(
    config: Mapping[str, Any], settings_only: Sequence[str] = ()
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(run settings, experiment parameters) of a composed config: see the module's docstring.

    ``seed`` is both (:data:`PARAMETER_KEYS`), unless ``settings_only`` names it.
    """
    settings = {k: v for k, v in config.items() if k in RUN_KEYS}
    shared = PARAMETER_KEYS.difference(settings_only)
    params = {k: v for k, v in config.items() if k not in RUN_KEYS or k in shared}
    return settings, params


@dataclasses.dataclass
class _Analysed:
    """One branch of a sweep, composed and checked, ready to become a space of configurations."""

    settings: Dict[str, Any]
    unresolved: Dict[str, Any]
    resolved: Dict[str, Any]
    paths: List[Tuple[Any, ...]]
    per_experiment_resolution: bool
    settings_only: Sequence[str] = ()

    @property
    def dimensions(self) -> List[str]:
        return [_dotted(path) for path in self.paths]

    def space(self, resolve_each: bool) -> Any:
        """The parameters, resolved, with Variations; or, to resolve each experiment, the whole config unresolved."""
        if resolve_each:
            return _substitute_dimensions(self.unresolved, self.resolved, self.paths)
        return _to_space(split_config(self.resolved, self.settings_only)[1], "")


def plan_sweep(composition: Composition, sampling_seed: Optional[int] = None) -> SweepPlan:
    """The run's settings and experiments; a ConfigError for a sweep that cannot expand.

    ``sampling_seed``: the seed that samples ``n_configs`` where the config gives none (a resumed run passes
    the one its first run drew), instead of a new random one; it changes no parameter (a ``seed: null`` stays).
    """
    register_resolvers(composition.now)
    settings_only = sorted({key for branch in composition.branches for key in branch.settings_only})
    analysed = [_analyse(branch.config, settings_only, branch.per_experiment_hydra) for branch in composition.branches]
    _check_one_sampling_seed(composition, analysed)
    settings = _common_settings(composition, analysed)
    n_configs, seed = settings.get("n_configs"), settings.get("seed")
    if n_configs is not None and (isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 1):
        raise ConfigError(f"n_configs must be a whole number >= 1 (or null for the whole grid), got {n_configs!r}")
    if n_configs is None:
        seed = None  # without sampling, seed is the experiments' parameter only, whatever it holds
    elif holds_variation(seed):
        raise ConfigError(f"seed is swept, but it also seeds the sampling of n_configs={n_configs}: give it one value")
    elif seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed must be a whole number or null when n_configs samples, got {seed!r}")
    resolve_each = any(a.per_experiment_resolution for a in analysed)
    spaces = [a.space(resolve_each) for a in analysed]
    if _is_a_search(settings.get("search")):
        return _search_sweep(composition, settings, analysed, spaces, resolve_each)
    space = spaces[0] if len(spaces) == 1 else Variation(spaces)
    size = space_size(space)
    if n_configs is None and size > MAX_GRID:
        raise ConfigError(f"the sweep spans {size} configurations: set n_configs=N to sample N of them")
    if n_configs is not None and seed is None:
        seed = sampling_seed if sampling_seed is not None else random.SystemRandom().randrange(2**31)
    configs = sweep_configs(space, n_configs, seed)
    if n_configs is None:
        configs = _in_command_line_order(configs, composition, spaces, [a.paths for a in analysed])
    if resolve_each:
        configs = configs.then(functools.partial(_resolved_params, settings_only=settings_only))
    groups = _group_sweeps(composition)
    orders = [[name for name, _ in _dimensions_slowest_first(composition, a.paths)] for a in analysed]
    dimensions = list(dict.fromkeys(name for order in orders for name in order))
    per_option = []
    if any(a.dimensions != analysed[0].dimensions for a in analysed):
        per_option = [
            (describe_choices({g: branch.choices.get(g) for g in groups}), [d for d in order if d not in groups])
            for branch, order in zip(composition.branches, orders)
        ]
    basecfg = _basecfg(settings, composition.choices, composition.branches[0].origins)
    _add_derived_secret_keys(basecfg, composition)
    repeated = [name for a in analysed for name in _with_repeated_values(a)]
    if len(spaces) > 1 and len(Variation(spaces).choices) < len(spaces):
        repeated += groups or ["the options of the group sweep"]
    return SweepPlan(settings, basecfg, configs, size, dimensions, n_configs, seed, per_option,
                     list(dict.fromkeys(repeated)))


def _is_a_search(node: Any) -> bool:
    """Whether the run setting ``search`` names an adaptive search (not the grid, the default)."""
    name = node.get("name", "optuna") if isinstance(node, dict) else node
    return node is not None and name != "grid"


def _search_sweep(composition: Composition, settings: Dict[str, Any], analysed: List["_Analysed"], spaces: List[Any],
                  resolve_each: bool) -> SweepPlan:
    """An adaptive search's plan: its one experiment is its :class:`Space`, which the search samples (see plan.py).

    A group sweep (``model=forest,svm``) is a choice of the search, among the configurations composed with each
    option (as the grid runs each); parameters that interpolate searched ones are resolved in each trial's
    configuration once its values are chosen, as the grid resolves each experiment's.
    """
    basecfg = _basecfg(settings, composition.choices, composition.branches[0].origins)
    _add_derived_secret_keys(basecfg, composition)
    orders = [[name for name, _ in _dimensions_slowest_first(composition, a.paths)] for a in analysed]
    spaces = [_with_ordered_ranges(space, composition) for space in spaces]
    space: Any = spaces[0]
    groups = _group_sweeps(composition)
    if len(spaces) > 1:
        chosen = [tuple(branch.choices.get(group) for group in groups) for branch in composition.branches]
        space = GroupSweep(tuple(groups), dict(zip(chosen, spaces)))
    settings_only = sorted({key for branch in composition.branches for key in branch.settings_only})
    then = functools.partial(_resolved_params, settings_only=settings_only) if resolve_each else None
    dimensions = list(dict.fromkeys(name for order in orders for name in order))
    return SweepPlan(settings, basecfg, [Space(space, then)], 1, dimensions, None, None)  # type: ignore[list-item]


def _with_ordered_ranges(space: Any, composition: Composition) -> Any:
    """The space with each dimension a ``range(...)`` override made an ordered (stepped) range to search."""
    for override in composition.overrides:
        if override.range is not None:
            space = _with_ordered_range(space, override.key.split("."), override.range)
    return space


def _with_ordered_range(space: Any, path: List[str], bounds: Tuple[Any, Any, Any]) -> Any:
    """The space with the dimension ``range(...)`` made at ``path`` an ordered (stepped) range to search."""
    parent = space
    for part in path[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or not isinstance(parent.get(path[-1]), Variation):
        return space  # not where the override put it (a group's package): it stays a choice of its values
    low, high, step = bounds
    integer = all(isinstance(number, int) and not isinstance(number, bool) for number in bounds)
    parent[path[-1]] = Interval(low, high, step=step, integer=integer)
    return space


def _with_repeated_values(analysed: "_Analysed") -> Iterator[str]:
    """The dimensions of a branch whose choices, resolved, hold a value twice (``lr=1,1``, ``${a},x`` with a: x)."""
    for path in analysed.paths:
        node = _value_at(analysed.resolved, path)
        if is_variation(node) and isinstance(node[VARIATION_KEY], list):
            choices = node[VARIATION_KEY]
            if len(Variation(choices).choices) < len(choices):
                yield _dotted(path)


def _add_derived_secret_keys(basecfg: Dict[str, Any], composition: Composition) -> None:
    """The parameters that read a secret (see derived_secret_keys) join ``secret_keys``: the run masks them."""
    declared = basecfg.get("secret_keys") or []
    derived = sorted(key for key in composition.derived_secret_keys
                     if key.partition(".")[0] not in RUN_KEYS and key not in declared)
    if derived and isinstance(declared, list):  # a malformed secret_keys is the settings' error to report
        basecfg["secret_keys"] = [*declared, *derived]


def _common_settings(composition: Composition, analysed: List["_Analysed"]) -> Dict[str, Any]:
    """The run settings, which every branch of a group sweep must share."""
    settings = analysed[0].settings
    first = composition.branches[0].choices
    for branch, other in zip(composition.branches[1:], analysed[1:]):
        if other.settings != settings:
            differ = sorted(k for k in set(settings) | set(other.settings) if settings.get(k) != other.settings.get(k))
            groups = [g for g in first if first[g] != branch.choices.get(g)]
            raise ConfigError(
                f"run settings differ between {describe_choices({g: first[g] for g in groups})} and "
                f"{describe_choices({g: branch.choices.get(g) for g in groups})}: {', '.join(differ)}; "
                "a run has one set of settings"
            )
    return settings


def _resolved_params(config: Dict[str, Any], settings_only: Sequence[str]) -> Dict[str, Any]:
    """One experiment's parameters, its interpolations resolved with its own swept values."""
    params = split_config(_resolve_plain(config), settings_only)[1]
    _to_space(params, "")  # an embedded ${variation:...} is an error here too
    return params


def _dimensions_slowest_first(
    composition: Composition, paths: List[Tuple[Any, ...]]
) -> List[Tuple[str, Optional[Tuple[Any, ...]]]]:
    """A branch's dimensions in the order the grid varies them, slowest first, as Hydra's sweeper does.

    The command line's sweeps (``lr=0.1,0.01``, ``model=a,b``) in
    command-line order, then the dimensions written in the config files
    (``${variation:...}``, which Hydra does not have) in config order. Each
    is (name, path); a group sweep has no path. ``paths`` are the branch's
    dimensions in config order.
    """
    swept = [o for o in composition.overrides if o.sweep]
    on_command_line = {o.key for o in swept}
    ordered: List[Tuple[str, Optional[Tuple[Any, ...]]]] = []
    for override in swept:
        if is_group_override(composition.source, override):
            ordered.append((override.key, None))
        else:
            ordered += [(override.key, path) for path in paths if _dotted(path) == override.key]
    ordered += [(_dotted(path), path) for path in paths if _dotted(path) not in on_command_line]
    return ordered


def _in_command_line_order(
    configs: SweepConfigs, composition: Composition, spaces: List[Any], paths: List[List[Tuple[Any, ...]]]
) -> SweepConfigs:
    """The whole grid, generated in config order, re-ordered so that its dimensions vary as Hydra's would.

    Each experiment is sorted by the position of its value in each
    dimension's choices, slowest dimension first. Branches of a group sweep
    come in the order of the combinations of options; identical branches
    (merged into one) keep the order they were generated in. Only the new
    order of the indices is kept (reading each configuration once to find it).
    """
    orders = [_dimensions_slowest_first(composition, branch) for branch in paths]
    groups = [(group, None) for group in _group_sweeps(composition)]
    if all(order == groups + [(_dotted(p), p) for p in branch] for order, branch in zip(orders, paths)):
        return configs
    if len(Variation(spaces).choices) != len(spaces):
        return configs
    branch_starts = list(itertools.accumulate(space_size(space) for space in spaces))
    positions = [_choice_positions(space) for space in spaces]
    group_values = {o.key: [str(v) for v in o.values] for o in composition.overrides if o.sweep}

    def position(config: Dict[str, Any], branch: int, name: str, path: Optional[Tuple[Any, ...]]) -> int:
        if path is None:
            return group_values[name].index(str(composition.branches[branch].choices.get(name)))
        return positions[branch][path].get(choice_key(_value_at(config, path)), 0)

    def sort_key(index: int) -> Tuple[int, ...]:
        branch = bisect.bisect_right(branch_starts, index)
        config = configs[index]
        return tuple(position(config, branch, name, path) for name, path in orders[branch])

    return configs.reordered(sorted(range(len(configs)), key=sort_key))


def _choice_positions(space: Any, path: Tuple[Any, ...] = ()) -> Dict[Tuple[Any, ...], Dict[str, int]]:
    """Each dimension's path -> (its choice as canonical text -> the choice's position)."""
    if isinstance(space, Variation):
        return {path: {choice_key(choice): index for index, choice in enumerate(space.choices)}}
    children = space.items() if isinstance(space, dict) else enumerate(space) if isinstance(space, list) else ()
    found: Dict[Tuple[Any, ...], Dict[str, int]] = {}
    for key, child in children:
        found.update(_choice_positions(child, path + (key,)))
    return found


def _value_at(config: Any, path: Tuple[Any, ...]) -> Any:
    for part in path:
        config = config[part]
    return config


def _group_sweeps(composition: Composition) -> List[str]:
    return [o.key for o in composition.overrides if o.sweep and is_group_override(composition.source, o)]


def _analyse(cfg: DictConfig, settings_only: Sequence[str], per_experiment: Mapping[str, str]) -> _Analysed:
    # each experiment is resolved apart from cfg, with its own values of per_experiment's keys
    unresolved = inline_hydra_values(unresolved_container(cfg), cfg, per_experiment)
    resolved = resolved_container(OmegaConf.create(unresolved) if per_experiment else cfg)
    settings = split_config(resolved)[0]
    for key, value in settings.items():
        if (holds_variation(value) or _follows_the_sweep(value)) and key not in PARAMETER_KEYS:
            raise ConfigError(f"run setting {key!r} cannot be swept: a run has one {key}")
    paths = [path for path, _ in _dimension_nodes(unresolved)]
    per_experiment = bool(paths) and _has_interpolation(split_config(unresolved, settings_only)[1])
    return _Analysed(settings, unresolved, resolved, paths, per_experiment, settings_only)


def _check_one_sampling_seed(composition: Composition, analysed: List["_Analysed"]) -> None:
    """``seed=1,2,3``, ``seed=${variation:1,2}``, ``seed=range(3)``, ``seed=abc``... on a config without ``seed``:
    that seed only seeds the sampling, which takes one whole number (even where nothing is sampled).

    Swept there, it would run one experiment and drop the values unseen (Hydra refuses the override, as the
    key is not in the config); ``+seed=1,2,3`` sweeps it as a parameter. Checked on the composed config, where
    every form of a sweep (the override's syntax, a resolver, an interpolation of a swept key) is a dimension.
    """
    for branch, branch_analysed in zip(composition.branches, analysed):
        for key in branch.settings_only:
            value = branch_analysed.settings.get(key)
            swept = holds_variation(value) or is_interval(value)
            if not swept and (value is None or (isinstance(value, int) and not isinstance(value, bool))):
                continue
            typed = [o.masked_text() for o in composition.overrides if o.key == key and o.kind == SET]
            text = typed[-1] if typed else key
            what = f"to sweep a parameter named {key}" if swept else f"to give the experiments a parameter {key}"
            raise ConfigError(
                f"override {text!r}: {key} without a {key} key in the config seeds the sampling (n_configs) "
                f"and takes one whole number; {what}, write +{text}"
            )


def _follows_the_sweep(value: Any) -> bool:
    """A value that holds ``${hydra:job.override_dirname}``, which differs between the experiments of a sweep."""
    return "${hydra:job.override_dirname}" in json.dumps(value, default=str)


def _resolve_plain(config: Dict[str, Any]) -> Dict[str, Any]:
    return resolved_container(OmegaConf.create(config))


def _to_space(node: Any, path: str) -> Any:
    """Resolved data with each ``{_variation_: [...]}`` turned into a :class:`Variation`, each
    ``{_interval_: {...}}`` into an :class:`~experiment_runner.search.space.Interval`."""
    if is_interval(node):
        bounds = node[INTERVAL_KEY]
        return Interval(bounds["low"], bounds["high"], log=bounds["log"], step=1 if bounds["int"] else None,
                        integer=bounds["int"])
    if is_variation(node):
        choices = node[VARIATION_KEY]
        if set(node) != {VARIATION_KEY} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{path or '<root>'}: a variation needs a list of choices, like ${{variation:1,2,3}}")
        return Variation([_to_space(choice, path) for choice in choices])
    if isinstance(node, dict):
        return {k: _to_space(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_space(v, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and f"'{VARIATION_KEY}'" in node:
        raise ConfigError(f"{path}: ${{variation:...}} must be the whole value of a key, not part of a string")
    return node


def _dimension_nodes(node: Any, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Tuple[Any, ...], Any]]:
    """(path, node) of each dimension as written: ``${variation:...}``, an override's variation or interval."""
    written = isinstance(node, str) and is_whole_interpolation(node, "variation")
    if is_variation(node) or is_interval(node) or written:
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _dimension_nodes(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _dimension_nodes(value, path + (index,))


def _has_interpolation(node: Any) -> bool:
    """True if a node other than a dimension holds ``${...}``."""
    if is_variation(node):
        return False
    if isinstance(node, dict):
        return any(_has_interpolation(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_interpolation(v) for v in node)
    return isinstance(node, str) and "${" in node and not is_whole_interpolation(node, "variation")


def _substitute_dimensions(unresolved: Dict[str, Any], resolved: Dict[str, Any], paths: List[Tuple[Any, ...]]) -> Any:
    """The unresolved config with each dimension replaced by its Variation.

    Each experiment is then resolved on its own, so interpolations follow the swept values.
    """
    result = copy_plain(unresolved)
    for path in paths:
        parent: Any = result
        source: Any = resolved
        for part in path[:-1]:
            parent, source = parent[part], source[part]
        parent[path[-1]] = _to_space(source[path[-1]], _dotted(path))
    return result


def _dotted(path: Tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def _basecfg(
    settings: Dict[str, Any], choices: Mapping[str, Optional[str]], origins: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """The run settings as :func:`run_experiments` takes them: the backend node flattened.

    A setting both at the top level and in the backend node: the one the
    user gave explicitly wins over a default of the backend's file (an
    override beats a file, a top-level key beats the backend file's); given
    by two overrides it is an error naming both.
    """
    origins = origins or {}
    base = {k: v for k, v in settings.items() if k not in SWEEP_KEYS}
    backend = base.get("backend")
    if isinstance(backend, dict):
        options = dict(backend)
        name = options.pop("name", choices.get("backend"))
        if not name:
            raise ConfigError("backend: set backend.name to the backend to use (single, multiprocessing, ...)")
        for key in sorted(k for k in options if k in base):
            top, nested = origins.get(key, ""), origins.get(f"backend.{key}", "")
            by_override = top.startswith("override "), nested.startswith("override ")
            if by_override == (True, True) and base[key] != options[key]:
                raise ConfigError(
                    f"{key} is given twice, by {top} and by {nested}: keep one, e.g. backend.{key}=..."
                )
            if by_override[1] and not by_override[0]:
                continue  # backend.key=... beats the top-level key of a file
            del options[key]  # the top-level value beats the backend file's default
        base.update(options)
        base["backend"] = name
    return base
