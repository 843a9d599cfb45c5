"""Each backend's settings, declared once: a dataclass of typed fields with defaults and docs.

A launcher class points to its declaration (``Options = RayOptions``); a plugin
declares its own the same way. From that one declaration come the type and
value checks of a run's settings (an OmegaConf structured config checks the
types), the backend node that ``backend=<name>`` composes (its YAML, with each
field's doc as a comment), the unknown-key check with its "did you mean", the
warning for another backend's settings, and which settings are masked as
``***`` (``secret=True``).

A field declared with :func:`option` is a setting of this backend. A field
declared with :func:`core` mirrors a run setting every backend reads
(``num_cpus``, ``max_memory``, ...: see ``settings.CORE_KEYS``): it is listed
in the backend's node with what it means for this backend, and checked by the
run settings, not here. Checks that types cannot express (a device listed
twice, a Slurm time limit) are the dataclass's :meth:`BackendOptions.validate`.

This module is imported by the registry: it must stay light (no ray, no SSH library).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from typing import TYPE_CHECKING, AbstractSet, Any, Dict, Iterable, FrozenSet, List, Mapping, Optional, Type, Union

from ..errors import ConfigError, UsageError
from ..serialization import MASK

if TYPE_CHECKING:
    from ..settings import RunSettings

#: Field metadata keys.
DOC, SECRET, CORE, EXPECT = "doc", "secret", "core", "expect"
AT_LEAST, ABOVE, COMPOSED = "at_least", "above", "composed"

_NO_VALUE = object()


def option(default: Any, doc: str, *, secret: bool = False, expect: Optional[str] = None,
           at_least: Optional[float] = None, above: Optional[float] = None, composed: Any = _NO_VALUE) -> Any:
    """A setting of the backend, with its default and its doc (a comment in the backend's node).

    ``expect`` says what a value must be (``"a whole number >= 1"``) in the one-line error for a wrong
    one; ``at_least``/``above`` bound a number; ``composed`` is the value the composed backend node
    holds when it differs from the default of the Python API (``malocher_machines: [localhost]``).
    """
    metadata = {DOC: doc, SECRET: secret, EXPECT: expect, AT_LEAST: at_least, ABOVE: above, COMPOSED: composed}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def core(default: Any, doc: str) -> Any:
    """A run setting of every backend (settings.CORE_KEYS), listed in this backend's node with its meaning here."""
    return dataclasses.field(default=default, metadata={DOC: doc, CORE: True})


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value)


@dataclasses.dataclass
class BackendOptions:
    """A backend without settings of its own; the base of every backend's declaration."""

    def validate(self, settings: RunSettings) -> None:
        """Raise a UsageError for what the types cannot say: a bad combination, a value out of its form.

        Validation only: it starts nothing, connects nowhere and writes nothing (``--list`` runs it).
        """


def undeclared_options(launcher: str, names: Iterable[str], secret: AbstractSet[str]) -> Type[BackendOptions]:
    """The declaration of a launcher class that only names its settings (``option_names``, ``secret_options``):
    each of any type, null by default."""
    fields = [(name, Any, option(None, "", secret=name in secret)) for name in sorted(names)]
    return dataclasses.make_dataclass(f"{launcher}Options", fields, bases=(BackendOptions,))


def option_fields(options: Type[BackendOptions]) -> List[dataclasses.Field]:
    """The fields that are settings of the backend (not the core settings it mirrors)."""
    return [f for f in dataclasses.fields(options) if not f.metadata.get(CORE)]


def option_names(options: Type[BackendOptions]) -> FrozenSet[str]:
    """The backend's own settings, beyond the core ones."""
    return frozenset(f.name for f in option_fields(options))


def secret_names(options: Type[BackendOptions]) -> FrozenSet[str]:
    """The backend's settings whose values are secret: ``***`` in every file and message."""
    return frozenset(f.name for f in option_fields(options) if f.metadata.get(SECRET))


