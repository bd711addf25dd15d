"""The search space: spec ``HPOParam`` rows to keras-tuner ``HyperParameters`` and back.

Hyper-parameter names are spec key paths (``train.learning_rate``,
``model.name``), so a trial's values apply to a :class:`~mlwf_nb.spec.RunSpec`
directly with :func:`apply_hp`. Values the oracles add for their own book-keeping
(Hyperband's ``tuner/epochs`` ...) are stripped there.

Float and int rows map to ``hp.Float`` / ``hp.Int``; ``log: true`` means
``sampling="log"``, and then ``step`` (if given) is a *multiplicative* factor, as
in keras-tuner (``min=1e-4, max=1e-1, log=true, step=10`` tries 1e-4, 1e-3, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import keras_tuner

from mlwf_nb.errors import HPOError, SpecError
from mlwf_nb.spec import HPOParam, RunSpec

__all__ = ["build_hyperparameters", "apply_hp", "validate_space", "spec_values", "TUNER_PREFIX"]

TUNER_PREFIX = "tuner/"


def build_hyperparameters(space: list[HPOParam]) -> keras_tuner.HyperParameters:
    """Build the keras-tuner search space from the spec's ``hpo.space`` rows.

    Args:
        space: The ``hpo.space`` rows.

    Returns:
        A ``HyperParameters`` with one entry per row, named by its key path.

    Raises:
        HPOError: If the space has problems (see :func:`validate_space`).
    """
    problems = validate_space(space)
    if problems:
        raise HPOError("invalid hpo.space: " + "; ".join(problems))
    hps = keras_tuner.HyperParameters()
    for p in space:
        sampling = "log" if p.log else "linear"
        if p.type == "float":
            assert p.min is not None and p.max is not None  # checked by validate_space
            hps.Float(p.name, float(p.min), float(p.max), step=p.step, sampling=sampling)
        elif p.type == "int":
            assert p.min is not None and p.max is not None
            hps.Int(p.name, int(p.min), int(p.max), step=int(p.step) if p.step else None,
                    sampling=sampling)
        else:
            hps.Choice(p.name, list(p.choices))
    return hps


def spec_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that address the spec: oracle book-keeping (``tuner/...``) removed."""
    return {k: v for k, v in values.items() if not k.startswith(TUNER_PREFIX)}


def apply_hp(spec: RunSpec, values: Mapping[str, Any]) -> RunSpec:
    """Return a copy of ``spec`` with a trial's values set at their key paths.

    Args:
        spec: The run's spec.
        values: ``{key path: value}`` from a trial (``tuner/...`` keys are ignored).

    Returns:
        A new, validated spec.

    Raises:
        SpecError: If a key path is unknown or a value is out of range (names the key).
    """
    return spec.with_overrides(spec_values(values))


def validate_space(space: list[HPOParam]) -> list[str]:
    """List what is wrong with a search space, in words a notebook widget can show.

    Checks: duplicate names, unknown or non-value key paths, min/max missing or
    swapped, log scale with min <= 0, bad steps, empty or mixed-type choices,
    and bounds or choices that the spec itself would reject.

    Args:
        space: The ``hpo.space`` rows.

    Returns:
        One message per problem (empty when the space is usable).
    """
    problems: list[str] = []
    seen: set[str] = set()
    base = RunSpec()
    for i, p in enumerate(space):
        where = f"hpo.space[{i}] ({p.name})"
        if p.name in seen:
            problems.append(f"{where}: duplicate name; each key path may appear once")
        seen.add(p.name)
        key_problem = _check_key(base, p.name)
        if key_problem:
            problems.append(f"{where}: {key_problem}")
            continue
        if p.type == "choice":
            problems.extend(f"{where}: {m}" for m in _check_choices(base, p))
        else:
            problems.extend(f"{where}: {m}" for m in _check_numeric(base, p))
    return problems


def _check_key(base: RunSpec, name: str) -> str | None:
    if name.startswith(TUNER_PREFIX) or not name:
        return f"{name!r} is not a spec key path; use e.g. train.learning_rate"
    if name.startswith("hpo.") or name.startswith("execution."):
        return f"{name!r} cannot be searched; choose a key outside hpo and execution"
    try:
        value = base.get(name)
    except SpecError as err:
        return str(err)
    if isinstance(value, (dict, list)) or dataclasses.is_dataclass(value):
        return f"{name!r} is a section or list, not a single value; name one of its keys"
    return None


def _check_numeric(base: RunSpec, p: HPOParam) -> list[str]:
    out: list[str] = []
    if p.min is None or p.max is None:
        return ["numeric parameters need min and max"]
    if not (math.isfinite(p.min) and math.isfinite(p.max)):
        return ["min and max must be finite numbers"]
    if p.min > p.max:
        out.append(f"min {p.min:g} > max {p.max:g}; swap them")
    if p.log and p.min <= 0:
        out.append(f"log scale needs min > 0, got {p.min:g}; raise min or set log: false")
    if p.step is not None:
        if p.log and p.step <= 1:
            out.append(f"with log: true, step is a factor and must be > 1, got {p.step:g}")
        elif p.step <= 0:
            out.append(f"step must be > 0, got {p.step:g}")
        elif p.type == "int" and p.step != int(p.step):
            out.append(f"an int parameter needs a whole step, got {p.step:g}")
    if p.type == "int" and (p.min != int(p.min) or p.max != int(p.max)):
        out.append(f"an int parameter needs whole min and max, got {p.min:g}..{p.max:g}")
    current = base.get(p.name)
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        out.append(f"the spec value is {type(current).__name__}, not a number; use type: choice")
    elif isinstance(current, int) and p.type == "float":
        out.append("the spec key is an integer; use type: int")
    if not out:
        for bound in (p.min, p.max):
            value = int(bound) if p.type == "int" else float(bound)
            out.extend(_spec_rejects(base, p.name, value))
    return out


def _check_choices(base: RunSpec, p: HPOParam) -> list[str]:
    if not p.choices:
        return ["choices is empty; list at least one value"]
    kinds = {type(c) for c in p.choices}
    if len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        return [f"choices mix types ({names}); keras-tuner needs one type"]
    if not kinds <= {int, float, str, bool}:
        return ["choices must be numbers, strings or booleans"]
    if len(set(p.choices)) != len(p.choices):
        return ["choices has duplicates; list each value once"]
    out: list[str] = []
    for choice in p.choices:
        out.extend(_spec_rejects(base, p.name, choice))
    return out


def _spec_rejects(base: RunSpec, name: str, value: Any) -> list[str]:
    try:
        base.with_overrides({name: value})
    except SpecError as err:
        return [f"value {value!r} is not allowed by the spec: {err}"]
    return []
