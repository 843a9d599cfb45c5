"""Turning configs and scores into JSON, writing files so nobody sees half of one, and keeping secrets out.

A secret is named by a dotted key from a config's root (``api_key``,
``db.password``): the parameters a run declares in ``secret_keys`` and the
settings a backend declares secret (``redis_password``, at the top level as
basecfg holds it and under ``backend`` as a config file does). Their values
are shown and stored as ``***``; only the stages see them.
"""
from __future__ import annotations

import copy
import functools
import json
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple, Union

from .errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["to_jsonable", "dumps", "write_atomic", "copy_plain", "lookup", "dotted_keys", "ABSENT", "NotJSONableError",
           "MASK", "secret_paths", "is_secret_override", "mask_secrets", "masked_argv", "secret_values",
           "with_secret_values", "SecretVerifier"]

MASK = "***"

#: Words that make a command-line flag's value secret (``--token S``, ``--api-key=S``). A script's own flags
#: are not parameters, so they are judged by their names.
#: Words of a command-line flag's name (split at - and _) that make its value a secret: ``--hf-token``,
#: ``--db-password``, ``--api-key``; not ``--max-tokens`` or ``--tokenizer``, whose values are data.
_SECRET_FLAG_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "token", "apikey", "credential",
                                "credentials"})
_SECRET_FLAG_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})


def secret_paths(secret_keys: Iterable[str] = (), backend_options: Iterable[str] = ()) -> FrozenSet[str]:
    """The dotted keys whose values are secret: the user's ``secret_keys`` and a backend's secret settings.

    A top-level name is secret under ``backend`` too, where a config file sets a backend's settings.
    """
    keys = frozenset(secret_keys) | frozenset(backend_options)
    return keys | {f"backend.{key}" for key in keys if "." not in key}


def is_secret_override(key: str, value: str, keys: Iterable[str]) -> bool:
    """True for an override ``key=value`` that sets a secret of ``keys``.

    Its dotted key is a secret or lies inside one, or it is a parent of one
    and its ``value`` (as typed) holds a dict or a list, where the secret may be.
    """
    holds_data = "{" in value or "[" in value
    return any(
        key == path or key.startswith(f"{path}.") or (holds_data and path.startswith(f"{key}.")) for path in keys
    )


#: A tree of secret keys: each part of a dotted key maps to its subtree; a secret itself maps to None.
_Tree = Dict[str, Optional["_Tree"]]


@functools.lru_cache(maxsize=64)
def _tree(keys: FrozenSet[str]) -> _Tree:
    tree: _Tree = {}
    for path in keys:
        node: Optional[_Tree] = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if node is None:  # inside a key that is secret as a whole
                break
        else:
            node[last] = None
    return tree


def _children(value: Any) -> Iterator[Tuple[str, Any]]:
    """(key, child) of a dict, or of a list by index: the parts a dotted key walks through."""
    if isinstance(value, Mapping):
        return ((str(key), child) for key, child in value.items())
    if isinstance(value, list):
        return ((str(index), child) for index, child in enumerate(value))
    return iter(())


#: What :func:`lookup` returns for a key that a config does not set.
ABSENT = object()


def lookup(config: Any, key: str) -> Any:
    """The value of the dotted ``key`` in ``config`` (``db.password``, ``layers.0``), else ABSENT."""
    node = config
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ABSENT
    return node


def dotted_keys(config: Any, prefix: str = "") -> Iterator[str]:
    """Every key of ``config``, nested ones dotted (``db``, ``db.password``)."""
    if isinstance(config, Mapping):
        for key, child in config.items():
            yield f"{prefix}{key}"
            yield from dotted_keys(child, f"{prefix}{key}.")


def mask_secrets(value: Any, keys: Iterable[str]) -> Any:
    """``value`` (a config: dicts and lists) with the value of each secret key as ``***``.

    What holds no secret is shared with ``value``, not copied; an unset secret (None) stays None.
    """
    if not keys:
        return value
    return _masked(value, _secret_tree(keys if isinstance(keys, (tuple, frozenset)) else tuple(keys)))


