"""A cheap analytic objective: trial jobs that take milliseconds instead of training.

It stands in for training when ``hpo.cheap_objective`` is set (tests, demos of
the HPO rounds and the monitor). The optimum is known:

* ``train.learning_rate`` = 3e-3, ``train.batch_size`` = 64, ``train.momentum`` = 0.9;
* any other numeric key: the midpoint of its search range (in log space when
  the parameter is ``log``);
* choices: ``train.optimizer`` = ``adam``, ``model.name`` = ``small_cnn``,
  ``augment.flip`` = ``horizontal_and_vertical`` when listed, otherwise the
  middle entry of the list (``choices[len // 2]``).

Each value is mapped to [0, 1] over its search range (log or linear; the three
known numeric keys have default ranges 1e-5..1e-1 log, 8..512 log and 0..0.99
when no space is given); a choice is 0 at the preferred value and 1 elsewhere.
``quality = 1 - sqrt(mean(d_i^2))`` where ``d_i`` is the distance to the optimum
per key, so the optimum scores 1.0. With an epoch budget the score follows a
learning curve, ``quality * (1 - 0.5 ** epoch)``. Seeded gaussian noise
(``noise`` standard deviation, drawn from the seed and the values) is added.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import HPOParam

__all__ = ["analytic_objective", "optimum", "KNOWN_OPTIMA", "PREFERRED_CHOICES"]

KNOWN_OPTIMA: dict[str, float] = {"train.learning_rate": 3e-3, "train.batch_size": 64,
                                  "train.momentum": 0.9}
PREFERRED_CHOICES: dict[str, Any] = {"train.optimizer": "adam", "model.name": "small_cnn",
                                     "augment.flip": "horizontal_and_vertical"}
_DEFAULT_RANGES: dict[str, tuple[float, float, bool]] = {
    "train.learning_rate": (1e-5, 1e-1, True), "train.batch_size": (8.0, 512.0, True),
    "train.momentum": (0.0, 0.99, False)}


def _unit(value: float, lo: float, hi: float, log: bool) -> float:
    if hi <= lo:
        return 0.5
    if log:
        return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (value - lo) / (hi - lo)


def _preferred(p: HPOParam) -> Any:
    pref = PREFERRED_CHOICES.get(p.name)
    return pref if pref in p.choices else p.choices[len(p.choices) // 2]


def optimum(space: list[HPOParam]) -> dict[str, Any]:
    """The values at which :func:`analytic_objective` peaks, for a search space."""
    out: dict[str, Any] = {}
    for p in space:
        if p.type == "choice":
            out[p.name] = _preferred(p)
            continue
        assert p.min is not None and p.max is not None
        if p.name in KNOWN_OPTIMA:
            value = min(max(KNOWN_OPTIMA[p.name], p.min), p.max)
        else:
            value = math.sqrt(p.min * p.max) if p.log else (p.min + p.max) / 2
        out[p.name] = round(value) if p.type == "int" else value
    return out


def _distance(name: str, value: Any, params: dict[str, HPOParam]) -> float | None:
    p = params.get(name)
    if p is not None and p.type == "choice":
        return 0.0 if value == _preferred(p) else 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if p is not None and p.min is not None and p.max is not None:
        lo, hi, log = float(p.min), float(p.max), p.log
        best = optimum([p])[name]
    elif name in _DEFAULT_RANGES:
        lo, hi, log = _DEFAULT_RANGES[name]
        best = KNOWN_OPTIMA[name]
    else:
        return None
    if log and (value <= 0 or lo <= 0):
        return 1.0
    return min(1.0, abs(_unit(float(value), lo, hi, log) - _unit(float(best), lo, hi, log)))


def _quality(values: Mapping[str, Any], space: list[HPOParam] | None) -> float:
    params = {p.name: p for p in space or []}
    ds = [d for k, v in values.items() if not k.startswith("tuner/")
          if (d := _distance(k, v, params)) is not None]
    return 1.0 - math.sqrt(sum(d * d for d in ds) / len(ds)) if ds else 1.0


def analytic_objective(values: Mapping[str, Any], seed: int, noise: float = 0.01, *,
                       space: list[HPOParam] | None = None, epochs: int | None = None,
                       initial_epoch: int = 0, delay: float = 0.0) -> dict[str, float]:
    """Score a trial's values without training (see the module docstring for the optimum).

    Emits one ``epoch`` event per epoch (``initial_epoch + 1 .. epochs``; one event
    when ``epochs`` is None), so the monitor has something to show.

    Args:
        values: ``{key path: value}`` of the trial.
        seed: Noise seed (the noise also depends on the values).
        noise: Standard deviation of the gaussian noise.
        space: The search space (ranges for the distance; optional for the known keys).
        epochs: Epoch budget (None: no learning curve, the final quality).
        initial_epoch: Epochs already done (a resumed Hyperband trial).
        delay: Seconds to sleep per epoch (demos only).

    Returns:
        ``{"val_accuracy", "val_loss", "accuracy", "loss"}`` after the last epoch.
    """
    quality = _quality(values, space)
    key = json.dumps({k: values[k] for k in sorted(values)}, default=str) + f"|{seed}"
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    shift = float(rng.normal(0.0, noise)) if noise > 0 else 0.0
    metrics: dict[str, float] = {}
    steps = [None] if epochs is None else list(range(initial_epoch + 1, epochs + 1)) or [epochs]
    for epoch in steps:
        curve = 1.0 if epoch is None else 1.0 - 0.5 ** epoch
        val = quality * curve + shift
        metrics = {"val_accuracy": val, "val_loss": 1.0 - val,
                   "accuracy": min(1.0, val + 0.02), "loss": max(0.0, 0.98 - val)}
        emit("epoch", epoch=epoch if epoch is not None else 1, metrics=metrics)
        if delay > 0:
            time.sleep(delay)
    return metrics
