"""The keras-tuner oracle of gradient-based search (:mod:`mlwf_nb.hpo.gradient` says how it searches).

Driven from outside a tuner like the others (:mod:`mlwf_nb.hpo.oracles`): one
round of K trials is one iteration, and its whole state is ``get_state()`` (JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hp_module

from mlwf_nb.hpo.gradient import NO_NUMERIC, estimate_gradient, option_problems, perturbation_size, project, step_length
from mlwf_nb.rundir.events import emit

__all__ = ["GradientOracle"]

_ENDED = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def _describe(entry: dict[str, Any], pairs: int) -> str:
    """One line for the run's log: what an iteration measured and where the centre went."""
    centre = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["center"].items())
    if not entry["pairs"]:
        return (f"gradient search, step {entry['iteration'] + 1}: none of its {pairs} pairs completed, "
                f"the centre stays at {centre}")
    return (f"gradient search, step {entry['iteration'] + 1}: {entry['pairs']} of {pairs} pairs complete, "
            f"moved {entry['step']:.3g} of the range to {centre}")


class GradientOracle(keras_tuner.Oracle):
    """Finite-difference gradient ascent of the objective, one iteration per round.

    Args:
        round_size: Trials per round (K, the spec's ``hpo.parallel``).
        estimator: ``"spsa"`` or ``"central"`` (see the module docstring).
        step: First move's length in the unit cube (the longest move).
        perturbation: First probes' half-width in the unit cube.
        integers: ``"descend"`` (like floats, rounded) or ``"hold"`` (like choices).
        **kwargs: Passed to ``keras_tuner.Oracle`` (objective, max_trials, seed, ...).

    Raises:
        ValueError: Bad options, or a space with nothing to differentiate.
    """

    def __init__(self, round_size: int = 4, estimator: str = "spsa", step: float = 0.2,
                 perturbation: float = 0.1, integers: str = "descend", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        problems = option_problems(estimator, step, perturbation, integers, round_size)
        if problems:
            raise ValueError("; ".join(problems))
        self.round_size, self.estimator, self.integers = round_size, estimator, integers
        self.step, self.perturbation = step, perturbation
        if not self._numeric():
            raise ValueError(NO_NUMERIC.format(kinds="float or int" if integers == "descend" else "float"))
        self.iteration = 0
        self.center = [0.5] * len(self._numeric())
        self.probes: list[dict[str, Any]] = []  # this iteration's trials: trial_id, pair, sign
        self.pairs: list[dict[str, Any]] = []   # this iteration's pairs: direction, c, held values
        self.path: list[dict[str, Any]] = []    # one entry per finished iteration

    # -- the space ---------------------------------------------------------------------------
    def _numeric(self) -> list[Any]:
        kinds = (hp_module.Float, hp_module.Int) if self.integers == "descend" else (hp_module.Float,)
        return [hp for hp in self.hyperparameters.space if isinstance(hp, kinds)]

    def _held(self) -> list[Any]:
        numeric = {hp.name for hp in self._numeric()}
        return [hp for hp in self.hyperparameters.space
                if hp.name not in numeric and not isinstance(hp, hp_module.Fixed)]

    def _values(self, unit: Sequence[float], held: dict[str, Any]) -> dict[str, Any]:
        """Parameter values of a point of the unit cube (plus the held parameters' values)."""
        values = {}
        for hp, u in zip(self._numeric(), unit, strict=True):
            # keras-tuner maps an int's [0, 1) onto its values; 1.0 would be max + 1
            values[hp.name] = hp.prob_to_value(min(u, 1.0 - 1e-9) if isinstance(hp, hp_module.Int) else u)
        return {**values, **held}

    @property
    def _size(self) -> int:
        """Trials per iteration: K, but at least one pair."""
        return max(2, self.round_size)

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([int(self.seed), int(self._seed_state)])
        self._seed_state += 1
        return rng

    def _base(self) -> list[float]:
        """The centre, moved inward so that every probe of this iteration is inside the bounds."""
        c = perturbation_size(self.iteration, self.perturbation)
        return project(self.center, c, 1.0 - c)

    # -- proposing ---------------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The next probe of the current iteration (after a step when the previous one ended)."""
        if len(self.probes) >= self._size:
            if any(self.trials[p["trial_id"]].status not in _ENDED for p in self.probes):
                return {"status": "IDLE"}
            self._take_step()
        j = len(self.probes)
        pair, sign = j // 2, (1 if j % 2 == 0 else -1)
        if self._size % 2 == 1 and j == self._size - 1:
            sign = 0  # the odd trial out evaluates the centre itself
        if sign >= 0 and pair >= len(self.pairs):
            self.pairs.append(self._new_pair(pair))
        info = self.pairs[min(pair, len(self.pairs) - 1)]
        unit = project([x + sign * info["c"] * d for x, d in zip(self._base(), info["direction"], strict=True)])
        self.probes.append({"trial_id": trial_id, "pair": pair, "sign": sign})
        return {"status": "RUNNING", "values": self._values(unit, info["held"])}

    def _new_pair(self, pair: int) -> dict[str, Any]:
        """Direction, half-width and held values of this iteration's next pair."""
        rng = self._rng()
        dims = len(self.center)
        earlier = [p["direction"] for p in self.pairs]

        def uses(d: list[float]) -> int:  # earlier pairs along d (either sign)
            return sum(e == d or e == [-v for v in d] for e in earlier)

        if self.estimator == "spsa":
            direction = [float(s) for s in rng.choice([-1.0, 1.0], size=dims)]
            for _ in range(self._max_collisions):  # prefer a direction not probed yet
                if not uses(direction):
                    break
                direction = [float(s) for s in rng.choice([-1.0, 1.0], size=dims)]
        else:
            i = (self.iteration * (self._size // 2) + pair) % dims
            direction = [1.0 if j == i else 0.0 for j in range(dims)]
        c = perturbation_size(self.iteration, self.perturbation) * 0.5 ** uses(direction)
        return {"direction": direction, "c": c, "held": self._held_values(rng)}

    def _held_values(self, rng: np.random.Generator) -> dict[str, Any]:
        """The best completed trial's values, or random ones while nothing has completed."""
        done = [t for t in self.trials.values() if self._score(t.trial_id) is not None]
        if done:  # (keras-tuner's get_best_trials pads with running trials)
            values = max(done, key=lambda t: self._score(t.trial_id) or 0.0).hyperparameters.values
            return {hp.name: values[hp.name] for hp in self._held() if hp.name in values}
        return {hp.name: hp.prob_to_value(float(rng.uniform(0.0, 1.0 - 1e-9))) for hp in self._held()}

    # -- stepping ----------------------------------------------------------------------------
    def _score(self, trial_id: str) -> float | None:
        """A completed trial's objective, to be maximised (None: failed or not finite)."""
        trial = self.trials[trial_id]
        if trial.status != "COMPLETED" or trial.score is None or not math.isfinite(trial.score):
            return None
        return float(trial.score) if self.objective.direction == "max" else -float(trial.score)

    def _take_step(self) -> None:
        """Estimate the gradient from the ended probes, move the centre, start the next iteration."""
        scores = {(p["pair"], p["sign"]): self._score(p["trial_id"]) for p in self.probes}
        complete = []
        for pair, info in enumerate(self.pairs):
            f_plus, f_minus = scores.get((pair, 1)), scores.get((pair, -1))
            if f_plus is not None and f_minus is not None:
                complete.append((f_plus, f_minus, info["direction"], info["c"]))
        gradient = estimate_gradient(complete, len(self.center))
        norm = math.sqrt(sum(g * g for g in gradient)) if gradient else 0.0
        length = step_length(self.iteration, self.step) if norm > 0 else 0.0
        if gradient is not None and norm > 0:
            # the move starts from the centre itself: probing nearer the middle is no reason to leave a bound
            self.center = project([x + length * g / norm for x, g in zip(self.center, gradient, strict=True)])
        names = [hp.name for hp in self._numeric()]
        entry = {"iteration": self.iteration, "pairs": len(complete), "step": length,
                 "gradient": dict(zip(names, gradient, strict=True)) if gradient else None,
                 "center": self._values(self.center, {})}
        self.path.append(entry)
        emit("log", level="info" if complete else "warning", message=_describe(entry, len(self.pairs)))
        self.iteration += 1
        self.probes, self.pairs = [], []

    # -- state -------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Base oracle state plus the settings, the centre, this iteration's probes and the path."""
        state: dict[str, Any] = super().get_state()
        state.update({
            "round_size": self.round_size, "estimator": self.estimator, "step": self.step,
            "perturbation": self.perturbation, "integers": self.integers, "iteration": self.iteration,
            "center": list(self.center), "probes": [dict(p) for p in self.probes],
            "pairs": [dict(p) for p in self.pairs], "path": [dict(p) for p in self.path],
        })
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` saved."""
        super().set_state(state)
        for key in ("round_size", "estimator", "step", "perturbation", "integers", "iteration"):
            setattr(self, key, state[key])
        self.center = [float(x) for x in state["center"]]
        self.probes = [dict(p) for p in state["probes"]]
        self.pairs = [dict(p) for p in state["pairs"]]
        self.path = [dict(p) for p in state["path"]]