@functools.lru_cache(maxsize=32)
def _secret_tree(keys: Iterable[str]) -> _Tree:
    """The tree of the secret ``keys``, made once per run's keys (configs are masked per experiment). Read only."""
    return _tree(frozenset(keys))


def _masked(value: Any, tree: _Tree) -> Any:
    if is_mapping(value) and not tree.keys().isdisjoint(map(str, value)):
        return {key: _masked_child(child, tree, str(key)) for key, child in value.items()}
    if isinstance(value, list) and not tree.keys().isdisjoint(map(str, range(len(value)))):
        return [_masked_child(child, tree, str(index)) for index, child in enumerate(value)]
    return value


def is_mapping(value: Any) -> bool:
    """isinstance(value, Mapping), answered without the ABC's check for a dict (configs are checked per experiment)."""
    return type(value) is dict or isinstance(value, Mapping)


def _masked_child(child: Any, tree: _Tree, key: str) -> Any:
    if key not in tree:
        return child
    subtree = tree[key]
    if subtree is None:
        return child if child is None else MASK
    return _masked(child, subtree)


def secret_values(config: Any, keys: Iterable[str]) -> Dict[str, Any]:
    """The values of the secret ``keys`` that ``config`` sets, by dotted key (to deliver them without a file)."""
    tree = _secret_tree(keys if isinstance(keys, (tuple, frozenset)) else tuple(keys))
    if is_mapping(config) and tree.keys().isdisjoint(map(str, config)):
        return {}  # the usual case, answered at once: no secret key at the top, so none below
    return dict(_secret_items(config, tree, ""))


def _secret_items(value: Any, tree: _Tree, prefix: str) -> Iterator[Tuple[str, Any]]:
    for key, child in _children(value):
        if key in tree and tree[key] is None:
            if child is not None:
                yield prefix + key, child
        elif key in tree:
            yield from _secret_items(child, tree[key], f"{prefix}{key}.")


#: Shorter secret strings are not looked for in free text (a failure's message and traceback): masking every
#: "ab" in it would garble the text.
SHORTEST_MASKED_TEXT = 4


