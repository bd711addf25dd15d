"""Gradient-based search: estimates, convergence, bounds, resume, failed trials, discrete parameters."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest

from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.gradient import estimate_gradient, perturbation_size, step_length
from mlwf_nb.hpo.gradient_oracle import GradientOracle
from mlwf_nb.hpo.objective import analytic_objective, optimum
from mlwf_nb.hpo.oracles import finish_trial, kt_seed, oracle_from_json, oracle_to_json, scratch_project
from mlwf_nb.hpo.rounds import _check_failures
from mlwf_nb.hpo.space import build_hyperparameters
from mlwf_nb.spec import HPOParam, HPOSpec

# The known optima (learning rate 3e-3, momentum 0.9, batch 64) are off the centre of these ranges.
SPACE = [HPOParam(name="train.learning_rate", type="float", min=1e-5, max=1e-1, log=True),
         HPOParam(name="train.momentum", type="float", min=0.0, max=0.99),
         HPOParam(name="train.batch_size", type="int", min=8, max=256, log=True)]


def _oracle(space: list[HPOParam], seed: int = 0, k: int = 4, trials: int = 40,
            direction: str = "max", **kw: Any) -> GradientOracle:
    import keras_tuner

    oracle = GradientOracle(
        objective=keras_tuner.Objective("val_accuracy" if direction == "max" else "val_loss", direction),
        hyperparameters=build_hyperparameters(space), max_trials=trials, seed=kt_seed(seed),
        tune_new_entries=False, allow_new_entries=False, max_consecutive_failed_trials=10**9,
        round_size=k, **kw)
    oracle.verbose = 0
    return oracle


def _rounds(space: list[HPOParam], rounds: int, *, seed: int = 0, k: int = 4, state: Any = None,
            fail: Any = lambda r, i: False, direction: str = "max",
            **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drive rounds the workflow's way: a fresh oracle from the JSON state of the round before."""
    proposed: list[dict[str, Any]] = []
    for r in range(rounds):
        oracle = _oracle(space, seed, k, direction=direction, **kw)
        with scratch_project(oracle):
            if state is not None:
                oracle_from_json(oracle, json.loads(json.dumps(state)))
            trials = [oracle.create_trial(f"round{r}-trial{i}") for i in range(k)]
            for i, trial in enumerate(trials):
                if trial.status != "RUNNING":
                    continue
                values = dict(trial.hyperparameters.values)
                proposed.append({"round": r, "trial_id": trial.trial_id, "values": values})
                if fail(r, i):
                    finish_trial(oracle, trial.trial_id, "FAILED", message="boom")
                    continue
                score = analytic_objective(values, seed, space=space)["val_accuracy"]
                metric = score if direction == "max" else 1.0 - score
                finish_trial(oracle, trial.trial_id, "COMPLETED", {oracle.objective.name: metric})
            state = oracle_to_json(oracle)
    return proposed, state


def _distance(values: dict[str, Any], space: list[HPOParam]) -> float:
    """RMS distance to the analytic optimum in the unit cube (log where the space says so)."""
    best = optimum(space)

    def unit(p: HPOParam, v: float) -> float:
        assert p.min is not None and p.max is not None
        if p.log:
            return math.log(v / p.min) / math.log(p.max / p.min)
        return (v - p.min) / (p.max - p.min)

    return math.sqrt(sum((unit(p, values[p.name]) - unit(p, best[p.name])) ** 2 for p in space) / len(space))


def test_central_differences_are_exact_on_a_linear_function() -> None:
    w = [0.3, -1.2, 2.0]
    pairs = [(sum(wi * (0.5 + c * (j == i)) for j, wi in enumerate(w)),
              sum(wi * (0.5 - c * (j == i)) for j, wi in enumerate(w)),
              [1.0 if j == i else 0.0 for j in range(3)], c) for i, c in ((0, 0.1), (1, 0.05), (2, 0.1))]
    assert estimate_gradient(pairs, 3) == pytest.approx(w)
    assert estimate_gradient(pairs[:1], 3) == pytest.approx([0.3, 0.0, 0.0])  # unprobed: 0
    assert estimate_gradient([], 3) is None


