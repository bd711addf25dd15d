"""RunSpec: validation, YAML round trip, overrides, presets."""

from __future__ import annotations

import pytest

from mlwf_nb.errors import SpecError
from mlwf_nb.spec import PRESETS, RunSpec, load_spec, parse_override


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_round_trip_through_yaml(preset):
    spec = RunSpec.from_preset(preset)
    again = RunSpec.from_yaml(spec.to_yaml())
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_paper_preset_is_the_published_setup():
    spec = RunSpec.from_preset("paper")
    assert spec.patches.sizes == [56, 112, 224]
    assert spec.patches.input_size == 224
    assert spec.model.name == "resnet50"
    # the paper's augmentation: rotations, zooms, shifts and flips (one affine warp per patch in the loader)
    a = spec.augment
    assert (a.rotation, a.zoom, a.shift_height, a.shift_width, a.flip) == (0.25, 0.1, 0.1, 0.1,
                                                                          "horizontal_and_vertical")


def test_overrides_parse_values_as_yaml():
    spec = RunSpec.from_preset("tiny").with_overrides(
        ["train.epochs=3", "train.learning_rate=1e-4", "model.per_source=true", "patches.sizes=[8, 16]"])
    assert spec.train.epochs == 3
    assert spec.train.learning_rate == pytest.approx(1e-4)
    assert spec.model.per_source is True
    assert spec.patches.sizes == [8, 16]


def test_overrides_do_not_mutate_the_original():
    spec = RunSpec.from_preset("tiny")
    spec.with_overrides(["train.epochs=7"])
    assert spec.train.epochs == PRESETS["tiny"]["train"]["epochs"]


@pytest.mark.parametrize(("override", "words"), [
    ("train.epochs=-1", ["train.epochs", ">= 1"]),
    ("train.epochs=abc", ["train.epochs", "integer"]),
    ("train.epocs=3", ["train.epocs", "epochs"]),
    ("trainer.epochs=3", ["trainer", "train"]),
    ("train.learning_rate=0", ["train.learning_rate", "> 0"]),
    ("model.per_source=maybe", ["model.per_source", "true or false"]),
    ("split.train=0.9", ["sum to 1"]),
    ("train.epochs.value=1", ["train.epochs", "not a section"]),
    ("patches.sizes=[]", ["patches.sizes"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(SpecError) as err:
        RunSpec.from_preset("tiny").with_overrides([override])
    for word in words:
        assert word in str(err.value)


def test_spec_error_is_a_value_error():
    with pytest.raises(ValueError):
        RunSpec.from_dict({"train": {"epochs": "x"}})


def test_yaml_python_tags_are_refused():
    text = "name: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(SpecError, match="not valid YAML"):
        RunSpec.from_yaml(text)


def test_invalid_yaml_names_the_source(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: {epochs: [1, 2\n")
    with pytest.raises(SpecError, match=r"bad\.yaml"):
        load_spec(path)


def test_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(tmp_path / "nope.yaml")


def test_hpo_space_checks():
    base = RunSpec.from_preset("tiny")
    with pytest.raises(SpecError, match=r"min 1 > max 0\.1"):
        base.with_overrides({"hpo.strategy": "random", "hpo.space": [
            {"name": "train.learning_rate", "type": "float", "min": 1, "max": 0.1}]})
    with pytest.raises(SpecError, match="choices is empty"):
        base.with_overrides({"hpo.space": [{"name": "model.name", "type": "choice", "choices": []}]})
    with pytest.raises(SpecError, match=r"hpo\.space is empty"):
        base.with_overrides(["hpo.strategy=random"])
    ok = base.with_overrides({"hpo.strategy": "bayesian", "hpo.space": [
        {"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2, "log": True}]})
    assert ok.hpo.space[0].log is True


def test_a_dataset_path_of_your_own_is_real_data():
    """Presets with synthetic data say so; pointing dataset.path elsewhere turns generation off."""
    for name in PRESETS:
        assert RunSpec.from_preset(name).dataset.synthetic is True
    assert RunSpec().dataset.synthetic is False and RunSpec().dataset.path == ""
    tiny = RunSpec.from_preset("tiny")
    assert tiny.with_overrides(["dataset.path=/data/gid"]).dataset.synthetic is False
    both = tiny.with_overrides({"dataset.path": "/tmp/x", "dataset.synthetic": True})
    assert both.dataset.synthetic is True
    assert both.with_overrides(["train.epochs=3"]).dataset.synthetic is True  # other edits keep it
    assert RunSpec.from_yaml("dataset: {path: /data/gid}\n").dataset.synthetic is False


@pytest.mark.parametrize(("value", "expected"), [("dataset", "dataset"), (None, None), (65535, 65535.0),
                                                 ("-9999.5", -9999.5)])
def test_stretch_nodata_is_dataset_a_number_or_none(value, expected):
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.nodata": value})
    assert spec.stretch.nodata == expected
    assert RunSpec.from_yaml(spec.to_yaml()).stretch.nodata == expected


def test_get_and_parse_override():
    spec = RunSpec.from_preset("cpu")
    assert spec.get("train.batch_size") == spec.train.batch_size
    assert parse_override("a.b= [1, 2]") == ("a.b", [1, 2])
    with pytest.raises(SpecError, match=r"key\.path=value"):
        parse_override("novalue")
    with pytest.raises(SpecError, match="unknown key"):
        spec.get("train.nope")


@pytest.mark.parametrize(("preset", "pipeline", "model"), [
    ("tiny", "landcover", "small_cnn"), ("galaxy:tiny", "galaxy", "small_cnn"), ("lung:paper", "lung", "unet"),
    ("masks:tiny", "masks", "centernet")])
def test_one_preset_syntax_everywhere(preset, pipeline, model):
    from mlwf_nb.pipelines import preset_spec
    from mlwf_nb.spec import load_spec
    from mlwf_nb.widgets import SpecModel, Studio

    specs = [RunSpec.from_preset(preset), load_spec(preset=preset), preset_spec(preset), SpecModel(preset).spec,
             Studio(preset).model.spec]
    assert all(s == specs[0] for s in specs)
    assert specs[0].pipeline == pipeline and specs[0].model.name == model


def test_paper_lung_is_the_lung_unet_set_up_and_bad_presets_say_which_exist():
    from mlwf_nb.errors import SpecError
    from mlwf_nb.pipelines import preset_spec

    lung = preset_spec("paper", "lung")
    assert (lung.pipeline, lung.model.name, lung.dataset.height) == ("lung", "unet", 256)
    assert lung == RunSpec.from_preset("lung:paper")
    with pytest.raises(SpecError, match="pipeline 'galaxy' has no preset 'huge'; its presets: tiny, cpu, paper"):
        RunSpec.from_preset("galaxy:huge")
    with pytest.raises(SpecError, match="belongs to pipeline 'galaxy', not 'lung'"):
        preset_spec("galaxy:tiny", "lung")
