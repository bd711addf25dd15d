"""Backends: engines that run a run directory's workflow, behind the one registry.

Like papermill's engines, a backend is registered under a name with the
``"module:Class"`` path of its class and imported only when first asked for,
so ``get_backend("pegasus")`` loads :mod:`mlwf_nb.backends.pegasus` on demand;
installed packages add backends through the ``mlwf_nb.backends`` entry-point group
(see :mod:`mlwf_nb.registry`)::

    >>> from mlwf_nb.backends import get_backend
    >>> get_backend("local").name
    'local'
"""

from __future__ import annotations

from typing import Any

from mlwf_nb.backends.base import Backend
from mlwf_nb.errors import BackendError
from mlwf_nb.registry import Registry

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend", "available_backends", "usable_backends"]


def _check(name: str, cls: Any) -> type[Backend]:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r}: {cls!r} is not a subclass of mlwf_nb.backends.Backend")
    return cls


BACKENDS: Registry[type[Backend]] = Registry(
    "backend", "mlwf_nb.backends", error=BackendError, check=_check,
    hint="register more with mlwf_nb.backends.register_backend or the mlwf_nb.backends entry-point group")
BACKENDS.register("local", "mlwf_nb.backends.local:LocalBackend")
BACKENDS.register("pegasus", "mlwf_nb.backends.pegasus:PegasusBackend")


def register_backend(name: str, target: str | type[Backend]) -> None:
    """Register a backend class (or its ``"module:Class"`` path) under ``name``.

    Raises:
        BackendError: ``target`` is not a Backend subclass or not a ``"module:Class"`` path.
    """
    BACKENDS.register(name, target)


def available_backends() -> list[str]:
    """Names of the registered backends, sorted."""
    return BACKENDS.names()


def usable_backends() -> dict[str, str]:
    """Every registered backend with why it cannot run here ("" for those that can), e.g. for a choice list.

    A backend whose module cannot be imported is unusable, with the import error as the reason.
    """
    out: dict[str, str] = {}
    for name in BACKENDS.names():
        try:
            out[name] = BACKENDS.get(name).unavailable()
        except BackendError as err:
            out[name] = str(err)
    return out


def get_backend(name: str) -> Backend:
    """Return a new instance of the backend registered as ``name``.

    Raises:
        BackendError: for an unknown name (the message lists the valid ones) or
            a target that cannot be imported.
    """
    return BACKENDS.get(name)()