def typed_options(options: Type[BackendOptions], given: Mapping[str, Any]) -> BackendOptions:
    """The declaration filled with the settings ``given`` (the others keep their defaults), each checked.

    A value of the wrong type or out of its bounds is a ConfigError naming the
    setting, the value and what it must be. Values are not converted: ``"2"``
    is no whole number and ``"yes"`` is not true, as for the run settings.
    """
    fields = {f.name: f for f in option_fields(options)}
    hints = typing.get_type_hints(options)
    values = {}
    for key in (key for key in given if key in fields):
        value = given[key]
        scalar = _of_scalar_type(value, hints[key])
        typed = value if scalar else _checked_by_omegaconf(options, fields[key], hints[key], value)
        if _out_of_bounds(fields[key], typed):
            raise _wrong_value(fields[key], hints[key], given[key])
        values[key] = typed
    return options(**values)


_SCALARS = (bool, int, float, str)


def _of_scalar_type(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is exactly the scalar type its setting declares (``int``, ``Optional[str]``, ``Any``...).

    Such a value is what the check would give back unchanged (and text is
    taken as text: ``???`` or ``${x}`` are no missing value or interpolation
    here), so it needs no checker: the settings most runs give (``num_workers=2``) skip importing
    OmegaConf, a tenth of a second of a short run.
    """
    if annotation is Any:
        return value is None or type(value) in _SCALARS
    if annotation in _SCALARS:
        return type(value) is annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Union and len(args) == 2 and type(None) in args:  # Optional[X]
        scalar = args[0] if args[1] is type(None) else args[1]
        return scalar in _SCALARS and (value is None or type(value) is scalar)
    return False


def _checked_by_omegaconf(options: Type[BackendOptions], field: dataclasses.Field, annotation: Any, value: Any) -> Any:
    """``value`` of setting ``field`` as OmegaConf's structured config types it; a wrong one is a ConfigError."""
    from omegaconf import OmegaConf  # not for the registry's sake: only a run's check needs it
    from omegaconf.errors import OmegaConfBaseException

    try:
        typed = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(options), {field.name: value}))[field.name]
    except (OmegaConfBaseException, TypeError, ValueError) as error:
        raise _wrong_value(field, annotation, value) from error
    if not _same_kind(value, typed):
        raise _wrong_value(field, annotation, value)
    return typed


def check_options(options: Type[BackendOptions], settings: RunSettings) -> BackendOptions:
    """The backend's settings of ``settings``, typed and validated; see :func:`typed_options`."""
    declared = typed_options(options, settings.options)
    declared.validate(settings)
    return declared


def _same_kind(given: Any, typed: Any) -> bool:
    """Whether OmegaConf kept the value as given (an int may become a float; text never a number or a flag)."""
    if given is None or typed is None:
        return given is typed
    if isinstance(given, Mapping):
        return isinstance(typed, dict) and all(_same_kind(given[k], typed.get(k)) for k in given)
    if isinstance(given, (list, tuple)):
        return isinstance(typed, list) and all(_same_kind(g, t) for g, t in zip(given, typed))
    if isinstance(given, int) and not isinstance(given, bool) and type(typed) is float:
        return True
    return type(given) is type(typed)


def _out_of_bounds(field: dataclasses.Field, value: Any) -> bool:
    at_least, above = field.metadata.get(AT_LEAST), field.metadata.get(ABOVE)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (at_least is not None and value < at_least) or (above is not None and value <= above)


def _wrong_value(field: dataclasses.Field, annotation: Any, value: Any) -> ConfigError:
    expect = field.metadata.get(EXPECT) or _type_text(annotation) + _bounds_text(field)
    shown = f"{MASK} ({type(value).__name__})" if field.metadata.get(SECRET) else repr(value)
    return ConfigError(f"{field.name} must be {expect}, got {shown}")


def _bounds_text(field: dataclasses.Field) -> str:
    at_least, above = field.metadata.get(AT_LEAST), field.metadata.get(ABOVE)
    return "".join(f" {sign} {bound:g}" for sign, bound in ((">=", at_least), (">", above)) if bound is not None)


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
               list: "a list", dict: "a dict"}


