"""The HPO steps through their command lines: propose -> trial -> propose -> select, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlwf_nb._io import read_json, write_json
from mlwf_nb.rundir.events import ENV_EVENTS, read_events
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.registry import get_step, run_step

SPACE = [{"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-1, "log": True},
         {"name": "train.batch_size", "type": "int", "min": 8, "max": 256, "log": True}]


def _spec(tmp_path: Path, **hpo: Any) -> Path:
    spec = RunSpec.from_dict({"train": {"epochs": 3}, "hpo": {
        "strategy": "random", "trials": 4, "parallel": 2, "cheap_objective": True,
        "space": SPACE, **hpo}})
    return spec.save(tmp_path / "spec.yaml")


def _propose(spec: Path, work: Path, r: int, k: int, results: list[Path]) -> list[Path]:
    hps = [work / f"round-{r}" / f"trial-{i}" / "hp.json" for i in range(1, k + 1)]
    state = ["--state", str(work / f"state-r{r - 1}.json")] if r else []
    run_step("hpo-propose", ["--spec", str(spec), *state, "--results", *map(str, results),
                             "--hp", *map(str, hps), "--state-out", str(work / f"state-r{r}.json"),
                             "--round", str(r)])
    return hps


def _trial(spec: Path, hp: Path) -> Path:
    result = hp.parent / "result.json"
    run_step("trial", ["--spec", str(spec), "--hp", str(hp), "--result", str(result),
                       "--checkpoint", str(hp.parent / "checkpoint.json")])
    return result


def test_steps_are_declared_with_their_files() -> None:
    propose, trial, select = get_step("hpo-propose"), get_step("trial"), get_step("hpo-select")
    assert propose.outputs == ("hp", "state_out") and propose.inputs() == ["state", "results"]
    assert trial.checkpoints == ("checkpoint",) and trial.outputs == ("result", "tensorboard")
    assert set(trial.inputs()) == {"hp", "train", "val", "dataset", "parents"}
    assert select.outputs == ("best", "leaderboard")


def test_two_rounds_and_select_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV_EVENTS, str(events))
    spec, work = _spec(tmp_path), tmp_path / "work" / "hpo"
    hps0 = _propose(spec, work, 0, 2, [])
    bad = read_json(hps0[1])
    write_json(hps0[1], {**bad, "values": {**bad["values"], "train.batch_size": 0}})
    res0 = [_trial(spec, hp) for hp in hps0]  # the bad trial fails, the step returns normally
    failed = read_json(res0[1])
    assert failed["status"] == "failed" and "train.batch_size" in failed["error"]
    hps1 = _propose(spec, work, 1, 2, res0)
    res1 = [_trial(spec, hp) for hp in hps1]
    best, board = tmp_path / "out" / "best.json", tmp_path / "out" / "leaderboard.json"
    run_step("hpo-select", ["--spec", str(spec), "--results", *map(str, res0 + res1),
                            "--best", str(best), "--leaderboard", str(board)])
    ok = [read_json(r) for r in res0 + res1 if read_json(r)["status"] == "ok"]
    assert len(ok) == 3 and all(r["epochs"] == 3 and r["cheap"] for r in ok)
    assert read_json(best)["objective"] == max(r["objective"] for r in ok)
    assert [r["status"] for r in read_json(board)["trials"]] == ["ok", "ok", "ok", "failed"]
    kinds = [e["type"] for e in read_events(events)]
    assert kinds.count("trial_proposed") == 4 and kinds.count("trial_started") == 4
    assert kinds.count("trial_finished") == 4 and kinds.count("epoch") == 9
    assert kinds[-1] == "artifact"


def test_hyperband_promotion_resumes_from_the_parent_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV_EVENTS, str(events))
    spec, work = _spec(tmp_path, strategy="hyperband"), tmp_path / "work"
    res0 = [_trial(spec, hp) for hp in _propose(spec, work, 0, 3, [])]  # 3 models, 1 epoch each
    assert [read_json(r)["epochs"] for r in res0] == [1, 1, 1]
    (hp1,) = _propose(spec, work, 1, 1, res0)  # the best one goes on to 3 epochs
    doc = read_json(hp1)
    assert doc["resume_from"].endswith("checkpoint.json") and doc["initial_epoch"] == 1
    monkeypatch.setenv(ENV_EVENTS, str(tmp_path / "events-promoted.jsonl"))
    result = read_json(_trial(spec, hp1))
    seen = list(read_events(tmp_path / "events-promoted.jsonl"))
    assert [e["epoch"] for e in seen if e["type"] == "epoch"] == [2, 3]
    assert any(e["type"] == "checkpoint_restored" and e["epoch"] == 1 for e in seen)
    assert result["status"] == "ok" and result["epochs"] == 3


def test_a_skipped_proposal_makes_a_quick_skipped_result(tmp_path: Path) -> None:
    hp = tmp_path / "hp.json"
    write_json(hp, {"round": 1, "trial": 2, "trial_id": None, "skip": True, "values": {}})
    result = read_json(_trial(_spec(tmp_path), hp))
    assert result["status"] == "skipped" and result["objective"] is None


def test_round_after_zero_needs_the_previous_state(tmp_path: Path) -> None:
    from mlwf_nb.errors import StepError

    spec = _spec(tmp_path)
    with pytest.raises(StepError, match="--state"):
        run_step("hpo-propose", ["--spec", str(spec), "--hp", str(tmp_path / "hp.json"),
                                 "--state-out", str(tmp_path / "s1.json"), "--round", "1"])
