"""The galaxy and lung templates as pipelines: registry, presets, job graphs, schema-valid workflows."""

from __future__ import annotations

import itertools

import pytest
import yaml

from mlwf_nb.pipelines import available_pipelines, get_pipeline, preset_spec
from mlwf_nb.steps.registry import available_steps, get_step
from mlwf_nb.workflow import build_graph, write_run_dir

JOBS = {"galaxy": ["verify_samples", "split_samples", "augment_minority", "train_samples", "evaluate_galaxy"],
        "lung": ["verify_samples", "split_samples", "train_samples", "evaluate_lung"]}


def _spec(name, preset, tmp_path, **extra):
    return preset_spec(preset, name, {"dataset.path": str(tmp_path / f"data-{name}"), "dataset.synthetic": True,
                                      **extra})


def test_registered_with_their_steps():
    assert {"galaxy", "lung", "landcover"} <= set(available_pipelines())
    assert {"augment-minority", "evaluate-galaxy", "evaluate-lung", "split-samples", "train-samples",
            "verify-samples"} <= set(available_steps())
    assert get_step("evaluate-lung").command_name == "evaluate-lung"  # built in: called by name
    assert get_pipeline("lung").task == "segmentation" and get_pipeline("galaxy").task == "classification"


@pytest.mark.parametrize("name", ["galaxy", "lung"])
@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_presets_apply_the_pipelines_own_overrides(name, preset):
    spec = preset_spec(preset, name)
    own = get_pipeline(name).presets[preset]
    assert spec.pipeline == name and spec.name == f"{name}-{preset}"
    for key, value in own.items():
        assert spec.get(key) == value, key
    assert spec.model.name == ("unet" if name == "lung" else "small_cnn")


@pytest.mark.parametrize("name", ["galaxy", "lung"])
def test_workflow_is_schema_valid_and_wired(tmp_path, name):
    from mlwf_nb import schemas

    spec = _spec(name, "tiny", tmp_path, **{"dataset.scenes": 40})
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec))
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    jobs = {j["id"]: j for j in wf["jobs"]}
    assert [j["name"] for j in wf["jobs"]] == JOBS[name]
    children = {d["id"]: set(d["children"]) for d in wf.get("jobDependencies", [])}
    ids = [j["id"] for j in wf["jobs"]]
    for parent, child in itertools.pairwise(ids):  # a chain: each job feeds the next
        assert child in children[parent], (jobs[parent]["name"], jobs[child]["name"])
    train = next(j for j in wf["jobs"] if j["name"] == "train_samples")
    assert any(u["lfn"] == "work/checkpoints/train.keras" and u["type"] == "checkpoint" for u in train["uses"])
    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    assert len(schemas.validate_run_dir(run)) == 4


SEARCH = {"hpo.trials": 4, "hpo.parallel": 2, "hpo.objective": "val_dice",
          "hpo.space": [{"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2, "log": True}]}


@pytest.mark.parametrize(("name", "strategy", "rounds"), [("lung", "bayesian", 2), ("lung", "random", 2),
                                                         ("galaxy", "random", 2)])
def test_search_rounds_feed_the_final_training(tmp_path, name, strategy, rounds):
    from mlwf_nb import schemas

    spec = _spec(name, "tiny", tmp_path, **{"dataset.scenes": 40, "hpo.strategy": strategy, **SEARCH})
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec))
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    by_name: dict[str, list[dict]] = {}
    for job in wf["jobs"]:
        by_name.setdefault(job["name"], []).append(job)
    assert len(by_name["hpo_propose"]) == rounds and len(by_name["trial"]) == 4
    assert len(by_name["hpo_select"]) == 1

    def lfns(job, kind):
        return {u["lfn"] for u in job["uses"] if u["type"] == kind}

    train_lfns = "work/split/train-balanced" if name == "galaxy" else "work/split/train"
    for trial in by_name["trial"]:
        inputs = lfns(trial, "input")
        assert {f"{train_lfns}.x.npy", "work/split/val.y.npy", "dataset/dataset.yaml"} <= inputs
    train = by_name["train_samples"][0]
    assert "outputs/hpo/best.json" in lfns(train, "input")
    children = {d["id"]: set(d["children"]) for d in wf.get("jobDependencies", [])}
    assert train["id"] in children[by_name["hpo_select"][0]["id"]]
    propose = {r: next(j for j in by_name["hpo_propose"] if f"work/hpo/r{r}.state.json" in lfns(j, "output"))
               for r in range(rounds)}
    for r in range(rounds):  # propose[r] -> its trials -> propose[r+1]
        trials = [t for t in by_name["trial"] if any(f.startswith(f"work/hpo/r{r}-t") for f in lfns(t, "output"))]
        assert len(trials) == 2
        for t in trials:
            assert t["id"] in children[propose[r]["id"]]
            if r + 1 < rounds:
                assert propose[r + 1]["id"] in children[t["id"]]
    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    assert len(schemas.validate_run_dir(run)) == 4


def test_without_a_search_the_training_takes_no_best(tmp_path):
    spec = _spec("lung", "tiny", tmp_path, **{"dataset.scenes": 40})
    g = build_graph(spec)
    wf = yaml.safe_load(write_run_dir(spec, tmp_path / "run", graph=g).joinpath("workflow.yml").read_text())
    assert not [j for j in wf["jobs"] if j["name"] in ("trial", "hpo_propose", "hpo_select")]
    train = next(j for j in wf["jobs"] if j["name"] == "train_samples")
    assert not any("best" in u["lfn"] for u in train["uses"])


def test_missing_dataset_without_synthetic_is_an_error(tmp_path):
    from mlwf_nb.errors import DatasetError

    with pytest.raises(DatasetError, match=r"dataset\.synthetic: true"):
        build_graph(_spec("lung", "tiny", tmp_path, **{"dataset.synthetic": False}))
