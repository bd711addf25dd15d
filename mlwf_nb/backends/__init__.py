"""Backends: engines that run a run directory's workflow, behind a registry.

Like papermill's engines, a backend is registered under a name with the
``"module:Class"`` path of its class and imported only when first asked for,
so ``get_backend("pegasus")`` loads :mod:`mlwf_nb.backends.pegasus` on demand::

    >>> from mlwf_nb.backends import get_backend
    >>> get_backend("local").name
    'local'
"""

from __future__ import annotations

import importlib

from mlwf_nb.backends.base import Backend
from mlwf_nb.errors import BackendError

__all__ = ["Backend", "register_backend", "get_backend", "available_backends", "usable_backends"]

_REGISTRY: dict[str, str | type[Backend]] = {
    "local": "mlwf_nb.backends.local:LocalBackend",
    "pegasus": "mlwf_nb.backends.pegasus:PegasusBackend",
}


def register_backend(name: str, target: str | type[Backend]) -> None:
    """Register a backend class (or its ``"module:Class"`` path) under ``name``.

    Raises:
        BackendError: if ``target`` is a string without exactly one ``:``.
    """
    if isinstance(target, str) and target.count(":") != 1:
        raise BackendError(f"backend {name!r}: target {target!r} must look like 'package.module:Class'")
    _REGISTRY[name] = target


def available_backends() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_REGISTRY)


def usable_backends() -> dict[str, str]:
    """Every registered backend with why it cannot run here ("" for those that can), e.g. for a choice list.

    A backend whose module cannot be imported is unusable, with the import error as the reason.
    """
    out: dict[str, str] = {}
    for name in available_backends():
        target = _REGISTRY[name]
        try:
            cls = _load(name, target) if isinstance(target, str) else target
        except BackendError as err:
            out[name] = str(err)
            continue
        out[name] = cls.unavailable()
    return out


def _load(name: str, target: str) -> type[Backend]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendError(f"backend {name!r}: cannot import module {module_name!r} ({err}); "
                           "install the backend's extra or register another target") from err
    try:
        cls = getattr(module, attr)
    except AttributeError as err:
        raise BackendError(f"backend {name!r}: module {module_name!r} has no class {attr!r}") from err
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r}: {target!r} is not a subclass of mlwf_nb.backends.Backend")
    return cls


def get_backend(name: str) -> Backend:
    """Return a new instance of the backend registered as ``name``.

    Raises:
        BackendError: for an unknown name (the message lists the valid ones) or
            a target that cannot be imported.
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise BackendError(f"unknown backend {name!r}; available backends: {', '.join(available_backends())}"
                           " (register more with mlwf_nb.backends.register_backend)")
    cls = _load(name, target) if isinstance(target, str) else target
    return cls()
