"""OmegaConf, imported without importing attrs until something else does: about 20 ms of every command's start.

``omegaconf._utils`` runs ``import attr`` only to recognise
attrs classes as structured configs (``OmegaConf.structured``, or an attrs
instance assigned into a config). The package never hands OmegaConf one: its
configs come from YAML files and the command line, as dicts, lists and
scalars. So OmegaConf is imported with ``attr`` blocked, and ``attr`` in
``omegaconf._utils`` then stands for the real package, imported on first use:

- a class can only be an attrs class once attrs is imported, so until then
  "is it an attrs class?" is answered "no" without importing it, and after
  that by attrs itself, as OmegaConf would have;
- the block lasts only for OmegaConf's import: a user's stage that imports
  attrs later gets it as usual, and OmegaConf then takes its attrs classes.

Nothing changes where attrs or OmegaConf is imported already, where other
threads run (they might import attrs meanwhile), or where OmegaConf would not
import without attrs (another version of it): it is imported as usual.
:mod:`.omegaconf_plain` imports OmegaConf through :func:`omegaconf_without_attrs`,
before any other module of the package imports it: the ``config`` package
imports ``omegaconf_plain`` first.
"""
from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Any

_ATTRS = "attr"


class AttrsWhenImported:
    """Stands for the ``attr`` module in ``omegaconf._utils``: the real one from the first use that needs it."""

    @staticmethod
    def has(obj: Any) -> bool:
        """Whether ``obj`` is an attrs class: never while attrs is not imported (its classes need it)."""
        attrs = sys.modules.get(_ATTRS)
        return attrs is not None and attrs.has(obj)

    def __getattr__(self, name: str) -> Any:
        import attr

        return getattr(attr, name)


def _alone() -> bool:
    """No other thread runs that could import attrs while it is blocked (none was started without threading)."""
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def omegaconf_without_attrs() -> ModuleType:
    """The ``omegaconf`` module, imported without attrs where that is safe (see the module's docstring)."""
    if "omegaconf" in sys.modules or _ATTRS in sys.modules or not _alone():
        return import_module("omegaconf")
    sys.modules[_ATTRS] = None  # type: ignore[assignment]  # `import attr` raises ImportError: OmegaConf goes on
    try:
        utils = import_module("omegaconf._utils")
    except ImportError:
        utils = None  # this version needs attrs to import: imported as usual below, once attrs is unblocked
    finally:
        if _ATTRS in sys.modules and sys.modules[_ATTRS] is None:
            del sys.modules[_ATTRS]
    if utils is not None and getattr(utils, _ATTRS, ...) is None:
        utils.attr = AttrsWhenImported()  # type: ignore[attr-defined]
    return import_module("omegaconf")
