"""keras-tuner oracles, driven from outside a tuner: one trial per workflow job.

This is the only module that touches keras-tuner's private names
(``_set_project_dir``, ``_retry_queue``, Hyperband's ``_get_size`` ...). They can
change between keras-tuner versions, which is why setup.cfg pins
``keras-tuner[bayesian]>=1.4.7,<1.5``.

An oracle's whole state is one JSON document (:func:`oracle_to_json` /
:func:`oracle_from_json`): keras-tuner's own ``get_state()`` plus each trial's
``get_state()``, which keras-tuner otherwise keeps in separate ``trial.json``
files. The files keras-tuner writes while a trial is created or ended go to a
scratch directory (:func:`scratch_project`) and are thrown away.

Two oracles are adapted for rounds: grid search hands out K untried points at
once (keras-tuner's ``GridSearchOracle`` expands only from finished trials, and
its enumeration order is not part of its saved state), and Hyperband follows a
rung plan (:func:`hyperband_plan`) set per round instead of starting new brackets
while the previous rung is still running.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from typing import Any

import keras_tuner
from keras_tuner.engine.trial import Trial

from mlwf_nb.errors import HPOError

__all__ = [
    "kt_seed", "make_oracle", "scratch_project", "oracle_to_json", "oracle_from_json",
    "finish_trial", "hyperband_plan", "grid_size", "RoundGridOracle", "RoundHyperbandOracle",
]



def kt_seed(seed: int) -> int:
    """keras-tuner seed for a spec seed (keras-tuner treats 0 as "choose one at random")."""
    return int(seed) + 1


class RoundGridOracle(keras_tuner.oracles.GridSearchOracle):
    """Grid search that can hand out a whole batch of untried points at once.

    keras-tuner's grid oracle expands only from finished trials, so a batch of K
    gets one or two points and then waits (IDLE). The space here is fixed, so
    this one walks keras-tuner's own enumeration order (defaults first, the last
    parameter fastest, :meth:`_get_next_combination`) and returns the first
    point not tried yet; "tried" is the base oracle's JSON state.
    """

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The next untried grid point, or STOPPED when the grid is exhausted."""
        values: dict[str, Any] | None = {hp.name: hp.default for hp in self.hyperparameters.space}
        while values is not None:
            if not self._duplicate(values):
                return {"status": "RUNNING", "values": values}
            values = self._get_next_combination(values)
        return {"status": "STOPPED", "values": None}


class RoundHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """Hyperband whose brackets and rungs are workflow rounds.

    Before each round the driver sets :attr:`rung` to that round's entry of
    :func:`hyperband_plan`. Rung 0 samples random values; a later rung promotes
    the best completed trials of the rung before it (keras-tuner's own rule,
    values gain ``tuner/trial_id``). When a rung cannot be filled (trials of the
    previous rung failed) the trial is IDLE, never a trial of another bracket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._brackets: list[dict[str, Any]] = []
        self.rung: dict[str, Any] | None = None

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Fill one trial of the planned rung (or fall back to keras-tuner's own order)."""
        plan = self.rung
        if plan is None:
            return super().populate_space(trial_id)
        if plan.get("size", 0) <= 0:
            return {"status": "IDLE"}
        bracket = self._planned_bracket(plan)
        rung_trials = bracket["rounds"][plan["rung"]]
        if len(rung_trials) >= plan["size"]:
            return {"status": "IDLE"}
        if plan["rung"] == 0:
            self._current_bracket = plan["bracket"]
            return self._random_trial(trial_id, bracket)
        promoted = {info["past_id"] for info in rung_trials}
        candidates = [self.trials[info["id"]] for info in bracket["rounds"][plan["rung"] - 1]
                      if info["id"] not in promoted and self.trials[info["id"]].status == "COMPLETED"]
        if not candidates:
            return {"status": "IDLE"}
        best = sorted(candidates, key=lambda t: t.score, reverse=self.objective.direction == "max")[0]
        values = dict(best.hyperparameters.values)
        values.update({"tuner/trial_id": best.trial_id, "tuner/epochs": plan["epochs"],
                       "tuner/initial_epoch": plan["initial_epoch"],
                       "tuner/bracket": plan["bracket"], "tuner/round": plan["rung"]})
        rung_trials.append({"past_id": best.trial_id, "id": trial_id})
        return {"status": "RUNNING", "values": values}

    def _planned_bracket(self, plan: dict[str, Any]) -> dict[str, Any]:
        key = f"{plan['iteration']}-{plan['bracket']}"
        for bracket in self._brackets:
            if bracket.get("key") == key:
                return bracket
        bracket = {"key": key, "bracket_num": plan["bracket"],
                   "rounds": [[] for _ in range(plan["bracket"] + 1)]}
        self._brackets.append(bracket)
        return bracket

    def get_state(self) -> dict[str, Any]:
        """Base state plus the current rung plan."""
        state = super().get_state()
        state["rung"] = self.rung
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the base state and the rung plan."""
        super().set_state(state)
        self.rung = state.get("rung")


def make_oracle(strategy: str, hps: keras_tuner.HyperParameters, objective: str, direction: str,
                max_trials: int | None, seed: int, **kw: Any) -> keras_tuner.Oracle:
    """The oracle of a registered strategy over a fixed search space (see :mod:`mlwf_nb.hpo.strategies`).

    Args:
        strategy: A name of :data:`~mlwf_nb.hpo.strategies.STRATEGIES`.
        hps: The search space (:func:`mlwf_nb.hpo.space.build_hyperparameters`).
        objective: Metric name, e.g. ``val_accuracy``.
        direction: ``"max"`` or ``"min"``.
        max_trials: Trial budget (ignored by Hyperband, which has its own).
        seed: The spec's seed (mapped through :func:`kt_seed`).
        **kw: ``max_epochs`` (Hyperband), then the strategy's options.

    Returns:
        A quiet oracle (no console table) with keras-tuner's failure limit off.

    Raises:
        HPOError: For an unknown strategy or options it does not take.
    """
    from mlwf_nb.hpo.strategies import get_strategy
    from mlwf_nb.spec import HPOSpec

    max_epochs = kw.pop("max_epochs", None)
    hpo = HPOSpec(strategy=strategy, trials=max_trials or 1, objective=objective,
                  direction="min" if direction == "min" else "max", seed=seed)
    return get_strategy(hpo, max_epochs=max_epochs, **kw).make_oracle(hps)


@contextlib.contextmanager
def scratch_project(oracle: keras_tuner.Oracle) -> Iterator[None]:
    """Point the oracle's own file writes (``oracle.json``, ``trial_*/``) at a throwaway folder."""
    with tempfile.TemporaryDirectory(prefix="mlwf-kt-") as tmp:
        oracle._set_project_dir(tmp, "oracle")
        try:
            yield
        finally:
            oracle._set_project_dir(None, "oracle")


