"""HPO benchmarks: search quality of Bayesian optimisation unrolled into workflow rounds.

Rows:
    hpo quality: best ``val_accuracy`` of the analytic objective
        (:mod:`mlwf_nb.hpo.objective`, optimum 1.0) after N trials, Bayesian
        optimisation in rounds of K=4 parallel trials (``propose`` -> 4 trials ->
        ``propose`` ..., the workflow's way) against keras-tuner's own sequential
        Bayesian search (a ``Tuner`` whose oracle sees every result before the next
        proposal), same space, seeds and budget; mean over seeds. A random-search
        mean is in the note for scale.
    hpo propose time: seconds one Bayesian ``propose`` round (K=4, Gaussian-process
        phase) takes, against a random-search round.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import result, row

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["ROWS", "rounds_best", "sequential_best"]

K = 4


def _space() -> list[Any]:
    from mlwf_nb.spec import HPOParam

    return [HPOParam(name="train.learning_rate", type="float", min=1e-5, max=1e-1, log=True),
            HPOParam(name="train.batch_size", type="int", min=8, max=512, log=True),
            HPOParam(name="train.momentum", type="float", min=0.0, max=0.99)]


def _score(values: dict[str, Any], seed: int) -> float:
    from mlwf_nb.hpo.objective import analytic_objective

    return analytic_objective(values, seed, space=_space())["val_accuracy"]


def rounds_best(strategy: str, trials: int, seed: int, root: Path,
                timings: list[float] | None = None, *, space: list[Any] | None = None,
                score: Callable[[dict[str, Any], int], float] = _score, parallel: int = K,
                **options: Any) -> float:
    """Best objective of a search run the workflow's way: propose -> K trials -> propose ...

    ``space`` (default: this module's), ``score(values, seed)`` (default: the analytic
    objective), ``parallel`` (K) and ``options`` (the strategy's, passed to ``propose``) let
    other rows reuse it.
    """
    from mlwf_nb._io import read_json, write_json
    from mlwf_nb.hpo.rounds import propose, round_plans
    from mlwf_nb.spec import HPOSpec

    hpo = HPOSpec(strategy=strategy, trials=trials, parallel=parallel, space=space or _space(), seed=seed)
    previous: list[Path] = []
    best = float("-inf")
    for plan in round_plans(hpo):
        hps = [root / f"r{plan.index}" / f"t{i}" / "hp.json" for i in range(1, plan.size + 1)]
        t0 = time.perf_counter()
        propose(root / "state", plan.index, previous, hpo, hps, **options)
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        previous = []
        for hp in hps:
            doc = read_json(hp)
            if doc["skip"]:
                continue
            value = score(doc["values"], seed)
            best = max(best, value)
            previous.append(write_json(hp.parent / "result.json", {
                "status": "ok", "objective": value, "metrics": {}, "trial_id": doc["trial_id"]}))
    return best


def sequential_best(trials: int, seed: int, root: Path) -> float:
    """Best objective of keras-tuner's own sequential Bayesian search, driven by its Tuner."""
    import keras_tuner

    from mlwf_nb.hpo.oracles import kt_seed
    from mlwf_nb.hpo.space import build_hyperparameters

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            return {"val_accuracy": _score(trial.hyperparameters.values, seed)}

    oracle = keras_tuner.oracles.BayesianOptimizationOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=trials,
        seed=kt_seed(seed), hyperparameters=build_hyperparameters(_space()))
    tuner = Tuner(oracle=oracle, directory=str(root), project_name="kt", overwrite=True)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # the same BLAS setting as propose
        tuner.search(verbose=0)
    return max(t.score for t in oracle.trials.values() if t.status == "COMPLETED")


@row("hpo quality")
def bench_quality(quick: bool = False) -> dict[str, Any]:
    """Rounds-based Bayesian (K=4) vs keras-tuner's sequential Bayesian, same budget and seeds."""
    import warnings

    warnings.filterwarnings("ignore", module="sklearn")
    trials, seeds = (12, range(3)) if quick else (20, range(5))
    rounds, seq, rnd = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-hpo-") as tmp:
        for seed in seeds:
            rounds.append(rounds_best("bayesian", trials, seed, Path(tmp) / f"b{seed}"))
            seq.append(sequential_best(trials, seed, Path(tmp) / f"s{seed}"))
            rnd.append(rounds_best("random", trials, seed, Path(tmp) / f"r{seed}"))
    value, baseline = statistics.mean(rounds), statistics.mean(seq)
    return result("hpo quality", f"best val_accuracy after {trials} trials (mean of {len(seq)} seeds)",
                  baseline, value, "", ">= 0.98 x sequential", value >= 0.98 * baseline,
                  note=f"rounds of K={K} vs keras-tuner sequential Bayesian; random search "
                       f"{statistics.mean(rnd):.3f}; per seed rounds {[round(v, 3) for v in rounds]}, "
                       f"sequential {[round(v, 3) for v in seq]}")


@row("hpo propose time")
def bench_propose_time(quick: bool = False) -> dict[str, Any]:
    """Seconds per Bayesian propose round in its Gaussian-process phase vs a random round."""
    trials = 16
    bayes: list[float] = []
    rand: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-hpo-") as tmp:
        rounds_best("bayesian", trials, 0, Path(tmp) / "b", bayes)
        rounds_best("random", trials, 0, Path(tmp) / "r", rand)
    value, baseline = bayes[-1], statistics.median(rand)
    return result("hpo propose time", f"seconds per propose round (K={K}, round {len(bayes)})",
                  baseline, value, "s", "< 30 s (a trial job trains for minutes)", value < 30.0,
                  note="Bayesian last round (4 Gaussian-process proposals, 50 L-BFGS restarts each, "
                       "one BLAS thread) vs a random-search round")


ROWS = [bench_quality, bench_propose_time]