def test_spsa_averaged_over_every_sign_vector_is_the_gradient() -> None:
    w = [0.3, -1.2]
    signs = [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]
    slopes = [sum(a * b for a, b in zip(w, d, strict=True)) for d in signs]  # f(x ± 0.1 d) = ± 0.1 w.d
    pairs = [(0.1 * s, -0.1 * s, d, 0.1) for s, d in zip(slopes, signs, strict=True)]
    assert estimate_gradient(pairs, 2) == pytest.approx(w)


def test_schedules_decay() -> None:
    steps = [step_length(k, 0.2) for k in range(6)]
    assert steps[0] == pytest.approx(0.2) and all(a > b for a, b in itertools.pairwise(steps))
    widths = [perturbation_size(k, 0.1) for k in range(6)]
    assert widths[0] == pytest.approx(0.1) and all(a > b for a, b in itertools.pairwise(widths))


@pytest.mark.parametrize("estimator", ["spsa", "central"])
def test_the_centre_converges_towards_the_optimum(estimator: str) -> None:
    """Mean over seeds of the centre's distance to the optimum shrinks round after round."""
    paths = []
    for seed in range(3):
        _, state = _rounds(SPACE, 6, seed=seed, estimator=estimator)
        paths.append([_distance(step["center"], SPACE) for step in state["oracle"]["path"]])
    start = _distance(_oracle(SPACE)._values([0.5] * 3, {}), SPACE)  # the search starts at the centre
    mean = [sum(col) / len(col) for col in zip(*paths, strict=True)]
    assert len(mean) == 5  # six rounds of four: five finished iterations
    assert mean[0] < start and mean[-1] < 0.4 * start, (start, mean)
    assert sum(b < a for a, b in itertools.pairwise(mean)) >= 3, mean


def test_minimising_walks_the_other_way() -> None:
    _, up = _rounds(SPACE, 4, direction="max")
    _, down = _rounds(SPACE, 4, direction="min")  # objective 1 - score: the same optimum
    assert up["oracle"]["path"][-1]["center"] == pytest.approx(down["oracle"]["path"][-1]["center"])


def test_never_proposes_outside_the_bounds() -> None:
    """Optima outside the ranges pull the centre onto a bound; probes stay inside."""
    space = [HPOParam(name="train.learning_rate", type="float", min=1e-2, max=1e-1, log=True),
             HPOParam(name="train.momentum", type="float", min=0.0, max=0.5),
             HPOParam(name="train.batch_size", type="int", min=96, max=128)]
    proposed, state = _rounds(space, 8, k=3, step=0.5, perturbation=0.3)
    for p in space:
        assert p.min is not None and p.max is not None
        values = [t["values"][p.name] for t in proposed]
        assert p.min <= min(values) and max(values) <= p.max, (p.name, min(values), max(values))
    assert state["oracle"]["path"][-1]["center"]["train.momentum"] == pytest.approx(0.5)
    assert state["oracle"]["path"][-1]["center"]["train.learning_rate"] == pytest.approx(1e-2)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_a_resumed_search_continues_exactly(k: int) -> None:
    """A kill between rounds: the reloaded state proposes what the uninterrupted search did."""
    straight, _ = _rounds(SPACE, 6, k=k)
    first, state = _rounds(SPACE, 3, k=k)
    rest, _ = _rounds(SPACE, 3, k=k, state=state)
    assert [t["values"] for t in first + [{**t, "round": t["round"] + 3} for t in rest]] == \
        [t["values"] for t in straight]
    ids = [t["trial_id"] for t in first + rest]
    assert len(set(ids)) == len(ids), "no trial is repeated"
    assert len({json.dumps(t["values"], sort_keys=True) for t in straight}) == len(straight)


