"""The analytic objective: a known optimum, seeded noise, a learning curve, epoch events."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlwf_nb.hpo.objective import analytic_objective, optimum
from mlwf_nb.rundir.events import ENV_EVENTS, read_events
from mlwf_nb.spec import HPOParam

SPACE = [HPOParam(name="train.learning_rate", type="float", min=1e-5, max=1e-1, log=True),
         HPOParam(name="model.dropout", type="float", min=0.0, max=0.5),
         HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam", "adamw"]),
         HPOParam(name="model.name", type="choice", choices=["a", "b", "c"])]


def test_optimum_is_documented_and_scores_one() -> None:
    best = optimum(SPACE)
    assert best == {"train.learning_rate": 3e-3, "model.dropout": 0.25, "train.optimizer": "adam",
                    "model.name": "b"}
    assert analytic_objective(best, 0, noise=0.0, space=SPACE)["val_accuracy"] == pytest.approx(1.0)


def test_score_falls_with_distance_and_noise_is_seeded() -> None:
    best = optimum(SPACE)
    near = {**best, "train.learning_rate": 1e-3}
    far = {**best, "train.learning_rate": 1e-5}
    wrong = {**best, "train.optimizer": "sgd"}
    scores = [analytic_objective(v, 0, noise=0.0, space=SPACE)["val_accuracy"]
              for v in (best, near, far, wrong)]
    assert scores[0] > scores[1] > scores[2] and scores[3] == pytest.approx(0.5)
    a = analytic_objective(near, 7, space=SPACE)["val_accuracy"]
    assert a == analytic_objective(near, 7, space=SPACE)["val_accuracy"]
    assert a != analytic_objective(near, 8, space=SPACE)["val_accuracy"]
    assert abs(a - scores[1]) < 0.05


def test_known_keys_work_without_a_space() -> None:
    top = analytic_objective({"train.learning_rate": 3e-3, "train.batch_size": 64}, 0, noise=0.0)
    off = analytic_objective({"train.learning_rate": 1e-1, "train.batch_size": 8}, 0, noise=0.0)
    assert top["val_accuracy"] == pytest.approx(1.0) and off["val_accuracy"] < 0.8


def test_epochs_follow_a_learning_curve_and_emit_events(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EVENTS, str(tmp_path / "events.jsonl"))
    values = optimum(SPACE)
    final = analytic_objective(values, 0, noise=0.0, space=SPACE, epochs=4, initial_epoch=1)
    events = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "epoch"]
    assert [e["epoch"] for e in events] == [2, 3, 4]
    curve = [e["metrics"]["val_accuracy"] for e in events]
    assert curve == sorted(curve) and final["val_accuracy"] == pytest.approx(1 - 0.5**4)