def oracle_to_json(oracle: keras_tuner.Oracle) -> dict[str, Any]:
    """The oracle's whole state (its own and its trials') as plain JSON data."""
    state = oracle.get_state()
    state["tried_so_far"] = sorted(state["tried_so_far"])
    state["run_times"] = dict(state["run_times"])
    state["id_to_hash"] = dict(state["id_to_hash"])
    return {"oracle": state,
            "trials": {tid: trial.get_state() for tid, trial in oracle.trials.items()}}


def oracle_from_json(oracle: keras_tuner.Oracle, data: dict[str, Any]) -> keras_tuner.Oracle:
    """Load :func:`oracle_to_json` data into a freshly made oracle of the same strategy.

    Trials that were running when the state was saved stay running (they are the
    previous round's, whose results the driver feeds in next); nothing is pushed
    onto keras-tuner's retry queue: the workflow decides about retries.
    """
    oracle.trials = {tid: Trial.from_state(s) for tid, s in data["trials"].items()}
    oracle.set_state(data["oracle"])
    oracle._retry_queue = []
    return oracle


def finish_trial(oracle: keras_tuner.Oracle, trial_id: str, status: str,
                 metrics: dict[str, float] | None = None, message: str | None = None) -> str:
    """End a running trial as ``COMPLETED`` (with metrics) or ``FAILED``.

    Returns:
        The trial's final status: a "completed" trial whose objective is missing,
        NaN or infinite ends ``FAILED`` (it carries no information for the model).
    """
    trial = oracle.get_trial(trial_id)
    if status == "COMPLETED":
        clean = {k: float(v) for k, v in (metrics or {}).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if oracle.objective.name in clean:
            oracle.update_trial(trial_id, clean)
        else:
            status = "FAILED"
            message = message or f"objective {oracle.objective.name!r} missing or not finite"
    trial.status = status
    trial.message = message
    oracle.end_trial(trial)
    final = oracle.get_trial(trial_id).status
    return "FAILED" if final == "INVALID" else str(final)


def hyperband_plan(max_epochs: int, factor: int = 3) -> list[list[dict[str, int]]]:
    """Hyperband's brackets as lists of rungs, in keras-tuner's order (most exploratory first).

    Args:
        max_epochs: The most epochs one model trains (the spec's ``train.epochs``).
        factor: Reduction factor between rungs (>= 2).

    Returns:
        ``[[{"bracket", "rung", "size", "epochs", "initial_epoch"}, ...], ...]``.
    """
    if factor < 2 or max_epochs < 1:
        raise HPOError(f"hyperband needs factor >= 2 and max_epochs >= 1, got factor={factor}, "
                       f"max_epochs={max_epochs}; raise train.epochs or the factor")
    probe = keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=max_epochs,
                                                factor=factor, seed=1)
    brackets = []
    for b in reversed(range(probe._get_num_brackets())):
        rungs = []
        for r in range(probe._get_num_rounds(b)):
            rungs.append({"bracket": b, "rung": r, "size": int(probe._get_size(b, r)),
                          "epochs": int(probe._get_epochs(b, r)),
                          "initial_epoch": int(probe._get_epochs(b, r - 1)) if r else 0})
        brackets.append(rungs)
    return brackets


def grid_size(hps: keras_tuner.HyperParameters) -> int:
    """How many combinations grid search enumerates (a float without step counts 10)."""
    total = 1
    for hp in hps.space:
        total *= len(list(hp.values))
    return total