def test_one_trial_rounds_and_odd_rounds() -> None:
    _, one = _rounds(SPACE, 6, k=1)  # a pair spreads over two rounds
    assert len(one["oracle"]["path"]) == 2
    _, three = _rounds(SPACE, 3, k=3)  # one pair and the centre
    assert [p["pair"] for p in three["oracle"]["probes"]] == [0, 0, 1]
    assert [p["sign"] for p in three["oracle"]["probes"]] == [1, -1, 0]
    assert all(step["pairs"] == 1 for step in three["oracle"]["path"])


def test_failed_trials_are_left_out_of_the_estimate() -> None:
    # round 0: one pair loses a member; round 1: everything fails, the centre stays
    _, state = _rounds(SPACE, 3, fail=lambda r, i: (r == 0 and i == 1) or r == 1)
    path = state["oracle"]["path"]
    assert [step["pairs"] for step in path] == [1, 0]
    assert path[1]["step"] == 0.0 and path[1]["gradient"] is None
    assert path[1]["center"] == path[0]["center"]


def test_consecutive_failures_stop_the_search_as_for_every_strategy() -> None:
    hpo = HPOSpec(strategy="random", trials=20, parallel=4, space=SPACE, max_consecutive_failures=3)
    _, state = _rounds(SPACE, 2, fail=lambda r, i: r == 1 and i >= 1)  # 3 in a row: allowed
    oracle = oracle_from_json(_oracle(SPACE), state)
    _check_failures(oracle, hpo)
    _, state = _rounds(SPACE, 1, fail=lambda r, i: True, state=state)  # 3 + 4 in a row
    with pytest.raises(HPOError, match="7 trials failed in a row"):
        _check_failures(oracle_from_json(_oracle(SPACE), state), hpo)


