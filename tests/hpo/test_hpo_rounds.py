"""HPO in rounds: plans, every strategy end to end in-process, failures, idempotency, state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras_tuner
import pytest

from mlwf_nb._io import read_json, write_json
from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.objective import analytic_objective
from mlwf_nb.hpo.oracles import kt_seed
from mlwf_nb.hpo.rounds import initial_points, plan_rounds, propose, round_plans, select, state_path
from mlwf_nb.hpo.space import build_hyperparameters
from mlwf_nb.spec import HPOParam, HPOSpec, RunSpec

GRID = [HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam"]),
        HPOParam(name="train.batch_size", type="int", min=16, max=64, step=16)]


@pytest.mark.parametrize(("strategy", "trials", "k", "expected"), [
    ("random", 10, 4, [4, 4, 2]),
    ("bayesian", 10, 4, [4, 4, 2]),
    ("evolutionary", 12, 4, [4, 4, 4]),
    ("grid", 20, 3, [3, 3, 2]),          # 8 grid points, fewer than 20 trials
    ("hyperband", 16, 4, [9, 3, 1, 3]),  # bracket 2 (9/3/1 models) + bracket 0 (3); bracket 1 does not fit
    ("none", 8, 2, []),
])
def test_plan_rounds(strategy: str, trials: int, k: int, expected: list[int],
                     space: list[HPOParam]) -> None:
    hpo = HPOSpec(strategy=strategy, trials=trials, parallel=k,
                  space=GRID if strategy == "grid" else space)
    assert plan_rounds(hpo, max_epochs=9) == expected
    assert plan_rounds(hpo, max_epochs=9) == expected  # deterministic


def test_hyperband_plan_carries_epoch_budgets(space: list[HPOParam]) -> None:
    spec = RunSpec.from_dict({"train": {"epochs": 9}, "hpo": {
        "strategy": "hyperband", "trials": 16, "space": [vars(p) for p in space]}})
    plans = round_plans(spec)
    assert [(p.epochs, p.initial_epoch, p.rung) for p in plans] == [
        (1, 0, 0), (3, 1, 1), (9, 3, 2), (9, 0, 0)]
    assert plan_rounds(spec) == [9, 3, 1, 3]
    with pytest.raises(HPOError, match="max_epochs"):
        plan_rounds(spec.hpo)
    small = HPOSpec(strategy="hyperband", trials=2, space=space)
    assert plan_rounds(small, max_epochs=9) == [2]  # no bracket fits: the one-rung bracket, cut


@pytest.mark.parametrize(("strategy", "trials", "floor"), [
    ("grid", 8, 0.70),
    ("random", 12, 0.80),
    ("evolutionary", 12, 0.80),
    ("hyperband", 16, 0.80),
])
def test_each_strategy_runs_rounds_and_finds_a_decent_value(
        strategy: str, trials: int, floor: float, tmp_path: Path, space: list[HPOParam],
        drive: Any, cheap: Any) -> None:
    sp = GRID if strategy == "grid" else space
    hpo = HPOSpec(strategy=strategy, trials=trials, parallel=4, space=sp, seed=1)
    out = drive(hpo, tmp_path, cheap(sp), max_epochs=9)
    done = [p for p in out["proposals"] if not p["skip"]]
    assert len(done) == sum(plan_rounds(hpo, max_epochs=9))
    assert out["best"]["objective"] >= floor
    board = out["leaderboard"]["trials"]
    assert [r["rank"] for r in board] == list(range(1, len(board) + 1))
    assert board[0]["values"] == out["best"]["values"]
    objectives = [r["objective"] for r in board]
    assert objectives == sorted(objectives, reverse=True)
    if strategy != "hyperband":  # every proposal is new (Hyperband re-trains promoted values)
        assert len({json.dumps(p["values"], sort_keys=True) for p in done}) == len(done)


def test_hyperband_promotions_resume_from_the_parent_checkpoint(
        tmp_path: Path, space: list[HPOParam], drive: Any, cheap: Any) -> None:
    hpo = HPOSpec(strategy="hyperband", trials=16, parallel=4, space=space, seed=2)
    out = drive(hpo, tmp_path, cheap(space), max_epochs=9)
    by_id = {p["trial_id"]: p for p in out["proposals"]}
    results = {read_json(r)["trial_id"]: read_json(r) for r in out["results"]}
    rung1 = [p for p in out["proposals"] if p["round"] == 1]
    assert len(rung1) == 3
    rung0 = sorted((results[p["trial_id"]] for p in out["proposals"] if p["round"] == 0),
                   key=lambda r: -r["objective"])
    assert {p["parent_trial_id"] for p in rung1} == {r["trial_id"] for r in rung0[:3]}
    for p in rung1:
        parent = by_id[p["parent_trial_id"]]
        assert p["values"] == parent["values"]
        assert (p["epochs"], p["initial_epoch"]) == (3, 1)
        assert p["resume_from"] == str(tmp_path / "round-0" / f"trial-{parent['trial']}" / "ckpt.json")


def _kt_random_sequence(hpo: HPOSpec, n: int, tmp_path: Path) -> list[dict[str, Any]]:
    """keras-tuner's RandomSearchOracle driven the ordinary way: a Tuner's search loop."""

    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            values = trial.hyperparameters.values
            return {"val_accuracy": analytic_objective(values, 0, space=hpo.space)["val_accuracy"]}

    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=n,
        seed=kt_seed(hpo.seed), hyperparameters=build_hyperparameters(hpo.space))
    tuner = Tuner(oracle=oracle, directory=str(tmp_path), project_name="kt", overwrite=True)
    tuner.search(verbose=0)
    return [dict(oracle.trials[t].hyperparameters.values) for t in oracle.start_order]


def test_random_rounds_propose_what_keras_tuner_random_search_does(
        tmp_path: Path, space: list[HPOParam], drive: Any, cheap: Any) -> None:
    hpo = HPOSpec(strategy="random", trials=9, parallel=4, space=space, seed=5)
    ours = [p["values"] for p in drive(hpo, tmp_path / "ours", cheap(space))["proposals"]]
    assert ours == _kt_random_sequence(hpo, 9, tmp_path / "kt")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bayesian_rounds_at_least_as_good_as_random(tmp_path: Path, drive: Any, cheap: Any) -> None:
    """Bayesian runs its rounds (4 random + 4 from the Gaussian process) and beats random on average."""
    sp = [HPOParam(name="train.learning_rate", type="float", min=1e-5, max=1e-1, log=True),
          HPOParam(name="train.momentum", type="float", min=0.0, max=0.99)]
    best: dict[str, list[float]] = {"random": [], "bayesian": []}
    for seed in (0, 1, 2):
        for strategy in best:
            hpo = HPOSpec(strategy=strategy, trials=8, parallel=4, space=sp, seed=seed)
            out = drive(hpo, tmp_path / f"{strategy}-{seed}", cheap(sp, seed))
            best[strategy].append(out["best"]["objective"])
    mean = {k: sum(v) / len(v) for k, v in best.items()}
    assert mean["bayesian"] >= mean["random"], best
    assert mean["bayesian"] >= 0.8, best
    assert initial_points(hpo) == 4  # 2 dimensions: keras-tuner's 6, rounded down to one round


@pytest.mark.parametrize(("dims", "k", "expected"), [(1, 4, 4), (2, 4, 4), (3, 4, 8), (3, 2, 8), (4, 5, 10)])
def test_bayesian_random_phase_is_whole_rounds(dims: int, k: int, expected: int,
                                               space: list[HPOParam]) -> None:
    sp = [*space, HPOParam(name="train.momentum", min=0.0, max=0.99)][:dims]
    assert initial_points(HPOSpec(strategy="bayesian", trials=40, parallel=k, space=sp)) == expected


def _round(tmp_path: Path, hpo: HPOSpec, r: int, results: list[Path], k: int) -> list[Path]:
    hps = [tmp_path / f"round-{r}" / f"trial-{i}" / "hp.json" for i in range(1, k + 1)]
    propose(tmp_path / "state", r, results, hpo, hps)
    return hps


def _finish(hps: list[Path], scorer: Any, fail: set[int] = frozenset()) -> list[Path]:  # type: ignore[assignment]
    out = []
    for i, path in enumerate(hps, start=1):
        doc = read_json(path)
        base = {k: doc.get(k) for k in ("round", "trial", "trial_id", "values")}
        res = {**base, "status": "failed", "error": "RuntimeError: boom"} if i in fail \
            else {**base, **scorer(doc)}
        out.append(write_json(path.parent / "result.json", res))
    return out


def test_propose_twice_for_the_same_round_is_idempotent(
        tmp_path: Path, space: list[HPOParam], cheap: Any) -> None:
    hpo = HPOSpec(strategy="bayesian", trials=12, parallel=3, space=space, seed=3)
    res0 = _finish(_round(tmp_path, hpo, 0, [], 3), cheap(space))
    hps = _round(tmp_path, hpo, 1, res0, 3)
    first = [p.read_bytes() for p in hps] + [state_path(tmp_path / "state", 1).read_bytes()]
    for p in hps:
        p.unlink()
    _round(tmp_path, hpo, 1, res0, 3)  # rerun: saved state says round 1 was proposed
    assert [p.read_bytes() for p in hps] + [state_path(tmp_path / "state", 1).read_bytes()] == first
    state_path(tmp_path / "state", 1).unlink()
    _round(tmp_path, hpo, 1, res0, 3)  # rerun from scratch: the oracle is deterministic
    assert [p.read_bytes() for p in hps] == first[:3]


def test_a_failed_trial_leaves_the_search_going(
        tmp_path: Path, space: list[HPOParam], cheap: Any) -> None:
    hpo = HPOSpec(strategy="random", trials=6, parallel=3, space=space, max_consecutive_failures=1)
    res0 = _finish(_round(tmp_path, hpo, 0, [], 3), cheap(space), fail={2})
    hps = _round(tmp_path, hpo, 1, res0, 3)
    assert not any(read_json(p)["skip"] for p in hps)
    res1 = _finish(hps, cheap(space))
    best = select(res0 + res1, hpo, tmp_path / "best.json", tmp_path / "lb.json")
    board = read_json(tmp_path / "lb.json")["trials"]
    failed = [r for r in board if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError: boom" and failed[0]["rank"] is None
    assert board[-1] == failed[0] and best["objective"] == board[0]["objective"]


def test_more_consecutive_failures_than_allowed_stop_the_search(
        tmp_path: Path, space: list[HPOParam], cheap: Any) -> None:
    hpo = HPOSpec(strategy="random", trials=12, parallel=2, space=space, max_consecutive_failures=2)
    res0 = _finish(_round(tmp_path, hpo, 0, [], 2), cheap(space), fail={1, 2})
    res1 = _finish(_round(tmp_path, hpo, 1, res0, 2), cheap(space), fail={1, 2})  # 2 in a row: allowed
    with pytest.raises(HPOError, match=r"4 trials failed in a row.*max_consecutive_failures=2"):
        _round(tmp_path, hpo, 2, res1, 2)
    with pytest.raises(HPOError, match="none of the 4 trials completed"):
        select(res0 + res1, hpo, tmp_path / "best.json", tmp_path / "lb.json")


def test_a_missing_result_counts_as_failed(tmp_path: Path, space: list[HPOParam], cheap: Any) -> None:
    hpo = HPOSpec(strategy="random", trials=6, parallel=2, space=space)
    res0 = _finish(_round(tmp_path, hpo, 0, [], 2), cheap(space))
    res0[0].unlink()
    _round(tmp_path, hpo, 1, res0, 2)
    history = read_json(state_path(tmp_path / "state", 1))["book"]["history"]
    assert [h["status"] for h in history] == ["FAILED", "COMPLETED"]
    assert "no result.json" in history[0]["error"]


def test_grid_exhausted_writes_skip(tmp_path: Path, cheap: Any) -> None:
    sp = [GRID[0]]
    hpo = HPOSpec(strategy="grid", trials=10, parallel=2, space=sp)
    res0 = _finish(_round(tmp_path, hpo, 0, [], 2), cheap(sp))
    docs = [read_json(p) for p in _round(tmp_path, hpo, 1, res0, 2)]
    assert [d["skip"] for d in docs] == [True, True]


def test_state_is_one_json_file_per_round_and_nothing_else(
        tmp_path: Path, space: list[HPOParam], drive: Any, cheap: Any) -> None:
    hpo = HPOSpec(strategy="evolutionary", trials=8, parallel=4, space=space)
    drive(hpo, tmp_path, cheap(space))
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert files == ["state-r0.json", "state-r1.json"]
    for name in files:
        raw = (tmp_path / "state" / name).read_bytes()
        assert not raw.startswith(b"\x80"), "pickle protocol header"
        doc = json.loads(raw)
        assert doc["format"] == "mlwf-hpo-state" and doc["oracle"]["oracle"]["generations"]
