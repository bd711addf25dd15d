"""Model registry: names, errors, output shapes, uint8 scaling, lazy import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mlwf_nb.errors import SpecError
from mlwf_nb.ml import models
from mlwf_nb.ml.models import available_models, build_model, register_model


def test_registry_lists_builtin_models():
    assert {"small_cnn", "resnet50", "unet"} <= set(available_models())


def test_unknown_model_lists_valid_names():
    with pytest.raises(SpecError, match=r"unknown model 'vgg'; available models: .*resnet50, small_cnn, unet"):
        build_model("vgg", (16, 16, 4), 5)


def test_register_custom_model():
    calls = []

    @register_model("tiny")
    def tiny(input_shape, num_classes, **kwargs):
        calls.append((input_shape, num_classes, kwargs))
        return "built"

    assert build_model("tiny", [8, 8, 3], 2, width=4) == "built"
    assert calls == [((8, 8, 3), 2, {"width": 4})]
    assert "tiny" in available_models()
    models.MODELS.unregister("tiny")


@pytest.mark.parametrize(("name", "shape", "kwargs", "out"), [
    ("small_cnn", (16, 16, 4), {"width": 8, "dropout": 0.1}, (2, 5)),
    ("resnet50", (32, 32, 4), {"width": 8, "dropout": 0.3}, (2, 5)),  # unknown kwargs ignored
    ("unet", (16, 16, 4), {"width": 4, "depth": 2}, (2, 16, 16, 5)),
])
def test_models_output_softmax_of_right_shape(name, shape, kwargs, out):
    model = build_model(name, shape, 5, **kwargs)
    x = np.random.default_rng(0).integers(0, 256, size=(2, *shape)).astype(np.uint8)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == out
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


def test_inputs_are_scaled_to_unit_range():
    model = build_model("small_cnn", (16, 16, 4), 3, width=4)
    scaled = model.get_layer("to_unit")(np.full((1, 16, 16, 4), 255, dtype=np.uint8))
    np.testing.assert_allclose(np.asarray(scaled), 1.0)


@pytest.mark.parametrize(("name", "shape", "kwargs", "match"), [
    ("unet", (18, 18, 4), {"depth": 2}, "divisible by 4"),
    ("resnet50", (16, 16, 4), {}, "at least 32x32"),
    ("small_cnn", (16, 16), {}, "input_shape"),
])
def test_bad_shapes(name, shape, kwargs, match):
    with pytest.raises(SpecError, match=match):
        build_model(name, shape, 3, **kwargs)
    with pytest.raises(SpecError, match="num_classes"):
        build_model("small_cnn", (16, 16, 4), 1)


def test_import_mlwf_nb_ml_does_not_import_tensorflow():
    code = ("import sys, mlwf_nb.ml, mlwf_nb.ml.models, mlwf_nb.ml.evaluate, mlwf_nb.ml.checkpoint; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