def test_choices_are_drawn_per_pair_then_held_at_the_best() -> None:
    space = [*SPACE[:2], HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam", "adamw"])]
    proposed, _ = _rounds(space, 4, k=8)
    first = [t["values"]["train.optimizer"] for t in proposed if t["round"] == 0]
    assert first[0::2] == first[1::2], "both members of a pair share the draw"
    assert len(set(first)) > 1
    best = max((t for t in proposed if t["round"] == 0),
               key=lambda t: analytic_objective(t["values"], 0, space=space)["val_accuracy"])
    later = {t["values"]["train.optimizer"] for t in proposed if t["round"] > 0}
    assert later == {best["values"]["train.optimizer"]}


def test_integers_descend_or_are_held() -> None:
    proposed, _ = _rounds(SPACE, 3)
    assert len({t["values"]["train.batch_size"] for t in proposed}) > 3
    held, _ = _rounds(SPACE, 3, integers="hold")
    assert len({t["values"]["train.batch_size"] for t in held if t["round"] > 0}) == 1


def test_bad_options_and_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match=r"needs at least one numeric \(float or int\) parameter"):
        _oracle([HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam"])])
    with pytest.raises(ValueError, match="estimator must be one of spsa, central"):
        _oracle(SPACE, estimator="newton")
    with pytest.raises(ValueError, match=r"step must be in \(0, 1\]"):
        _oracle(SPACE, step=2.0)


def test_each_step_is_told_in_the_run_log(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlwf_nb.rundir.events import ENV_EVENTS, read_events

    monkeypatch.setenv(ENV_EVENTS, str(tmp_path / "events.jsonl"))
    _rounds(SPACE, 3, fail=lambda r, i: r == 1)
    logs = [e["message"] for e in read_events(tmp_path / "events.jsonl") if e["type"] == "log"]
    assert logs[0].startswith("gradient search, step 1: 2 of 2 pairs complete, moved 0.2 of the range to "
                              "train.learning_rate=")
    assert logs[1].startswith("gradient search, step 2: none of its 2 pairs completed, the centre stays at")


# -- the strategy (hpo.strategy: gradient) -------------------------------------------------------

def _drive(hpo: HPOSpec, root: Any) -> list[dict[str, Any]]:
    """The workflow's own driver: propose -> K trials (the analytic objective) -> propose ..."""
    from mlwf_nb._io import read_json, write_json
    from mlwf_nb.hpo.rounds import propose, round_plans

    previous: list[Any] = []
    proposals: list[dict[str, Any]] = []
    for plan in round_plans(hpo):
        hps = [root / f"r{plan.index}-t{i}.hp.json" for i in range(1, plan.size + 1)]
        propose(root / "state", plan.index, previous, hpo, hps)
        previous = []
        for hp in hps:
            doc = read_json(hp)
            proposals.append(doc)
            if doc["skip"]:
                continue
            value = analytic_objective(doc["values"], hpo.seed, space=hpo.space)["val_accuracy"]
            previous.append(write_json(root / hp.name.replace("hp.json", "result.json"), {
                "status": "ok", "objective": value, "metrics": {}, "trial_id": doc["trial_id"]}))
    return proposals


def test_the_strategy_plans_rounds_of_k_and_checks_its_options() -> None:
    from mlwf_nb.hpo.rounds import plan_rounds
    from mlwf_nb.hpo.strategies import get_strategy, strategy_names

    assert "gradient" in strategy_names()
    hpo = HPOSpec(strategy="gradient", trials=10, parallel=4, space=SPACE)
    assert plan_rounds(hpo) == [4, 4, 2]
    assert get_strategy(hpo).oracle_options() == {"estimator": "spsa", "step": 0.2, "perturbation": 0.1,
                                                  "integers": "descend", "round_size": 4}
    with pytest.raises(HPOError, match=r"estimator must be one of spsa, central, got 'newton'; step must be in"):
        get_strategy(hpo, estimator="newton", step=3)
    with pytest.raises(HPOError, match="does not take momentum"):
        get_strategy(hpo, momentum=0.9)
    choices = [HPOParam(name="train.optimizer", type="choice", choices=["sgd", "adam"])]
    with pytest.raises(HPOError, match=r"needs at least one numeric \(float or int\) parameter"):
        get_strategy(HPOSpec(strategy="gradient", space=choices))


def test_a_search_through_propose_converges_with_the_spec_options(tmp_path: Any) -> None:
    from mlwf_nb.hpo.rounds import state_path

    hpo = HPOSpec(strategy="gradient", trials=20, parallel=4, space=SPACE, seed=1,
                  options={"estimator": "central"})
    proposals = _drive(hpo, tmp_path)
    assert len(proposals) == 20 and not any(p["skip"] for p in proposals)
    oracle = json.loads(state_path(tmp_path / "state", 4).read_text())["oracle"]["oracle"]
    assert oracle["estimator"] == "central" and oracle["round_size"] == 4
    start = _distance(_oracle(SPACE)._values([0.5] * 3, {}), SPACE)
    assert _distance(oracle["path"][-1]["center"], SPACE) < 0.5 * start


def test_it_is_offered_wherever_a_strategy_is_chosen(tmp_path: Any) -> None:
    """The spec check, the CLI, the HPO widget's dropdown and the notebooks' parameters."""
    from mlwf_nb.cli import main
    from mlwf_nb.errors import ParameterError
    from mlwf_nb.params import tutorial_spec
    from mlwf_nb.runs import check_spec
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.widgets import HPOConfigurator, SpecModel

    space = "hpo.space=[{name: train.learning_rate, type: float, min: 0.0001, max: 0.1, log: true}]"
    spec = check_spec(RunSpec.from_preset("tiny").with_overrides(["hpo.strategy=gradient", space]))
    assert spec.hpo.strategy == "gradient"
    assert main(["validate", "--preset", "tiny", "--set", "hpo.strategy=gradient", "--set", space,
                 "--set", "hpo.options={estimator: central}"]) == 0
    model = SpecModel("tiny")
    widget = HPOConfigurator(model)
    assert "gradient" in widget._strategy.options
    widget.set_rows([{"name": "train.momentum", "type": "float", "min": 0.0, "max": 0.99}])
    widget.strategy = "gradient"
    assert widget.valid and model.spec.hpo.strategy == "gradient"
    settings = {"strategy": ("hpo.strategy", "gradient"), "trials": ("hpo.trials", 4),
                "space": ("hpo.space", [{"name": "train.momentum", "type": "float", "min": 0.0, "max": 0.9}])}
    assert tutorial_spec("tiny", settings=settings).hpo.strategy == "gradient"
    with pytest.raises(ParameterError, match=r"^opts=\{'estimator': 'newton'\}: hpo.options: .*estimator must be"):
        tutorial_spec("tiny", settings={**settings, "opts": ("hpo.options", {"estimator": "newton"})})


@pytest.mark.slow  # makes a small dataset and imports keras-tuner (~30 s here)
def test_per_source_searches_each_run_their_own_gradient_search(tmp_path: Any, monkeypatch: Any) -> None:
    """model.per_source: one chain of rounds per source, each proposing from its own state."""
    import yaml

    from mlwf_nb.cli import main
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.workflow import write_run_dir

    spec = RunSpec.from_preset("tiny").with_overrides([
        "dataset.synthetic=true", "dataset.scenes=8", "dataset.height=64", "dataset.width=64",
        "dataset.sources=[GF-2, GF-1]",
        f"dataset.path={tmp_path}/data", "model.per_source=true", "hpo.strategy=gradient", "hpo.trials=4",
        "hpo.parallel=2", "hpo.space=[{name: train.learning_rate, type: float, min: 0.0001, max: 0.1, log: true}]"])
    run = write_run_dir(spec, tmp_path / "run")
    jobs = yaml.safe_load((run / "workflow.yml").read_text())["jobs"]
    proposes = [j["arguments"] for j in jobs if j["name"] == "hpo_propose"]
    outs = sorted(a[a.index("--state-out") + 1] for a in proposes)
    assert outs == ["work/hpo/GF-1/GF-1.r0.state.json", "work/hpo/GF-1/GF-1.r1.state.json",
                    "work/hpo/GF-2/GF-2.r0.state.json", "work/hpo/GF-2/GF-2.r1.state.json",
                    "work/hpo/r0.state.json", "work/hpo/r1.state.json"]
    (gf1,) = [a for a in proposes if a[a.index("--state-out") + 1] == "work/hpo/GF-1/GF-1.r0.state.json"]
    monkeypatch.chdir(run)
    assert main(gf1) == 0  # the job as planned: `mlwf step hpo-propose ...` in the run folder
    state = json.loads((run / "work/hpo/GF-1/GF-1.r0.state.json").read_text())
    assert state["strategy"] == "gradient" and state["oracle"]["oracle"]["round_size"] == 2
    values = [json.loads((run / f"work/hpo/GF-1/GF-1.r0-t{i}.hp.json").read_text())["values"] for i in (0, 1)]
    lrs = sorted(v["train.learning_rate"] for v in values)
    assert 1e-4 <= lrs[0] < math.sqrt(1e-4 * 1e-1) < lrs[1] <= 1e-1  # one pair around the (log) centre


def test_the_widget_shows_what_the_strategy_refuses_and_leaves_the_spec() -> None:
    from mlwf_nb.widgets import HPOConfigurator, SpecModel

    model = SpecModel("tiny")
    widget = HPOConfigurator(model)
    widget.set_rows([{"name": "model.width", "type": "choice", "choices": [8, 16]}])
    widget.strategy = "bayesian"
    assert widget.valid and model.spec.hpo.strategy == "bayesian"
    widget.strategy = "gradient"  # nothing numeric to differentiate
    assert not widget.valid and "needs at least one numeric" in widget.problems[0]
    assert model.spec.hpo.strategy == "bayesian"  # left as it was
    widget.add_row({"name": "train.momentum", "type": "float", "min": 0.0, "max": 0.9})
    assert widget.valid and model.spec.hpo.strategy == "gradient"
