"""The galaxy and lung templates as pipelines: registry, presets, job graphs, schema-valid workflows."""

from __future__ import annotations

import itertools

import pytest
import yaml

from mlwf_nb.errors import SpecError
from mlwf_nb.pipelines import available_pipelines, get_pipeline, preset_spec
from mlwf_nb.steps.registry import available_steps, get_step
from mlwf_nb.workflow import build_graph, write_run_dir

JOBS = {"galaxy": ["verify_samples", "split_samples", "augment_minority", "train_samples", "evaluate_galaxy"],
        "lung": ["verify_samples", "split_samples", "train_samples", "evaluate_lung"]}


def _spec(name, preset, tmp_path, **extra):
    return preset_spec(preset, name, {"dataset.path": str(tmp_path / f"data-{name}"), **extra})


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


def test_hpo_is_refused_with_the_fix(tmp_path):
    spec = _spec("galaxy", "tiny", tmp_path, **{"dataset.scenes": 40, "hpo.strategy": "random",
                                                "hpo.space": [{"name": "train.learning_rate", "min": 1e-4,
                                                               "max": 1e-2}]})
    with pytest.raises(SpecError, match=r"hpo\.strategy=none"):
        build_graph(spec)


def test_missing_dataset_without_synthetic_is_an_error(tmp_path):
    from mlwf_nb.errors import DatasetError

    with pytest.raises(DatasetError, match=r"dataset\.synthetic=true"):
        build_graph(_spec("lung", "tiny", tmp_path, **{"dataset.synthetic": False}))
