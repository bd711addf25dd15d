"""One registry for every extension point: backends, steps, pipelines, models and HPO strategies.

Papermill's engines are the model: a name maps to an object or to the
``"package.module:attr"`` path of one, imported only when first asked for, and
installed packages add names through an entry-point group::

    # a researcher's setup.cfg
    [options.entry_points]
    mlwf_nb.hpo_strategies =
        gradient = my_search.gradient:GradientStrategy

    >>> from mlwf_nb.hpo.strategies import STRATEGIES
    >>> STRATEGIES.register("gradient", GradientStrategy)   # or in a module, at import

An unknown name raises the extension point's own error class (``BackendError``,
``StepError``, ``SpecError``, ``HPOError``) listing the valid names. Every
extension point is one :class:`Registry`:

======================  ===========================  =========================================
extension point         registry                     entry-point group
======================  ===========================  =========================================
backends                ``mlwf_nb.backends.BACKENDS``      ``mlwf_nb.backends``
steps                   ``mlwf_nb.steps.registry.STEPS``   ``mlwf_nb.steps``
pipelines               ``mlwf_nb.pipelines.PIPELINES``    ``mlwf_nb.pipelines``
models                  ``mlwf_nb.ml.models.MODELS``       ``mlwf_nb.models``
HPO strategies          ``mlwf_nb.hpo.strategies.STRATEGIES``  ``mlwf_nb.hpo_strategies``
======================  ===========================  =========================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from mlwf_nb.errors import MlwfError

__all__ = ["Registry", "load_target"]

T = TypeVar("T")


def load_target(target: str, *, error: type[MlwfError] = MlwfError, what: str = "entry") -> Any:
    """Import ``"package.module:attr"`` (or a bare ``"package.module"``) and return the object.

    Raises:
        error: the path is malformed, the module cannot be imported or lacks the attribute.
    """
    module_name, sep, attr = target.partition(":")
    if not module_name or (sep and not attr) or target.count(":") > 1:
        raise error(f"{what}: {target!r} must look like 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise error(f"{what}: cannot import module {module_name!r} ({err}); install it or put its folder "
                    "on PYTHONPATH") from err
    if not sep:
        return module
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as err:
            raise error(f"{what}: module {module_name!r} has no attribute {attr!r}") from err
    return obj


class Registry(Generic[T]):
    """Names of one kind of extension, each an object or the import path of one.

    Args:
        kind: what the names name (``"backend"``), for messages.
        group: the entry-point group installed packages register under.
        error: the error class raised for an unknown or broken name.
        check: called on every loaded object; returns it (possibly converted) or raises ``error``.
        modules: modules imported when a name is missing (they register their names on import).
        hint: how to add a name, appended to the unknown-name message.
        plural: the plural of ``kind`` (default: ``kind + "s"``).
    """

    def __init__(self, kind: str, group: str, *, error: type[MlwfError] = MlwfError,
                 check: Callable[[str, Any], T] | None = None, modules: Iterable[str] = (),
                 hint: str = "", plural: str = "") -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.group = group
        self.error = error
        self._check = check
        self._modules = list(modules)
        self._hint = hint
        self._entries: dict[str, T | str] = {}
        self._scanned = False

    # -- adding -----------------------------------------------------------------------------
    def register(self, name: str, target: T | str, *, replace: bool = True) -> T | str:
        """Register ``target`` (an object, or its ``"module:attr"`` path) under ``name``; returns it.

        Raises:
            error: ``replace`` is false and ``name`` already names something else.
        """
        old = self._entries.get(name)
        if old is not None and not replace and old is not target and old != target:
            raise self.error(f"{self.kind} name {name!r} is already taken by {_describe(old)}; "
                             "choose another name or pass replace=True")
        if isinstance(target, str):
            if target.count(":") != 1 or not all(target.partition(":")[::2]):
                raise self.error(f"{self.kind} {name!r}: target {target!r} must look like 'package.module:attr'")
        elif self._check is not None:
            target = self._check(name, target)
        self._entries[name] = target
        return target

    def loaded(self, name: str) -> bool:
        """Whether ``name`` is registered as an object (not as an import path not yet loaded)."""
        entry = self._entries.get(name)
        return entry is not None and not isinstance(entry, str)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error when it was not registered)."""
        self._entries.pop(name, None)

    def _scan(self, *, again: bool = False) -> None:
        """Add the names of installed packages (entry points) and import the modules that register names.

        The modules are imported once; the entry points are read again when a name is
        missing (``again``), so a package installed into the running kernel is found.
        """
        if self._scanned and not again:
            return
        for ep in entry_points(group=self.group):
            self._entries.setdefault(ep.name, ep.value)
        if self._scanned:
            return
        self._scanned = True
        for module in self._modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name != module:
                    raise

    # -- finding ----------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The object registered as ``name`` (imported on first use).

        Raises:
            error: an unknown name (the message lists the valid ones) or a target that cannot be loaded.
        """
        if name not in self._entries:
            self._scan(again=True)
        if name not in self._entries:
            hint = f" ({self._hint})" if self._hint else ""
            raise self.error(f"unknown {self.kind} {name!r}; available {self.plural}: "
                             f"{', '.join(self.names()) or 'none'}{hint}")
        entry = self._entries[name]
        if isinstance(entry, str):
            obj = load_target(entry, error=self.error, what=f"{self.kind} {name!r}")
            entry = self._check(name, obj) if self._check is not None else obj
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Every registered name, sorted (installed packages' included)."""
        self._scan()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._scan(again=True)
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<Registry of {self.plural}: {', '.join(sorted(self._entries))}>"


def _describe(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    mod, qual = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    return f"{mod}:{qual}" if mod and qual else repr(entry)
