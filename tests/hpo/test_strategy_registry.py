"""HPO strategies through the one registry: a strategy from outside mlwf_nb, installed, runs end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.rounds import plan_rounds
from mlwf_nb.hpo.strategies import STRATEGIES, HyperbandStrategy, get_strategy, strategy_names
from mlwf_nb.runs import Run, check_spec
from mlwf_nb.spec import HPOParam, HPOSpec, RunSpec

REPO = Path(__file__).resolve().parents[2]
SPACE = ("hpo.space=[{name: train.learning_rate, type: float, min: 0.0001, max: 0.1, log: true},"
         " {name: model.width, type: int, min: 4, max: 12}]")


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install tests/hpo/centre_first.py and the search-only pipeline as a package would: entry points."""
    site = tmp_path / "site"
    info = site / "mlwf_test_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlwf-test-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mlwf_nb.hpo_strategies]\ncentre-first = tests.hpo.centre_first:CentreFirstStrategy\n\n"
        "[mlwf_nb.pipelines]\nsearch-only = tests.pipelines.search_only:PIPELINE\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{site}")  # the jobs find the package as this process does
    return site


def test_every_built_in_strategy_is_registered_and_owns_its_options():
    assert {"grid", "random", "bayesian", "hyperband", "evolutionary"} <= set(STRATEGIES.names())
    assert strategy_names()[0] == "none"
    hpo = HPOSpec(strategy="hyperband", trials=13, options={"factor": 3})
    assert isinstance(get_strategy(hpo, max_epochs=9), HyperbandStrategy)
    assert plan_rounds(hpo, max_epochs=9) == [9, 3, 1]
    with pytest.raises(HPOError, match=r"does not take population_size; it takes factor \(default 3\)"):
        get_strategy(HPOSpec(strategy="hyperband", options={"population_size": 4}), max_epochs=9)
    with pytest.raises(HPOError, match=r"unknown HPO strategy 'magic'; available HPO strategies: .*bayesian"):
        get_strategy(HPOSpec(strategy="magic"))


def test_check_spec_names_an_unknown_strategy_and_stray_options():
    spec = RunSpec.from_preset("tiny").with_overrides(["hpo.strategy=magic", SPACE])
    with pytest.raises(HPOError, match=r"hpo\.strategy"):
        check_spec(spec)
    with pytest.raises(HPOError, match="strategy 'random' does not take factor"):
        check_spec(spec.with_overrides({"hpo.strategy": "random", "hpo.options": {"factor": 2}}))


def test_a_strategy_installed_by_entry_point_is_found_by_name(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch)
    STRATEGIES.unregister("centre-first")  # as in a fresh kernel: nothing imported the module yet
    sys.modules.pop("tests.hpo.centre_first", None)
    hpo = HPOSpec(strategy="centre-first", trials=5, parallel=2,
                  space=[HPOParam(name="train.learning_rate", min=1e-4, max=1e-1, log=True)])
    assert plan_rounds(hpo) == [1, 2, 2] and "centre-first" in strategy_names()
    with pytest.raises(HPOError, match=r"takes centre \(default 0.5\)"):
        get_strategy(HPOSpec(strategy="centre-first", options={"step": 1}))


@pytest.mark.slow
def test_a_new_strategy_runs_end_to_end_on_the_local_backend(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch)
    spec = RunSpec.from_preset("tiny").with_overrides([
        "pipeline=search-only", "hpo.strategy=centre-first", "hpo.trials=3", "hpo.parallel=2",
        "hpo.cheap_objective=true", SPACE, "hpo.options={centre: 0.5}", "execution.jobs=2"])
    from mlwf_nb.runs import submit

    run = submit(spec, run_dir=tmp_path / "run", wait=True)
    assert Run.attach(run.dir).state == "Success", run.status()["mlwf"]
    proposed = [e for e in run.events() if e["type"] == "trial_proposed"]
    assert [(e["round"], e["trial"]) for e in proposed] == [(0, 1), (1, 1), (1, 2)]
    centre = proposed[0]["hp"]
    assert centre["model.width"] == 8 and abs(centre["train.learning_rate"] - 10 ** -2.5) < 1e-9
    board = json.loads((run.dir / "outputs/hpo/leaderboard.json").read_text())
    assert board["strategy"] == "centre-first" and len(board["trials"]) == 3
    state = json.loads((run.dir / "work/hpo/r1.state.json").read_text())
    assert state["strategy"] == "centre-first"