def _type_text(annotation: Any) -> str:
    """``Optional[int]`` -> ``a whole number``; ``Union[int, str]`` -> ``a whole number or a string``."""
    origin = typing.get_origin(annotation)
    if origin is Union:
        return " or ".join(_type_text(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return _TYPE_WORDS.get(origin or annotation, getattr(annotation, "__name__", str(annotation)))


def node_yaml(name: str, options: Type[BackendOptions]) -> str:
    """The backend node ``backend=<name>`` composes: its docstring, its name, each field with its doc."""
    import yaml

    doc = (options.__doc__ or "").strip()
    if doc.startswith(f"{options.__name__}("):  # written by dataclasses for a class without a docstring
        doc = ""
    lines = [f"# {line}".rstrip() for line in doc.splitlines()]
    lines.append(f"name: {name}")
    for field in dataclasses.fields(options):
        value = field.metadata.get(COMPOSED, _NO_VALUE)
        if value is _NO_VALUE:
            value = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        text = yaml.safe_dump({field.name: value}, default_flow_style=True, width=10**6).strip()[1:-1]
        doc = field.metadata.get(DOC)
        lines.append(f"{text:<32} # {doc}" if doc else text)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the built-in backends


@dataclasses.dataclass
class SingleOptions(BackendOptions):
    """One experiment after another in this process: the backend to debug with."""


@dataclasses.dataclass
class MultiprocessingOptions(BackendOptions):
    """Experiments in parallel in worker processes on this machine (README: Running in parallel on one machine)."""

    num_workers: Optional[int] = option(None, "null: usable CPUs // num_cpus", expect="a whole number >= 1",
                                        at_least=1)
    num_cpus: float = core(1, "CPUs (threads) per experiment")
    num_gpus: float = core(0, "GPUs per experiment, taken from gpus")
    gpus: Any = option(None, "device ids to share out, e.g. [0, 1]; null: from CUDA_VISIBLE_DEVICES")
    max_memory: Any = core(None, "per experiment (the worker's address space while it runs), e.g. 4GB; null: no limit")
    max_experiments_per_worker: Optional[int] = option(
        0, "0: a worker is reused until the run ends; 1: a fresh process per experiment",
        expect="a whole number >= 0", at_least=0)

    def validate(self, settings: RunSettings) -> None:
        from .pool_plan import plan_pool

        if os.name != "posix":
            raise UsageError("backend=multiprocessing needs Linux or another POSIX system")
        plan_pool(settings)


#: Ray resource names that have their own setting; ray_resources must not repeat them.
RAY_BUILTIN_RESOURCES = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "max_memory"}


@dataclasses.dataclass
class RayOptions(BackendOptions):
    """Experiments as Ray tasks: on an embedded local Ray, or on a Ray cluster (README: Running on Ray)."""

    address: Optional[str] = option(
        None, "null: start a local Ray for the run; auto or host:port: use a running cluster",
        expect="'auto' or 'host:port' of a Ray cluster")
    ray_auth_token: Optional[str] = option(None, "a cluster's token; or set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN",
                                           secret=True, expect="a string")
    redis_password: Optional[str] = option(None, "never written to the out_path tree or printed (***)", secret=True,
                                           expect="a string")
    num_cpus: float = core(1, "CPUs per experiment; fractions allowed")
    num_gpus: float = core(0, "GPUs per experiment; fractions allowed")
    max_memory: Any = core(None, "Ray's memory resource per experiment (a reservation), e.g. 4GB; null: none")
    ray_resources: Optional[Dict[str, float]] = option(
        None, "custom resources per experiment, e.g. {gpu_node: 1}", expect="a dict of resource name -> amount")
    ray_max_in_flight: Optional[int] = option(
        None, "experiments submitted to Ray at a time; null: enough to keep the cluster busy, twice what it runs at "
        "once, up to max(64, 4 per slot) while experiments are short", expect="a whole number >= 1", at_least=1)
    ray_runtime_env: Optional[Dict[str, Any]] = option(None, "Ray's runtime_env, e.g. {working_dir: .}",
                                                       expect="a dict (Ray's runtime_env)")

    def validate(self, settings: RunSettings) -> None:
        for name, amount in (self.ray_resources or {}).items():
            if name in RAY_BUILTIN_RESOURCES:
                raise ConfigError(f"ray_resources must not set {name!r}: use {RAY_BUILTIN_RESOURCES[name]} instead")
            if amount <= 0:
                raise ConfigError(f"ray_resources.{name} must be a number > 0, got {amount!r}")


#: A machine of malocher_machines: ``host``, ``host:port``, ``user@host`` or ``user@[::1]:port``.
MACHINE_ADDRESS = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<ipv6>[^\]\s]+)\]|(?P<host>[^:@\[\]\s]+))(?::(?P<port>\d+))?$")


