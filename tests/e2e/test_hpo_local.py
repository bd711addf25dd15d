"""HPO as workflow rounds on the local backend: every strategy, resumption, real training."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mlwf_nb.backends import get_backend
from mlwf_nb.rundir.events import read_events
from mlwf_nb.runs import Run, submit
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import build_graph, write_run_dir
from tests.pipelines import search_only

pytestmark = pytest.mark.slow
SPACE = ("hpo.space=[{name: train.learning_rate, type: float, min: 0.0001, max: 0.1, log: true},"
         " {name: train.batch_size, type: choice, choices: [16, 32, 64, 128]}]")


def _spec(strategy, trials=4, parallel=2, *extra):
    return RunSpec.from_preset("tiny").with_overrides([
        f"hpo.strategy={strategy}", f"hpo.trials={trials}", f"hpo.parallel={parallel}",
        "hpo.cheap_objective=true", SPACE, "execution.jobs=2", "train.epochs=3", "execution.staging=sandbox",
        *extra])


def _run(spec, run_dir, wait=True):
    path = write_run_dir(spec, run_dir, graph=build_graph(spec, search_only.PIPELINE))
    get_backend("local").submit(path, jobs=2, wait=wait)
    return Run.attach(path)


@pytest.mark.parametrize("strategy", ["grid", "random", "bayesian", "hyperband", "evolutionary", "gradient"])
def test_each_strategy_runs_as_rounds_of_jobs(tmp_path, strategy):
    run = _run(_spec(strategy, 6 if strategy == "hyperband" else 4), tmp_path / strategy)
    assert run.state == "Success", run.status()["mlwf"]
    board = json.loads((run.dir / "outputs/hpo/leaderboard.json").read_text())
    rows = board["trials"] if isinstance(board, dict) else board
    ok = [t for t in rows if t["status"] == "ok"]
    assert ok, rows
    best = json.loads((run.dir / "outputs/hpo/best.json").read_text())
    assert best["objective"] == max(t["objective"] for t in ok)
    assert "train.learning_rate" in best["values"]
    events = list(read_events(run.events_path))
    proposed = [e for e in events if e["type"] == "trial_proposed"]
    finished = [e for e in events if e["type"] == "trial_finished"]
    assert len(proposed) >= len(ok) and len(finished) == len(rows)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


@pytest.mark.parametrize("strategy", ["random", "gradient"])
def test_a_run_killed_between_rounds_resumes_without_repeating_trials(tmp_path, strategy):
    run = _run(_spec(strategy, 6, 2), tmp_path / "killed", wait=False)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # round 0's two trial jobs have succeeded (jobstate.log)
        jobs = run.status()["mlwf"]["jobs"]
        done = {n for n, j in jobs.items() if n.startswith("trial_") and j["state"] == "succeeded"}
        if len(done) >= 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail("round 0 did not finish in time")
    pid = int((run.dir / "executor.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    run.resume(wait=True)
    assert run.state == "Success"
    jobs = run.status()["mlwf"]["jobs"]
    for name in done:
        assert jobs[name]["tries"] == 1, f"{name} ran again"
    events = list(read_events(run.events_path))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    relays = [e["relay"] for e in events if "relay" in e]
    assert len(relays) == len(set(relays))


def test_one_tiny_real_training_search(tmp_path):
    run = submit("tiny", run_dir=tmp_path / "real", wait=True, overrides=[
        "dataset.scenes=4", "dataset.height=64", "dataset.width=64", "patches.per_scene=16",
        "train.epochs=1", "evaluate.window_sizes=[16]", "execution.jobs=2", f"dataset.path={tmp_path}/data",
        "dataset.synthetic=true",
        "hpo.strategy=random", "hpo.trials=2", "hpo.parallel=2", "execution.staging=sandbox",
        "hpo.space=[{name: train.learning_rate, type: float, min: 0.001, max: 0.01, log: true}]"])
    assert run.state == "Success", run.status()["mlwf"]
    results = sorted((run.dir / "work/hpo").glob("r0-t*.result.json"))
    assert len(results) == 2
    for r in results:
        doc = json.loads(r.read_text())
        assert doc["status"] == "ok" and doc["cheap"] is False and 0 <= doc["objective"] <= 1
    assert (run.dir / "outputs/hpo/leaderboard.json").exists()
    train_log = "".join(p.read_text() for p in (run.dir / "jobs").glob("train_*/stderr.*"))
    events = [e for e in read_events(run.events_path) if e["type"] == "log"]
    assert any("best hyper-parameters" in e.get("message", "") for e in events), train_log[-500:]
