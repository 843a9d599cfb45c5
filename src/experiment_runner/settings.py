"""The run's settings: the original package's ``basecfg``, checked once, up front.

Everything a user can get wrong here raises a :class:`UsageError` with one
clear line before any experiment runs.
"""
from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Union

from .core_keys import CORE_KEYS
from .errors import ConfigError, StageImportError
from .sweep import check_no_cycle, plain_config

if TYPE_CHECKING:
    from .experiment import Stages

#: What to do when out_path already holds files.
IF_EXISTS_MODES = ("error", "resume", "overwrite", "new")


def default_out_path() -> str:
    """``results/<date>_<time>``; used with if_exists='new' so two runs never share it."""
    return "results/" + datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


@dataclass
class RunSettings:
    """Parsed basecfg. ``options`` holds the backend-specific rest (address, malocher_*, ...)."""

    out_path: str
    stages: Stages
    backend: str = "single"
    repetitions: int = 1
    timeout: float = 0.0
    retries: int = 0
    verbose: bool = True
    if_exists: str = "error"
    num_cpus: float = 1
    num_gpus: float = 0
    max_memory: Optional[int] = None
    #: The experiment parameters whose values are secret, as dotted keys (``db.password``).
    secret_keys: Tuple[str, ...] = ()
    #: Each repetition's stages run in its own folder (Hydra's ``hydra.job.chdir``).
    chdir: bool = False
    #: The search: None or "grid" for the listed configurations, else an adaptive search's settings (search/).
    search: Any = None
    options: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_basecfg(cls, basecfg: Mapping[str, Any], more: Optional[Mapping[str, Any]] = None) -> "RunSettings":
        """The settings of ``basecfg``, with ``more`` (keyword arguments of run_experiments) overriding them."""
        from .experiment import Stages  # not at import: the config's modules read CORE_KEYS, not the stages

        if not isinstance(basecfg, Mapping):
            raise ConfigError(
                f"basecfg must be a dict of settings like {{'fit': fit, 'out_path': ...}}, got "
                f"{type(basecfg).__name__}: call run_experiments(basecfg, cfgs), settings first"
            )
        basecfg = plain_config(basecfg, "basecfg")
        for settings in (basecfg, more or {}):
            check_no_cycle(settings, "basecfg")
        basecfg = {**basecfg, **(more or {})}
        given_out_path = basecfg.get("out_path")
        return cls(
            out_path=str(given_out_path) if given_out_path not in (None, "") else default_out_path(),
            stages=Stages(
                fit=resolve_stage(basecfg, "fit", required=True),
                pre=resolve_stage(basecfg, "pre"),
                post=resolve_stage(basecfg, "post"),
            ),
            backend=_text(basecfg, "backend", "single"),
            repetitions=whole_number(basecfg.get("repetitions", 1), "repetitions", minimum=1),
            timeout=_seconds(basecfg.get("timeout", 0)),
            retries=whole_number(basecfg.get("retries", 0), "retries", minimum=0),
            verbose=_flag(basecfg.get("verbose", True), "verbose"),
            if_exists=_if_exists(basecfg, given_out_path),
            num_cpus=_number(basecfg.get("num_cpus", 1), "num_cpus", positive=True),
            num_gpus=_number(basecfg.get("num_gpus", 0), "num_gpus"),
            max_memory=parse_bytes(basecfg.get("max_memory"), "max_memory"),
            secret_keys=_secret_keys(basecfg.get("secret_keys")),
            chdir=_flag(basecfg.get("chdir", False), "chdir"),
            search=basecfg.get("search"),
            options={k: v for k, v in basecfg.items() if k not in CORE_KEYS},
        )


def _text(basecfg: Mapping[str, Any], key: str, default: str) -> str:
    value = basecfg.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _if_exists(basecfg: Mapping[str, Any], given_out_path: Any) -> str:
    default = "error" if given_out_path not in (None, "") else "new"
    mode = basecfg.get("if_exists", default)
    if mode not in IF_EXISTS_MODES:
        raise ConfigError(f"if_exists={mode!r} is not one of {', '.join(IF_EXISTS_MODES)}")
    return mode


def _secret_keys(value: Any) -> Tuple[str, ...]:
    """The parameters named secret: a list of keys, dotted for nested ones."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) and "" not in k.split(".") for k in value):
        raise ConfigError(
            f"secret_keys must be a list of parameter names (dotted for nested keys), like [api_key, db.password], "
            f"got {value!r}"
        )
    return tuple(value)


def whole_number(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _number(value: Any, key: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{key} must be a number {bound}, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    if value is None:
        return 0.0
    return float(_number(value, "timeout"))


_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B?\s*$", re.IGNORECASE)


def parse_bytes(value: Union[int, str, None], key: str = "max_memory") -> Optional[int]:
    """Bytes from an int or a string like ``"4GB"``, ``"512MiB"``, ``"1.5G"``; None stays None."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be bytes or a size like '4GB', got {value!r}")
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    match = _BYTES.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"{key} must be bytes or a size like '4GB' or '512MiB', got {value!r}")
    number, unit, binary = match.groups()
    unit = unit.upper()
    factor = 1024 ** "KMGT".index(unit) * 1024 if binary and unit else _UNITS[unit]
    return int(float(number) * factor)


def resolve_stage(basecfg: Mapping[str, Any], name: str, required: bool = False) -> Optional[Callable[..., Any]]:
    """The stage function ``basecfg[name]``: a callable, or an import path ``'pkg.module:function'``."""
    value = basecfg.get(name)
    if value is None:
        if required:
            raise ConfigError(
                f"no '{name}' given: set {name} to the function that runs an experiment "
                "(a callable, or an import path like 'mypkg.experiment:fit')"
            )
        return None
    if isinstance(value, str):
        value = import_object(value, name)
    if not callable(value):
        raise ConfigError(f"{name} must be a function, got {value!r} ({type(value).__name__})")
    return value


def import_object(path: str, what: str = "object") -> Any:
    """Import ``'pkg.module:attr.sub'`` (or ``'pkg.module.attr'``), with errors that name the part missing."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise StageImportError(f"{what}={path!r} is not an import path like 'mypkg.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise StageImportError(f"cannot import {what} {path!r}: {error}", _not_found_advice(error, module_name)) \
            from error
    except Exception as error:
        raise StageImportError(
            f"cannot import {what} {path!r}: importing module {module_name!r} raised "
            f"{type(error).__name__}: {error}"
        ) from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise StageImportError(f"cannot import {what} {path!r}: {module_name!r} has no attribute {part!r}{hint}")
        target = getattr(target, part)
    return target


def _not_found_advice(error: ImportError, module_name: str) -> str:
    """Where to look when the stage's own module is not found (not a module it imports)."""
    top = module_name.partition(".")[0]
    if not isinstance(error, ModuleNotFoundError) or error.name != top:
        return ""
    return (f"Python finds no {top}.py or {top}/ on its path: run from the folder that holds it, "
            "or add that folder to PYTHONPATH")


def unknown_key_error(key: str, known: Any, where: str = "basecfg") -> ConfigError:
    """An error for a key nobody reads, naming the closest known ones."""
    close = difflib.get_close_matches(key, sorted(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown key {key!r} in {where}{hint}")
