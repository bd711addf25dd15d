"""HPO test helpers: a small search space and an in-process driver of the rounds."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlwf_nb._io import read_json, write_json
from mlwf_nb.hpo.objective import analytic_objective
from mlwf_nb.hpo.rounds import propose, round_plans, select
from mlwf_nb.spec import HPOParam, HPOSpec

SPACE = [
    HPOParam(name="train.learning_rate", type="float", min=1e-4, max=1e-1, log=True),
    HPOParam(name="train.batch_size", type="int", min=8, max=256, log=True),
    HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam", "adamw"]),
]


@pytest.fixture
def space() -> list[HPOParam]:
    """Learning rate (log float), batch size (log int), optimizer (choice)."""
    return [HPOParam(**vars(p)) for p in SPACE]


Scorer = Callable[[dict[str, Any]], dict[str, Any]]


def score_cheap(space: list[HPOParam], seed: int = 0) -> Scorer:
    """A scorer: the analytic objective as a completed result."""

    def scorer(doc: dict[str, Any]) -> dict[str, Any]:
        m = analytic_objective(doc["values"], seed, space=space, epochs=doc.get("epochs"))
        return {"status": "ok", "objective": m["val_accuracy"], "metrics": m}

    return scorer


def drive(hpo: HPOSpec, root: Path, scorer: Scorer, *, max_epochs: int | None = None,
          rounds: int | None = None, **options: Any) -> dict[str, Any]:
    """Run propose -> trials -> propose ... -> select in-process; return what happened."""
    plans = round_plans(hpo, max_epochs=max_epochs)
    previous: list[Path] = []
    every: list[Path] = []
    proposals: list[dict[str, Any]] = []
    for plan in plans[: rounds if rounds is not None else len(plans)]:
        r = plan.index
        hps = [root / f"round-{r}" / f"trial-{i}" / "hp.json" for i in range(1, plan.size + 1)]
        propose(root / "state", r, previous, hpo, hps, max_epochs=max_epochs, **options)
        previous = []
        for path in hps:
            doc = read_json(path)
            proposals.append(doc)
            res = path.parent / "result.json"
            base = {k: doc.get(k) for k in ("round", "trial", "trial_id", "values", "epochs")}
            if doc["skip"]:
                write_json(res, {**base, "status": "skipped"})
            else:
                write_json(res, {**base, **scorer(doc), "checkpoint": str(path.parent / "ckpt.json")})
            previous.append(res)
            every.append(res)
    best = select(every, hpo, root / "best.json", root / "leaderboard.json")
    return {"best": best, "proposals": proposals, "results": every,
            "leaderboard": read_json(root / "leaderboard.json")}


@pytest.fixture(name="drive")
def _drive_fixture() -> Callable[..., dict[str, Any]]:
    """The in-process round driver (:func:`drive`)."""
    return drive


@pytest.fixture(name="cheap")
def _cheap_fixture() -> Callable[..., Scorer]:
    """Factory of analytic-objective scorers (:func:`score_cheap`)."""
    return score_cheap