@dataclasses.dataclass
class MalocherOptions(BackendOptions):
    """Experiments on SSH machines that share a filesystem with this one."""

    malocher_machines: Any = option(None, "'host', 'host:port' or 'user@host:port'", composed=["localhost"])
    malocher_user: Optional[str] = option(None, "null: your user name", expect="a string")
    malocher_key: Optional[str] = option(None, "a private key file; null: the SSH agent and ~/.ssh", expect="a string")
    malocher_passphrase: Optional[str] = option(None, "the key's passphrase; never written anywhere (***)",
                                                secret=True, expect="a string")
    malocher_password: Optional[str] = option(None, "an SSH password; never written anywhere (***)", secret=True,
                                              expect="a string")
    malocher_dir: Optional[str] = option(
        None, "a folder on the shared filesystem for job files; null: .malocher_dir", expect="a string")
    malocher_port: Optional[int] = option(22, "the SSH port of machines given without one",
                                          expect="a whole number from 1 to 65535")
    malocher_slots: Optional[int] = option(
        None, "experiments at once per machine; null: its usable CPUs // num_cpus",
        expect="a whole number >= 1 (or unset for one per CPU)", at_least=1)
    max_memory: Any = core(None, "per experiment (its process's address space), e.g. 4GB; null: no limit")
    malocher_python: Optional[str] = option(None, "the Python on the machines; null: this one's path (a shared venv)",
                                            expect="a string")
    malocher_known_hosts: Optional[str] = option("~/.ssh/known_hosts", "", expect="a string")
    malocher_trust_on_first_use: Optional[bool] = option(
        False, "true: accept (and record) the key of a host not yet in known_hosts", expect="true or false")
    malocher_keep_jobs: Optional[bool] = option(
        False, "true: keep every job folder, not only those of failed experiments", expect="true or false")
    malocher_connect_timeout: Optional[float] = option(
        15, "seconds to connect and start the worker on a machine", expect="a number of seconds > 0", above=0)

    def validate(self, settings: RunSettings) -> None:
        if self.malocher_port is not None:
            check_port(self.malocher_port, "malocher_port")
        for text in machine_list(settings.options.get("malocher_machines")):
            match = machine_address(text)
            if match["port"]:
                check_port(int(match["port"]), text)


def check_port(value: Any, where: str) -> int:
    """A TCP port: a whole number from 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{where}: the port must be a whole number from 1 to 65535, got {value!r}")
    return value


def machine_address(text: Any) -> "re.Match[str]":
    """A machine of malocher_machines matched by :data:`MACHINE_ADDRESS`; anything else is an error."""
    match = MACHINE_ADDRESS.match(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(f"malocher_machines: {text!r} is not a machine like 'host', 'host:port' or 'user@host:port'")
    return match


def machine_list(value: Any) -> List[Any]:
    """malocher_machines as a list: given as one, or as ``"node1,node2"``; none is an error."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(
            "backend=malocher needs malocher_machines: a list of SSH machines like ['node1', 'user@node2:2222'], "
            f"got {value!r}"
        )
    return list(value)


#: sbatch options backend=slurm sets itself (log paths, the array, the name it cancels by, the directory).
RESERVED_SBATCH_OPTIONS = frozenset({"output", "error", "array", "open-mode", "job-name", "chdir"})

#: Minutes added to ``ceil(timeout / 60)`` for the job's time limit: starting Python, saving the result.
TIME_LIMIT_MARGIN = 2


