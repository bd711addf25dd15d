"""Notebook parameters, checked against the spec and the registries before anything is built.

The tutorials' parameter cells (papermill's ``parameters`` tag) hold plain
values; the first code cell turns them into a RunSpec here::

    >>> spec = tutorial_spec(preset, dataset_dir=dataset_dir, backend=backend, overrides=overrides)

A wrong value raises :class:`~mlwf_nb.errors.ParameterError`, one line that names
the parameter, the value and the choices (from the preset table and the backend
registry), before any widget is built or any file written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlwf_nb.errors import HPOError, ParameterError, SpecError
from mlwf_nb.spec import RunSpec

__all__ = ["tutorial_spec", "check_choice", "preset_names", "backend_choices", "parse_overrides", "run_folder"]


def check_choice(name: str, value: Any, choices: Iterable[Any], why_not: Mapping[Any, str] | None = None) -> Any:
    """``value`` if it is one of ``choices``; else a ParameterError naming ``name`` and the choices.

    ``why_not`` maps values that exist but cannot be used here to the reason, which the message adds.
    """
    choices = list(choices)
    if value in choices:
        return value
    reason = (why_not or {}).get(value)
    if reason:
        raise ParameterError(f"{name}={value!r} cannot be used here: {reason}; choose one of "
                             f"{', '.join(map(repr, choices))}")
    others = f" (not usable here: {', '.join(map(repr, why_not))})" if why_not else ""
    raise ParameterError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}{others}")


def preset_names(pipeline: str = "landcover") -> list[str]:
    """The presets a pipeline offers (its own table; land cover's are the general ones)."""
    from mlwf_nb.pipelines import get_pipeline
    from mlwf_nb.spec import PRESETS

    own = get_pipeline(pipeline).presets
    return list(own) if own else sorted(PRESETS)


def backend_choices() -> tuple[list[str], dict[str, str]]:
    """The backends that can run here, and why each other registered one cannot."""
    from mlwf_nb.backends import usable_backends

    usable = usable_backends()
    return [n for n, why in usable.items() if not why], {n: why for n, why in usable.items() if why}


def parse_overrides(overrides: Any) -> dict[str, Any] | list[str]:
    """``overrides`` as given to a notebook: a dict by key path, a list of ``key=value``, or one such string."""
    if overrides is None or overrides == "":
        return {}
    if isinstance(overrides, str):
        return [part.strip() for part in overrides.split(",") if part.strip()]
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, (list, tuple)) and all(isinstance(o, str) for o in overrides):
        return list(overrides)
    raise ParameterError(f"overrides={overrides!r} must be a dict by key path such as {{'train.epochs': 3}} "
                         "or a list of 'key.path=value' strings")


def tutorial_spec(preset: str, *, pipeline: str = "landcover", dataset_dir: str = "", synthetic: bool = False,
                  backend: str = "local", overrides: Any = None,
                  settings: Mapping[str, tuple[str, Any]] | None = None) -> RunSpec:
    """The run spec of a tutorial notebook from its parameters, each checked first.

    Args:
        preset: one of :func:`preset_names` for ``pipeline``.
        pipeline: the workflow template (``landcover``, ``galaxy``, ``lung``, ...).
        dataset_dir: the dataset folder ("" keeps the preset's, synthetic where the preset says so).
        synthetic: with ``dataset_dir``: generate a synthetic dataset there if it is missing (otherwise
            ``dataset_dir`` must hold a dataset: a mistyped folder is an error, never synthetic data).
        backend: one of the backends that can run here (:func:`backend_choices`).
        overrides: more spec settings (see :func:`parse_overrides`), applied last.
        settings: the notebook's other parameters, ``{name: (key path, value)}``, e.g.
            ``{"trials": ("hpo.trials", trials)}``; a bad value is reported under its ``name``.

    Raises:
        ParameterError: a parameter with a value it cannot take (names it and the choices); a
            ``dataset_dir`` that does not exist or is empty, without ``synthetic``.
    """
    from mlwf_nb.pipelines import preset_spec

    check_choice("preset", preset, preset_names(pipeline))
    usable, why_not = backend_choices()
    check_choice("backend", backend, usable, why_not)
    base: dict[str, Any] = {"execution.backend": backend}
    if dataset_dir and not synthetic:
        _check_dataset_dir(dataset_dir)
    if dataset_dir:
        base.update({"dataset.path": str(dataset_dir), "dataset.synthetic": bool(synthetic)})
    spec = preset_spec(preset, pipeline, base)
    named = dict(settings or {})
    try:
        spec = spec.with_overrides({key: value for key, value in named.values()})
        if spec.hpo.strategy != "none":  # a registered strategy, with options it takes
            from mlwf_nb.hpo.strategies import get_strategy

            get_strategy(spec.hpo, max_epochs=spec.train.epochs)
    except (SpecError, HPOError) as err:
        name, (_key, value) = next(((n, kv) for n, kv in named.items() if kv[0] in str(err)),
                                  next(iter(named.items())))
        raise ParameterError(f"{name}={value!r}: {err}") from err
    try:
        return spec.with_overrides(parse_overrides(overrides))
    except SpecError as err:
        raise ParameterError(f"overrides: {err}") from err


def _check_dataset_dir(dataset_dir: str) -> None:
    """A folder of your own is checked before anything runs: a typo fails here, in the parameters cell."""
    folder = Path(dataset_dir).expanduser()
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        what = "does not exist" if not folder.exists() else "is empty"
        raise ParameterError(f"dataset_dir={dataset_dir!r}: the folder {what}; give a dataset folder (a GID "
                             "download or a folder with dataset.yaml), or synthetic=True to generate a synthetic "
                             "dataset there")


def run_folder(run_dir: str, *, name: str = "run_dir") -> Path:
    """``run_dir`` as the folder of an existing run (it has a ``workflow.yml``); else a ParameterError."""
    path = Path(run_dir).expanduser()
    if not str(run_dir):
        raise ParameterError(f"{name} is empty: give the folder of a run (mlwf status lists its state)")
    if not path.is_dir():
        raise ParameterError(f"{name}={str(run_dir)!r} does not exist; give the folder of a run, "
                             "such as one printed by `mlwf run` or shown by a RunMonitor")
    if not (path / "workflow.yml").is_file():
        raise ParameterError(f"{name}={str(run_dir)!r} is not a run folder (it has no workflow.yml); give the "
                             "folder of a run, such as one printed by `mlwf run` or shown by a RunMonitor")
    return path
