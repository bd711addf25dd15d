"""Notebook parameters: checked against the preset tables and the backend registry, one-line errors."""

from __future__ import annotations

import pytest

from mlwf_nb.backends import BACKENDS, register_backend, usable_backends
from mlwf_nb.backends.local import LocalBackend
from mlwf_nb.errors import ParameterError, SpecError
from mlwf_nb.params import backend_choices, parse_overrides, preset_names, run_folder, tutorial_spec
from mlwf_nb.pipelines import preset_spec


class _Nowhere(LocalBackend):
    name = "nowhere"

    @classmethod
    def unavailable(cls) -> str:
        return "nowhere-submit is not on PATH"


@pytest.fixture
def nowhere_backend():
    register_backend("nowhere", _Nowhere)
    yield
    BACKENDS.unregister("nowhere")


@pytest.mark.parametrize("pipeline", ["landcover", "galaxy", "lung"])
def test_every_template_has_its_own_tiny_cpu_and_paper(pipeline):
    assert set(preset_names(pipeline)) >= {"tiny", "cpu", "paper"}
    specs = {p: preset_spec(p, pipeline) for p in ("tiny", "cpu", "paper")}
    assert specs["tiny"].pipeline == pipeline == specs["paper"].pipeline
    # paper is the template's own set-up: its own data folder, bigger than cpu, on GPUs
    assert specs["paper"].dataset.path != specs["cpu"].dataset.path != specs["tiny"].dataset.path
    assert specs["paper"].dataset.scenes > specs["cpu"].dataset.scenes > specs["tiny"].dataset.scenes
    assert specs["paper"].execution.site == "gpus"
    if pipeline != "landcover":
        assert "gid" not in specs["paper"].dataset.path


def test_a_template_refuses_a_preset_it_does_not_have():
    with pytest.raises(SpecError, match="pipeline 'galaxy' has no preset 'huge'; its presets: tiny, cpu, paper"):
        preset_spec("huge", "galaxy")


def test_backends_offered_are_those_that_can_run(nowhere_backend):
    usable, why_not = backend_choices()
    assert "local" in usable and "nowhere" not in usable
    assert why_not["nowhere"] == "nowhere-submit is not on PATH" == usable_backends()["nowhere"]


def test_bad_backend_names_the_parameter_and_the_choices(nowhere_backend):
    with pytest.raises(ParameterError) as err:
        tutorial_spec("tiny", backend="slurm")
    msg = str(err.value)
    assert msg.startswith("backend='slurm' is not one of 'local'") and "'nowhere'" in msg and "\n" not in msg
    with pytest.raises(ParameterError, match="backend='nowhere' cannot be used here: nowhere-submit is not on PATH"):
        tutorial_spec("tiny", backend="nowhere")


def test_bad_preset_and_bad_settings_name_the_parameter():
    with pytest.raises(ParameterError, match=r"^preset='huge' is not one of 'tiny', 'cpu', 'paper'$"):
        tutorial_spec("huge", pipeline="lung")
    space = [{"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2}]
    with pytest.raises(ParameterError,
                       match=r"^strategy='bayes': unknown HPO strategy 'bayes'; available HPO strategies: bayesian"):
        tutorial_spec("tiny", settings={"trials": ("hpo.trials", 4), "strategy": ("hpo.strategy", "bayes"),
                                        "space": ("hpo.space", space)})
    with pytest.raises(ParameterError, match=r"^overrides: train.epochs must be >= 1"):
        tutorial_spec("tiny", overrides={"train.epochs": 0})


def test_the_error_is_one_line_in_a_notebook():
    err = ParameterError("preset='huge' is not one of 'tiny'")
    assert isinstance(err, SpecError) and isinstance(err, ValueError)
    lines = err._render_traceback_()
    assert len(lines) == 1 and "ParameterError" in lines[0] and "preset='huge'" in lines[0]


@pytest.mark.parametrize(("given", "expected"), [
    ({}, {}), ("", {}), (None, {}), ({"train.epochs": 3}, {"train.epochs": 3}),
    (["train.epochs=3"], ["train.epochs=3"]), ("train.epochs=3, model.width=8", ["train.epochs=3", "model.width=8"]),
])
def test_overrides_forms(given, expected):
    assert parse_overrides(given) == expected


def test_overrides_of_another_type_are_refused():
    with pytest.raises(ParameterError, match="overrides=3 must be a dict"):
        parse_overrides(3)


def test_dataset_dir_and_overrides_reach_the_spec(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dataset.yaml").write_text("name: mine\n")  # checked by the run, not here
    spec = tutorial_spec("cpu", pipeline="galaxy", dataset_dir=str(tmp_path / "d"), overrides=["train.epochs=1"])
    assert spec.dataset.path == str(tmp_path / "d") and spec.train.epochs == 1 and spec.name == "galaxy-cpu"
    assert tutorial_spec("tiny").dataset.path == preset_spec("tiny").dataset.path
    assert tutorial_spec("tiny").dataset.synthetic is True  # the preset's own synthetic dataset
    assert spec.dataset.synthetic is False  # a folder of your own must hold a dataset
    assert tutorial_spec("tiny", dataset_dir=str(tmp_path / "d"), synthetic=True).dataset.synthetic is True


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_dataset_dir_that_holds_nothing_fails_in_the_parameters_cell(tmp_path, where):
    folder = tmp_path / "gid-typo"
    if where == "empty":
        folder.mkdir()
    with pytest.raises(ParameterError, match=r"dataset_dir='.*gid-typo': the folder (does not exist|is empty); "
                                             r"give a dataset folder .* or synthetic=True") as err:
        tutorial_spec("tiny", dataset_dir=str(folder))
    assert "\n" not in str(err.value) and not (folder.exists() and any(folder.iterdir()))
    assert tutorial_spec("tiny", dataset_dir=str(folder), synthetic=True).dataset.synthetic is True  # asked for


def test_run_folder_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        run_folder(str(tmp_path / "typo"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match=r"run_dir='.*empty' is not a run folder \(it has no workflow.yml\)"):
        run_folder(str(tmp_path / "empty"))
    (tmp_path / "empty" / "workflow.yml").write_text("x-pegasus: {}\n")
    assert run_folder(str(tmp_path / "empty")) == tmp_path / "empty"