def mask_secret_texts(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with each secret string among ``values`` (:func:`secret_values`, nested too) written ``***``."""
    for secret in sorted(set(_strings(values.values())), key=len, reverse=True):  # longest first: one may hold another
        text = text.replace(secret, MASK)
    return text


def _strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str) and len(value) >= SHORTEST_MASKED_TEXT:
            yield value
        elif is_mapping(value) or isinstance(value, list):
            yield from _strings(value.values() if is_mapping(value) else value)


def with_secret_values(config: Dict[str, Any], values: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``config`` with each dotted key of ``values`` set to its value (the secrets put back)."""
    restored = copy_plain(config)
    for path, value in values.items():
        *parents, last = path.split(".")
        node: Any = restored
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return restored


class SecretVerifier:
    """Turns the secret values of an experiment into a verifier: a salted slow hash of them.

    experiments.jsonl stores it beside the masked config, so that a resumed run
    tells which secret values each recorded experiment ran with (``api_key=KA,KB``
    both read ``***``) without the tree ever holding them. Storing it is acceptable
    for the reason a password hash is: it cannot be turned back into the values.
    Guessing is what is left, and scrypt makes each guess cost about 16 MiB and a
    tenth of a second, with a salt drawn anew for each run, so no guess serves
    two runs. Each distinct set of values is hashed once.
    """

    SCHEME = "scrypt"

    def __init__(self, salt: Optional[bytes] = None, n: int = 2**14, r: int = 8, p: int = 1):
        import secrets  # here, not at start-up: with hmac it imports OpenSSL's hashlib (about 3 ms)

        self.salt = secrets.token_bytes(16) if salt is None else salt
        self.n, self.r, self.p = n, r, p
        self._cache: Dict[str, str] = {}

    @classmethod
    def of(cls, verifier: str) -> "SecretVerifier":
        """The verifier that made ``verifier`` (its salt and cost): to compute others comparable with it.

        Raises ValueError for a text that is not a verifier.
        """
        scheme, n, r, p, salt, _digest = verifier.split("$")
        if scheme != cls.SCHEME:
            raise ValueError(f"unknown scheme {scheme!r}")
        return cls(bytes.fromhex(salt), int(n), int(r), int(p))

    def __call__(self, values: Mapping[str, Any]) -> Optional[str]:
        """The verifier of ``values`` (secret values by dotted key); None when there are none."""
        if not values:
            return None
        text = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        if text not in self._cache:
            import hashlib  # imported once a run has secrets: its OpenSSL binding costs every start-up otherwise

            digest = hashlib.scrypt(text.encode("utf-8"), salt=self.salt, n=self.n, r=self.r, p=self.p, dklen=32)
            self._cache[text] = "$".join([self.SCHEME, str(self.n), str(self.r), str(self.p), self.salt.hex(),
                                          digest.hex()])
        return self._cache[text]


def masked_argv(argv: Sequence[str], keys: Iterable[str]) -> List[str]:
    """``argv`` as it may be stored: each secret as ``***``.

    An override ``key=value`` (or ``+key=``, ``++key=``, ``~key=``) that sets
    one of the secret ``keys`` (see is_secret_override) shows ``key=***``. A flag
    named like a secret (``--token``, ``--api-key``, ``--db-password``: see
    _SECRET_FLAG_WORDS) shows ``--token=***``, or ``--token ***`` when its
    value is the next argument.
    """
    masked: List[str] = []
    hide_next = False
    for arg in argv:
        name, has_value, value = arg.partition("=")
        if hide_next:
            masked.append(MASK)
            hide_next = False
        elif arg.startswith("-") and _names_a_secret(name):
            masked.append(f"{name}={MASK}" if has_value else arg)
            hide_next = not has_value
        elif has_value and not arg.startswith("-") and is_secret_override(name.lstrip("+~").strip(), value, keys):
            masked.append(f"{name}={MASK}")
        else:
            masked.append(arg)
    return masked


def _names_a_secret(flag: str) -> bool:
    words = flag.lstrip("-").lower().replace("_", "-").split("-")
    pairs = zip(words, words[1:])
    return bool(_SECRET_FLAG_WORDS.intersection(words)) or any(pair in _SECRET_FLAG_PAIRS for pair in pairs)


_SCALARS = (str, int, float, bool, bytes, type(None))


def copy_plain(value: Any) -> Any:
    """A deep copy, several times faster than copy.deepcopy for plain data."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is dict:  # most values are scalars: kept without a call each
        return {key: item if type(item) in _SCALAR_TYPES else copy_plain(item) for key, item in value.items()}
    if type(value) is list:
        return [item if type(item) in _SCALAR_TYPES else copy_plain(item) for item in value]
    return copy.deepcopy(value)


_SCALAR_TYPES = frozenset(_SCALARS)


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
    NaN and infinity become None (JSON has no such numbers), dict keys become
    text. Anything else that JSON cannot hold raises :class:`NotJSONableError`
    naming its key.
    """
    try:
        return _copy_of_json_data(value)
    except _NotJSONData:
        pass  # converted with care below, outside the handler: its error is not chained to this internal one
    return _plain(value, key, exact_floats=False, exact_keys=False, lost=None)


def to_stage_values(value: Any, key: str = "") -> Tuple[Any, bool]:
    """``value`` as the stages receive it, and whether its JSON form (:func:`to_jsonable`) loses anything.

    Like :func:`to_jsonable`, but NaN and infinities stay floats and dict keys
    keep their type (``{0: 1, 1: 10}``), as the config gave them.
    """
    try:
        return _copy_of_json_data(value), False
    except _NotJSONData:
        pass  # as in to_jsonable: the careful conversion's error is not chained to this internal one
    lost: List[str] = []
    return _plain(value, key, exact_floats=True, exact_keys=True, lost=lost), bool(lost)


class _NotJSONData(Exception):
    """Raised by :func:`_copy_of_json_data` at the first value it leaves to the careful conversion."""


def _copy_of_json_data(value: Any) -> Any:
    """A copy of ``value`` if it is JSON data already (text keys, finite floats, tuples as lists), else _NotJSONData.

    What most configs are, copied without the bookkeeping of :func:`_plain`
    (each value's dotted key, for an error message): a run makes each of its
    experiments from its config more than once.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value - value == 0.0:  # finite: infinities and NaN give NaN
            return value
        raise _NotJSONData
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotJSONData
            copy[key] = _copy_of_json_data(item)
        return copy
    if kind is list or kind is tuple:
        return [_copy_of_json_data(item) for item in value]
    raise _NotJSONData


def hashable_form(value: Any) -> Any:
    """``value`` (stage values) as the config hash reads it: keys as text, NaN and infinities kept apart from None."""
    return _plain(value, "", exact_floats=True, exact_keys=False, lost=None)


def _plain(value: Any, key: str, exact_floats: bool, exact_keys: bool, lost: Optional[List[str]]) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        if lost is not None:
            lost.append(key)
        return float(value) if exact_floats else None
    if isinstance(value, Mapping):
        return {_plain_key(k, key, exact_keys, lost): _plain(v, _join(key, k), exact_floats, exact_keys, lost)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not isinstance(value, bytes)):
        return [_plain(v, f"{key}[{i}]", exact_floats, exact_keys, lost) for i, v in enumerate(value)]
    numpy_value = _from_numpy(value)
    if numpy_value is not _NOT_NUMPY:
        return _plain(numpy_value, key, exact_floats, exact_keys, lost)
    raise NotJSONableError(key, value)


def _plain_key(k: Any, parent: str, exact: bool, lost: Optional[List[str]]) -> Any:
    text = _json_key(k, parent)
    if text is k:
        return k
    if lost is not None:
        lost.append(_join(parent, k))
    return k if exact else text


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
    """One line of JSON for ``value`` (already JSON-able: a tree of plain data), keys in the given order.

    The same text as ``json.dumps(value, ensure_ascii=False, allow_nan=False)``.
    """
    return _DUMPS(value)


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """``json.dumps`` with these ``options`` for plain data, made once: each call encodes and nothing more.

    json.dumps with options makes an encoder per call, and JSONEncoder.encode
    makes the C encoder per call: a few microseconds that every experiment
    paid several times. Made here once, it is reused. The data must be a tree
    (no value inside itself), as every config and record is once checked: a
    reused C encoder keeps no record of the values it is inside of.
    """
    encoder = json.JSONEncoder(**options)
    if c_make_encoder is None or encoder.indent is not None:
        return encoder.encode
    make = c_make_encoder(None, encoder.default, encode_basestring_ascii if encoder.ensure_ascii else encode_basestring,
                          None, encoder.key_separator, encoder.item_separator, encoder.sort_keys, encoder.skipkeys,
                          encoder.allow_nan)
    join = "".join

    def encode(value: Any) -> str:
        return join(make(value, 0))

    return encode


_DUMPS = json_encoder(allow_nan=False, ensure_ascii=False)


def write_atomic(path: Union[str, Path], text: Union[str, Iterable[str]]) -> None:
    """Write ``text`` (or the pieces of text it yields, as they come) to ``path`` through a temporary file and a rename.

    The temporary file is created with mode 0666 less the umask, like any
    file ``open`` creates (mkstemp's 0600 would hide results from a group).
    """
    from pathlib import Path  # here: a pool worker writes a config this way only on a retry

    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")  # secrets.token_hex(4)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if isinstance(text, str):
                f.write(text)
            else:
                f.writelines(text)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename2 is None:
            error.filename = str(path)  # the file being written, not its temporary name (a full disk names it)
        raise