@dataclasses.dataclass
class SlurmOptions(BackendOptions):
    """Experiments as Slurm job arrays, submitted with submitit: run this on a login node of the cluster.
    out_path must be on a filesystem the compute nodes share (the jobs write the tree there)."""

    slurm_partition: Optional[str] = option(None, "null: the cluster's default partition", expect="a non-empty string")
    slurm_time_limit: Any = option(  # minutes or text; OmegaConf 2.3 has no Union, validate() checks it
        None, "minutes (90) or '1:30:00'; null: ceil(timeout / 60) + 2 min, or the partition's default",
        expect="minutes (90) or a time like '1:30:00'")
    slurm_account: Optional[str] = option(None, "", expect="a non-empty string")
    slurm_qos: Optional[str] = option(None, "", expect="a non-empty string")
    slurm_array_size: Optional[int] = option(
        1000, "experiments per job array (one sbatch each); at most the cluster's MaxArraySize - 1",
        expect="a whole number >= 1", at_least=1)
    slurm_array_parallelism: Optional[int] = option(
        256, "tasks of one array running at once (Slurm's --array=...%N)", expect="a whole number >= 1", at_least=1)
    slurm_additional_parameters: Optional[Dict[str, Any]] = option(
        None, "more sbatch options, e.g. {constraint: a100, mail-type: END}",
        expect="a dict of sbatch options, like {'constraint': 'a100'}")
    slurm_setup: Optional[List[str]] = option(
        [], "shell lines run in each job before Python, e.g. ['module load cuda']", expect="a list of shell lines")
    slurm_job_name: Optional[str] = option(
        "experiment-runner", "the jobs' name, followed by a token unique to the run", expect="a non-empty string")
    slurm_poll_interval: Optional[float] = option(
        5, "seconds between two squeue calls looking for jobs Slurm ended", expect="a number of seconds > 0", above=0)
    num_cpus: float = core(1, "--cpus-per-task (rounded up)")
    num_gpus: float = core(0, "--gpus-per-node (rounded up)")
    max_memory: Any = core(None, "--mem, e.g. 4GB; null: the partition's default")

    def validate(self, settings: RunSettings) -> None:
        for key in ("slurm_partition", "slurm_account", "slurm_qos", "slurm_job_name"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
        if self.slurm_job_name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.slurm_job_name):
            raise ConfigError(
                f"slurm_job_name may hold letters, digits, '_', '.' and '-' only, got {self.slurm_job_name!r}")
        reserved = sorted(k for k in self.slurm_additional_parameters or {}
                          if k.replace("_", "-").lstrip("-") in RESERVED_SBATCH_OPTIONS)
        if reserved:
            raise ConfigError(
                f"slurm_additional_parameters sets {', '.join(reserved)}, which backend=slurm sets itself "
                "(logs go to each experiment's folder, jobs run in the driver's directory and are cancelled by name)"
            )
        job_time_limit(self.slurm_time_limit, settings.timeout)


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_limit_minutes(text: str) -> float:
    """Minutes of a Slurm time limit: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.

    ``0``, ``UNLIMITED`` and ``INFINITE`` mean no limit (infinity).
    """
    if text.strip().upper() in ("UNLIMITED", "INFINITE"):
        return math.inf
    match = _TIME.match(text.strip())
    if not match:
        raise ConfigError(
            f"slurm_time_limit={text!r} is not a Slurm time limit: give minutes (90) or a time like "
            "'1:30:00' (hours:minutes:seconds) or '2-00:00:00' (days-hours:minutes:seconds)"
        )
    days, first, second, third = (int(part) if part else None for part in match.groups())
    if days is not None:
        minutes = days * 1440 + first * 60 + (second or 0) + (third or 0) / 60
    elif third is not None:
        minutes = first * 60 + second + third / 60
    else:
        minutes = first + (second or 0) / 60
    return minutes or math.inf


def job_time_limit(time_limit: Union[int, str, None], timeout: float) -> Optional[str]:
    """The ``--time`` of the jobs: slurm_time_limit as given, else derived from timeout, else none."""
    if time_limit is not None:
        time_limit = str(time_limit)
        if time_limit_minutes(time_limit) * 60 < timeout:
            raise ConfigError(
                f"slurm_time_limit={time_limit!r} would stop experiments before their timeout of "
                f"{timeout:g} s: raise it, or leave it unset to derive it from timeout"
            )
        return time_limit
    if timeout:
        return str(math.ceil(timeout / 60) + TIME_LIMIT_MARGIN)
    return None


#: The built-in backends' declarations, known without importing any backend module.
BUILTIN_OPTIONS: Dict[str, Type[BackendOptions]] = {
    "single": SingleOptions,
    "multiprocessing": MultiprocessingOptions,
    "ray": RayOptions,
    "malocher": MalocherOptions,
    "slurm": SlurmOptions,
}

__all__ = [
    "BackendOptions", "option", "core", "option_names", "secret_names", "typed_options", "check_options",
    "node_yaml", "BUILTIN_OPTIONS", "SingleOptions", "MultiprocessingOptions", "RayOptions", "MalocherOptions",
    "SlurmOptions",
]
