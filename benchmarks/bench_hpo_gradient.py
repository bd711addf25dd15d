"""Gradient-based search against Bayesian optimisation and random search: same budget, same run.

Rows:
    hpo gradient: best ``val_accuracy`` of the analytic objective
        (:mod:`mlwf_nb.hpo.objective`, optimum 1.0, the space of the ``hpo quality``
        row: learning rate and momentum floats, batch size a log int) after N trials
        in rounds of K=4, mean of 5 seeds; ``gradient`` against ``bayesian`` and
        against ``random``, each run the workflow's way (``propose`` -> K trials ->
        ``propose`` ...). The note has the per-seed values, central differences' figure and
        the first round's alone (before any gradient step).
    hpo gradient, training: the same comparison on a tiny real training: a
        64-32-10 network on scikit-learn's 8x8 digits (1,797 images shipped with
        scikit-learn; 1,200 train, 597 validation) trained for 2 epochs by
        :func:`mlwf_nb.ml.train.fit` with SGD, searching ``train.learning_rate``
        (1e-3..3, log) and ``train.momentum`` (0..0.99); 12 trials, K=4.
    hpo gradient estimators: SPSA against central differences where they differ most:
        an objective whose optimum is drawn per seed (uniform in [0.1, 0.9] of each
        range: the search's start, the centre, has no head start), 3 float
        parameters, ``1 - rms distance`` plus gaussian noise of 0.01 or 0.05, K = 4
        or 8 (2 or 4 pairs for 3 parameters), 24 trials, 10 seeds; the value is the
        true (noise-free) quality of the best trial found.
    hypergradient: ``train.lr_hypergradient`` inside one training: the same digits
        network trained 6 epochs by :func:`mlwf_nb.ml.train.fit` from a starting learning
        rate too small, fair or too large (SGD without momentum, Adam), with the
        hypergradient rate 0.02 against the fixed learning rate (the baseline), same seed,
        same run; the note has the learning rate it reached.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks._common import result, row
from benchmarks.bench_hpo import K, rounds_best

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["ROWS", "compare"]

STRATEGIES = ("gradient", "bayesian", "random")


def compare(trials: int, seeds: range, *, space: list[Any] | None = None, score: Any = None,
            variants: dict[str, dict[str, Any]] | None = None,
            strategies: tuple[str, ...] = STRATEGIES) -> dict[str, list[float]]:
    """Best objective per seed of each strategy, of each gradient variant (name -> options) and of
    the gradient search's first round alone (``start``: the centre's neighbourhood, before any step)."""
    import warnings

    warnings.filterwarnings("ignore", module="sklearn")
    extra = {"space": space} if space is not None else {}
    if score is not None:
        extra["score"] = score
    runs = {name: ("gradient", trials, opts) for name, opts in (variants or {}).items()}
    runs.update({s: (s, trials, {}) for s in strategies})
    runs["start"] = ("gradient", K, {})
    best: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory(prefix="bench-hpo-gradient-") as tmp:
        for seed in seeds:
            for name, (strategy, n, options) in runs.items():
                root = Path(tmp) / f"{name}-{seed}"
                best[name].append(rounds_best(strategy, n, seed, root, **extra, **options))
    return best


def _lines(name: str, what: str, best: dict[str, list[float]], note: str) -> list[dict[str, Any]]:
    mean = {k: statistics.mean(v) for k, v in best.items()}
    per_seed = "; ".join(f"{k} {[round(x, 3) for x in v]}" for k, v in best.items())
    out = []
    for other in ("bayesian", "random"):
        out.append(result(name, f"{what}: gradient vs {other}", mean[other], mean["gradient"], "",
                          "report", None, note=f"{note}; the first round alone (around the centre, "
                          f"before any step) {mean['start']:.3f}; per seed: {per_seed}"))
    return out


@row("hpo gradient")
def bench_analytic(quick: bool = False) -> list[dict[str, Any]]:
    """Gradient (SPSA) vs Bayesian vs random on the analytic objective."""
    trials, seeds = (12, range(2)) if quick else (20, range(5))
    best = compare(trials, seeds, variants=_CENTRAL)
    return _lines("hpo gradient", f"best val_accuracy of the analytic objective after {trials} trials, "
                  f"K={K}, mean of {len(seeds)} seeds", best,
                  f"gradient = SPSA (central differences {statistics.mean(best['central']):.3f}); optimum 1.0")


_CENTRAL = {"central": {"estimator": "central"}}


@cache
def _digits() -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16.0).astype("float32"), y[order].astype("int32")
    return x[:1200], y[:1200], x[1200:], y[1200:]


def _network() -> Any:
    """The tiny 64-32-10 network of the training rows (built after the seed is set)."""
    import keras

    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


def _train(values: dict[str, Any], seed: int) -> float:
    """Validation accuracy of the tiny network after 2 epochs of SGD with the trial's values."""
    from mlwf_nb.ml.train import fit, seed_everything

    xt, yt, xv, yv = _digits()
    seed_everything(seed)
    model = _network()
    out = fit(model, (xt, yt), (xv, yv), epochs=2, batch_size=64, optimizer="sgd", seed=seed,
              learning_rate=float(values["train.learning_rate"]), momentum=float(values["train.momentum"]))
    return float(out["history"]["val_accuracy"][-1])


