"""A real hyper-parameter search inside a template pipeline (galaxy) on the local backend."""

from __future__ import annotations

import json

import pytest

from mlwf_nb.rundir.events import read_events
from mlwf_nb.runs import submit

pytestmark = pytest.mark.slow


def test_galaxy_search_with_two_real_trials_trains_with_the_best(tmp_path):
    run = submit("galaxy:tiny", run_dir=tmp_path / "run", wait=True, overrides=[
        f"dataset.path={tmp_path}/data", "dataset.synthetic=true", "dataset.scenes=120", "dataset.height=32",
        "dataset.width=32",
        "train.epochs=1", "execution.jobs=2", "hpo.strategy=random", "hpo.trials=2", "hpo.parallel=2",
        "execution.staging=sandbox",
        "hpo.space=[{name: train.learning_rate, type: float, min: 0.001, max: 0.01, log: true}]"])
    assert run.state == "Success", run.status()["mlwf"]
    results = sorted((run.dir / "work/hpo").glob("r0-t*.result.json"))
    assert len(results) == 2
    docs = [json.loads(r.read_text()) for r in results]
    for doc in docs:
        assert doc["status"] == "ok" and doc["cheap"] is False, doc["error"]
        assert 0 <= doc["objective"] <= 1 and doc["objective"] == doc["metrics"]["val_accuracy"]
    best = json.loads((run.dir / "outputs/hpo/best.json").read_text())
    assert best["objective"] == max(d["objective"] for d in docs)
    assert (run.dir / "outputs/hpo/leaderboard.json").exists() and (run.dir / "outputs/metrics.json").exists()
    events = list(read_events(run.events_path))
    assert len([e for e in events if e["type"] == "trial_finished" and e["status"] == "ok"]) == 2
    lr = best["values"]["train.learning_rate"]
    logs = [e.get("message", "") for e in events if e["type"] == "log"]
    assert any("best hyper-parameters" in m and repr(lr) in m for m in logs), logs
