"""Turning configs and scores into JSON, and writing files so nobody sees half of one."""
from __future__ import annotations

import copy
import json
import math
import os
import secrets
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, List, Union

from .errors import ConfigError

__all__ = ["to_jsonable", "dumps", "write_atomic", "copy_plain", "mask_secrets", "masked_argv", "is_secret_key", "NotJSONableError"]

_SECRET_WORDS = ("password", "passphrase", "token", "secret")
MASK = "***"


def is_secret_key(key: Any) -> bool:
    """True for keys whose values must never reach the disk or the terminal."""
    name = str(key).lower()
    return any(word in name for word in _SECRET_WORDS)


def masked_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` with the value of each secret ``key=value`` (``backend.ray_auth_token=...``) as ``***``."""
    return [f"{arg.partition('=')[0]}={MASK}" if "=" in arg and is_secret_key(arg.partition("=")[0]) else arg
            for arg in argv]


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with the value of every secret key (at any depth) set to ``***``."""
    if isinstance(value, Mapping):
        return {k: (MASK if is_secret_key(k) and v is not None else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value

_SCALARS = (str, int, float, bool, bytes, type(None))


def copy_plain(value: Any) -> Any:
    """A deep copy, several times faster than copy.deepcopy for plain data."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is dict:
        return {key: copy_plain(item) for key, item in value.items()}
    if type(value) is list:
        return [copy_plain(item) for item in value]
    return copy.deepcopy(value)


class NotJSONableError(ConfigError, TypeError):
    """A value that has no JSON form; ``key`` says where it sits."""

    def __init__(self, key: str, value: Any):
        self.key = key
        self.value = value
        super().__init__(
            f"{key or '<root>'} = {_short_repr(value)} ({type(value).__name__}) cannot be stored as JSON: "
            "use strings, numbers, booleans, None, lists and dicts"
        )


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_jsonable(value: Any, key: str = "") -> Any:
    """``value`` as plain JSON data.

    numpy scalars become Python numbers, numpy arrays and tuples become lists,
    NaN and infinity become None (JSON has no such numbers). Anything else that
    JSON cannot hold raises :class:`NotJSONableError` naming its key.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_json_key(k, key): to_jsonable(v, _join(key, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not isinstance(value, bytes)):
        return [to_jsonable(v, f"{key}[{i}]") for i, v in enumerate(value)]
    numpy_value = _from_numpy(value)
    if numpy_value is not _NOT_NUMPY:
        return to_jsonable(numpy_value, key)
    raise NotJSONableError(key, value)


_NOT_NUMPY = object()


def _from_numpy(value: Any) -> Any:
    """numpy scalars and arrays as Python values, without importing numpy."""
    if type(value).__module__ != "numpy":
        return _NOT_NUMPY
    if hasattr(value, "tolist") and getattr(value, "dtype", None) is not None and value.dtype.kind in "biufcUS?":
        converted = value.tolist()
        if isinstance(converted, complex):
            return _NOT_NUMPY
        return converted
    return _NOT_NUMPY


def _json_key(k: Any, parent: str) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, (int, float, bool)) or k is None:
        return json.dumps(k)
    raise NotJSONableError(_join(parent, k), k)


def _join(parent: str, k: Any) -> str:
    return f"{parent}.{k}" if parent else str(k)


def dumps(value: Any) -> str:
    """One line of JSON for ``value`` (already JSON-able), keys in the given order."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def write_atomic(path: Union[str, Path], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    The temporary file is created with mode 0666 less the umask, like any
    file ``open`` creates (mkstemp's 0600 would hide results from a group).
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename2 is None:
            error.filename = str(path)  # the file being written, not its temporary name (a full disk names it)
        raise