@row("hpo gradient, training")
def bench_training(quick: bool = False) -> list[dict[str, Any]]:
    """Gradient vs Bayesian vs random on a tiny real training (digits, fit(), SGD)."""
    from mlwf_nb.spec import HPOParam

    space = [HPOParam(name="train.learning_rate", type="float", min=1e-3, max=3.0, log=True),
             HPOParam(name="train.momentum", type="float", min=0.0, max=0.99)]
    trials, seeds = (8, range(2)) if quick else (12, range(5))
    best = compare(trials, seeds, space=space, score=_train, variants=_CENTRAL)
    return _lines("hpo gradient, training", f"best val_accuracy of a 2-epoch digits network after {trials} "
                  f"trials, K={K}, mean of {len(seeds)} seeds", best,
                  f"each trial a real mlwf_nb.ml.train.fit (64-32-10 net, SGD, batch 64); gradient = SPSA "
                  f"(central differences {statistics.mean(best['central']):.3f})")


def _shifted_space() -> list[Any]:
    from mlwf_nb.spec import HPOParam

    return [HPOParam(name="train.learning_rate", type="float", min=1e-5, max=1e-1, log=True),
            HPOParam(name="train.momentum", type="float", min=0.0, max=0.99),
            HPOParam(name="train.weight_decay", type="float", min=1e-6, max=1e-1, log=True)]


def _shifted(noise: float, truth: dict[float, float]) -> Any:
    """Score: ``1 - rms distance`` to an optimum drawn from the seed, plus noise; ``truth`` maps back."""
    import numpy as np

    space = _shifted_space()

    def score(values: dict[str, Any], seed: int) -> float:
        best = np.random.default_rng(1000 + seed).uniform(0.1, 0.9, len(space))
        unit = [math.log(values[p.name] / p.min) / math.log(p.max / p.min) if p.log  # type: ignore[operator]
                else (values[p.name] - p.min) / (p.max - p.min) for p in space]  # type: ignore[operator]
        quality = 1.0 - math.sqrt(float(np.mean((np.asarray(unit) - best) ** 2)))
        key = json.dumps(values, sort_keys=True) + f"|{seed}"
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        value = quality + float(rng.normal(0.0, noise))
        truth[value] = quality
        return value

    return score


@row("hpo gradient estimators")
def bench_estimators(quick: bool = False) -> list[dict[str, Any]]:
    """SPSA vs central differences: noise 0.01 / 0.05, K = 4 / 8, optimum drawn per seed."""
    seeds = range(3) if quick else range(10)
    out = []
    for noise in (0.01, 0.05):
        for k in (4, 8):
            found: dict[str, list[float]] = {}
            with tempfile.TemporaryDirectory(prefix="bench-hpo-gradient-") as tmp:
                for estimator in ("central", "spsa"):
                    for seed in seeds:
                        truth: dict[float, float] = {}
                        best = rounds_best("gradient", 24, seed, Path(tmp) / f"{estimator}-{seed}",
                                           space=_shifted_space(), score=_shifted(noise, truth), parallel=k,
                                           estimator=estimator)
                        found.setdefault(estimator, []).append(truth[best])
            value, baseline = statistics.mean(found["spsa"]), statistics.mean(found["central"])
            out.append(result("hpo gradient estimators", f"true quality of the best of 24 trials, noise {noise}, "
                              f"K={k}, 3 parameters, mean of {len(seeds)} seeds: SPSA vs central differences",
                              baseline, value, "", "report", None,
                              note=f"per seed: spsa {[round(x, 3) for x in found['spsa']]}; central "
                                   f"{[round(x, 3) for x in found['central']]}"))
    return out


def _hypergradient_fit(optimizer: str, lr: float, rate: float, epochs: int) -> tuple[float, float]:
    """Final val_accuracy and learning rate of the digits network trained from ``lr``."""
    from mlwf_nb.ml.train import fit, seed_everything

    xt, yt, xv, yv = _digits()
    seed_everything(0)
    model = _network()
    out = fit(model, (xt, yt), (xv, yv), epochs=epochs, batch_size=32, optimizer=optimizer, seed=0,
              learning_rate=lr, momentum=0.0, lr_hypergradient=rate)
    history = out["history"]
    return float(history["val_accuracy"][-1]), float(history.get("learning_rate", [lr])[-1])


@row("hypergradient")
def bench_hypergradient(quick: bool = False) -> list[dict[str, Any]]:
    """train.lr_hypergradient vs a fixed learning rate, from starting rates too small, fair, too large."""
    epochs = 2 if quick else 6
    starts = [("sgd", 1e-3), ("sgd", 0.03), ("sgd", 1.0), ("adam", 1e-4), ("adam", 0.1)]
    out = []
    for optimizer, lr in starts[:2] if quick else starts:
        fixed, _ = _hypergradient_fit(optimizer, lr, 0.0, epochs)
        adapted, reached = _hypergradient_fit(optimizer, lr, 0.02, epochs)
        out.append(result("hypergradient", f"val_accuracy after {epochs} epochs, {optimizer} from learning rate "
                          f"{lr:g}: hypergradient (rate 0.02) vs fixed", fixed, adapted, "", "report", None,
                          note=f"the learning rate went {lr:g} -> {reached:.3g}; digits 64-32-10 network through "
                               "mlwf_nb.ml.train.fit, batch 32, same seed for both"))
    return out


ROWS = [bench_analytic, bench_training, bench_estimators, bench_hypergradient]
