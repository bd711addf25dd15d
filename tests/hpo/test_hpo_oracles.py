"""Oracles driven from outside a tuner; their whole state survives a JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.evolutionary import EvolutionaryOracle
from mlwf_nb.hpo.objective import analytic_objective
from mlwf_nb.hpo.oracles import (
    finish_trial,
    grid_size,
    hyperband_plan,
    make_oracle,
    oracle_from_json,
    oracle_to_json,
    scratch_project,
)
from mlwf_nb.hpo.space import build_hyperparameters
from mlwf_nb.spec import HPOParam


def _step(oracle: Any, space: list[HPOParam], n: int, tag: str) -> list[dict[str, Any]]:
    """Create and finish n trials, one at a time; return their values."""
    out = []
    for i in range(n):
        trial = oracle.create_trial(f"{tag}{i}")
        if trial.status != "RUNNING":
            break
        values = dict(trial.hyperparameters.values)
        score = analytic_objective(values, 0, space=space)["val_accuracy"]
        finish_trial(oracle, trial.trial_id, "COMPLETED", {"val_accuracy": score})
        out.append(values)
    return out


def _new(strategy: str, space: list[HPOParam], **kw: Any) -> Any:
    return make_oracle(strategy, build_hyperparameters(space), "val_accuracy", "max", 40, 3, **kw)


@pytest.mark.parametrize("strategy", ["grid", "random", "evolutionary"])
def test_json_round_trip_continues_exactly(strategy: str, space: list[HPOParam]) -> None:
    kw = {"population_size": 3} if strategy == "evolutionary" else {}
    straight = _new(strategy, space, **kw)
    with scratch_project(straight):
        expected = _step(straight, space, 12, "t")
    first = _new(strategy, space, **kw)
    with scratch_project(first):
        got = _step(first, space, 6, "t")
        text = json.dumps(oracle_to_json(first))  # plain JSON, nothing pickled
    second = oracle_from_json(_new(strategy, space, **kw), json.loads(text))
    with scratch_project(second):
        got += _step(second, space, 6, "t")
    assert got == expected
    assert len({json.dumps(v, sort_keys=True) for v in got}) == len(got), "no repeats"


def test_grid_enumerates_every_combination_once() -> None:
    space = [HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam"]),
             HPOParam(name="train.batch_size", type="int", min=16, max=64, step=16)]
    oracle = _new("grid", space)
    assert grid_size(oracle.hyperparameters) == 8
    with scratch_project(oracle):
        seen = _step(oracle, space, 20, "t")
    assert len(seen) == 8
    assert {(v["train.optimizer"], v["train.batch_size"]) for v in seen} == {
        (o, b) for o in ("sgd", "adam") for b in (16, 32, 48, 64)}


def test_evolutionary_children_come_from_parents(space: list[HPOParam]) -> None:
    oracle = _new("evolutionary", space, population_size=4, mutation_rate=0.0, crossover_rate=0.0)
    assert isinstance(oracle, EvolutionaryOracle)
    with scratch_project(oracle):
        gen0 = _step(oracle, space, 4, "t")
        gen1 = _step(oracle, space, 4, "t")
    assert len(oracle.generations) == 2
    for child in gen1:  # with no crossover and rate 0, exactly one value differs from a parent
        diffs = [sum(child[k] != parent[k] for k in child) for parent in gen0]
        assert min(diffs) == 1


def test_failed_trials_are_recorded_not_retried(space: list[HPOParam]) -> None:
    oracle = _new("random", space)
    with scratch_project(oracle):
        trial = oracle.create_trial("a")
        assert finish_trial(oracle, trial.trial_id, "FAILED", message="boom") == "FAILED"
        nan = oracle.create_trial("b")
        assert finish_trial(oracle, nan.trial_id, "COMPLETED", {"val_accuracy": float("nan")}) \
            == "FAILED"
        assert "not finite" in oracle.get_trial(nan.trial_id).message
        assert oracle._retry_queue == []
        assert oracle.create_trial("c").trial_id not in (trial.trial_id, nan.trial_id)


def test_make_oracle_rejects_unknown_strategy_and_options(space: list[HPOParam]) -> None:
    with pytest.raises(HPOError, match=r"unknown HPO strategy 'annealing'"):
        _new("annealing", space)
    with pytest.raises(HPOError, match="does not take"):
        _new("random", space, population_size=3)


def test_hyperband_plan_matches_keras_tuner_formulas() -> None:
    plan = hyperband_plan(9, 3)
    assert [[(r["size"], r["epochs"]) for r in b] for b in plan] == [
        [(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]
    assert plan[0][1]["initial_epoch"] == 1
    with pytest.raises(HPOError, match="factor >= 2"):
        hyperband_plan(9, 1)
