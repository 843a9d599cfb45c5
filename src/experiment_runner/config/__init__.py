"""Compose: from a config directory and a command line to the composed config(s) of a sweep.

The model is Hydra 1.3's, on OmegaConf. The modules, in the order a command line meets them:

- :mod:`.overrides`: the override grammar, what people type (``key=value``,
  ``+key=value``, ``~key``, ``group=option``, sweeps ``a,b``, ``range()``, ...);
  :mod:`.override_values` reads the value after ``=`` with Hydra's grammar rules,
  :mod:`.sweep_functions` holds its functions (``choice()``, ``range()``, casts,
  ``sort()``, ``shuffle()``, ``glob()``).
- :mod:`.files`: the config directory (the user's, then the package's own
  ``conf/``) and how one file is read.
- :mod:`.defaults_list`: which files a composition merges, in which order and
  under which keys (config groups, ``_self_``, ``override`` entries,
  interpolated entries, optional entries), with :mod:`.defaults_entries` (one
  entry and its package: ``@pkg``, ``_here_``, ``_global_``, ``# @package``)
  and :mod:`.defaults_requests` (the group overrides asked before the walk).
- :mod:`.composition`: the merge, then the overrides applied; a group sweep
  composes once per combination (a :class:`Branch` each). :mod:`.value_overrides`
  applies ``key=value`` as Hydra does (a dict merges into a dict node).
- :mod:`.hydra_node`: the ``hydra`` node (Hydra's settings, never the
  experiment's); :mod:`.hydra_resolver`: ``${hydra:...}``; :mod:`.hydra_settings`:
  those of its settings that map onto the run's (out_path, chdir, backend,
  sweep overrides), the rest named in one warning; :mod:`.override_dirname`:
  Hydra's ``job.override_dirname``.
- :mod:`.secret_keys`: which keys are secret, so that no file or message shows them.
- :mod:`.replay`: the sweep a run recorded, rebuilt for ``--resume``.
- :mod:`.data`: the keys the runner reads itself (:data:`RUN_KEYS`), the
  resolvers (``${now:...}``, ``${variation:...}``), and plain containers.

The composed config is split by one rule: its top-level keys named in
:data:`RUN_KEYS` (the run settings of :mod:`experiment_runner.settings`, plus
``n_configs`` and ``seed`` of the sweep) and the whole ``backend`` node are
run settings; every other top-level key is an experiment parameter, passed to
pre/fit/post. ``seed`` is both (:data:`PARAMETER_KEYS`).

Why Hydra itself is not the engine: hydra-core 1.3 pins ``omegaconf<2.4`` and
``antlr4-python3-runtime==4.9.*`` (its override grammar is an ANTLR parser
generated for that runtime), so installing it would hold a project's OmegaConf
back and clash with any other package that needs another ANTLR runtime. Its
composition is also tied to its global state (the ``hydra`` node, its config
search path plugins, the working-directory change). So this package composes
itself, with Hydra's semantics, and proves them against the real hydra-core
case by case (tests/test_hydra_parity.py runs hydra-core in its own venv).
"""
from __future__ import annotations

from ..omegaconf_plain import resolved_container, unresolved_container
from .composition import Branch, Composition, compose, describe_choices
from .data import PARAMETER_KEYS, RUN_KEYS, SWEEP_KEYS, VARIATION_KEY, is_variation
from .files import PACKAGE_CONF, ConfigSource, is_dir, is_file
from .replay import recompose
from .resolvers import register_resolvers
from .secret_keys import derived_secret_keys
from .value_overrides import other_backends_setting

__all__ = [
    "PARAMETER_KEYS", "RUN_KEYS", "SWEEP_KEYS", "VARIATION_KEY", "PACKAGE_CONF", "Branch", "ConfigSource",
    "Composition", "compose", "recompose", "register_resolvers", "describe_choices", "other_backends_setting",
    "derived_secret_keys", "is_variation", "is_dir", "is_file", "resolved_container", "unresolved_container",
]
