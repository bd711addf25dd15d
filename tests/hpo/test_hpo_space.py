"""Search space: spec rows to keras-tuner hyper-parameters, applying values, validation."""

from __future__ import annotations

import pytest
from keras_tuner.engine import hyperparameters as hp_module

from mlwf_nb.errors import HPOError, SpecError
from mlwf_nb.hpo.space import apply_hp, build_hyperparameters, validate_space
from mlwf_nb.spec import HPOParam, RunSpec


def test_build_maps_types_and_log_sampling(space: list[HPOParam]) -> None:
    hps = build_hyperparameters(space)
    by_name = {hp.name: hp for hp in hps.space}
    lr, bs, opt = by_name["train.learning_rate"], by_name["train.batch_size"], by_name["train.optimizer"]
    assert isinstance(lr, hp_module.Float) and lr.sampling == "log"
    assert (lr.min_value, lr.max_value) == (1e-4, 1e-1)
    assert isinstance(bs, hp_module.Int) and bs.sampling == "log" and bs.max_value == 256
    assert isinstance(opt, hp_module.Choice) and list(opt.values) == ["sgd", "adam", "adamw"]


def test_build_refuses_an_invalid_space() -> None:
    with pytest.raises(HPOError, match=r"min 0\.1 > max 0\.01"):
        build_hyperparameters([HPOParam(name="train.learning_rate", min=0.1, max=0.01)])


def test_apply_hp_sets_key_paths_and_ignores_tuner_keys() -> None:
    spec = RunSpec.from_preset("tiny")
    out = apply_hp(spec, {"train.learning_rate": 0.01, "model.name": "resnet50",
                          "tuner/epochs": 3, "tuner/trial_id": "01"})
    assert out.train.learning_rate == 0.01 and out.model.name == "resnet50"
    assert spec.train.learning_rate == 3e-3  # the original is untouched


@pytest.mark.parametrize(("values", "key"), [
    ({"train.batch_size": 0}, "train.batch_size"),
    ({"train.nope": 1}, "train.nope"),
])
def test_apply_hp_errors_name_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        apply_hp(RunSpec.from_preset("tiny"), values)


@pytest.mark.parametrize(("param", "fragment"), [
    (HPOParam(name="train.learning_rate", min=0.1, max=0.01), "swap them"),
    (HPOParam(name="train.optimizer", type="choice", choices=[]), "choices is empty"),
    (HPOParam(name="train.lr", min=0.1, max=1.0), "unknown key 'train.lr'"),
    (HPOParam(name="train.learning_rate", min=0.0, max=0.1, log=True), "log scale needs min > 0"),
    (HPOParam(name="train.learning_rate", min=None, max=0.1), "need min and max"),
    (HPOParam(name="augment.rotation", min=0.0, max=0.9), "not allowed by the spec"),
    (HPOParam(name="train.optimizer", type="choice", choices=["adam", "lion"]), "'lion'"),
    (HPOParam(name="train.optimizer", type="choice", choices=["adam", 1]), "mix types"),
    (HPOParam(name="train.batch_size", type="float", min=8, max=64), "use type: int"),
    (HPOParam(name="train", min=0, max=1), "section"),
    (HPOParam(name="train.learning_rate", min=1e-4, max=1e-1, log=True, step=1.0), "factor"),
])
def test_validate_space_reports_each_problem(param: HPOParam, fragment: str) -> None:
    problems = validate_space([param])
    assert len(problems) == 1, problems
    assert fragment in problems[0] and param.name in problems[0]


def test_validate_space_accepts_a_good_space_and_flags_duplicates(space: list[HPOParam]) -> None:
    assert validate_space(space) == []
    assert "duplicate" in validate_space([*space, space[0]])[0]
