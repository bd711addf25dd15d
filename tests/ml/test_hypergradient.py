"""Hypergradient descent of the learning rate: the rule, fit(), events, checkpoints, the spec."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mlwf_nb.errors import SpecError
from mlwf_nb.ml.hypergradient import HypergradientAdam, HypergradientSGD
from mlwf_nb.ml.train import fit, make_optimizer, seed_everything
from mlwf_nb.spec import RunSpec


def _steps_on_a_parabola(opt: keras.optimizers.Optimizer, a: float, n: int) -> float:
    """``n`` steps on f(w) = a w^2 / 2 from w = 1; returns the learning rate after them."""
    w = keras.Variable(np.array([1.0], dtype="float32"))
    for _ in range(n):
        opt.apply([a * w.value], [w])
    return float(keras.ops.convert_to_numpy(opt.learning_rate))


@pytest.mark.parametrize(("cls", "lr", "a", "factor"), [
    (HypergradientSGD, 0.1, 1.0, 1.1),    # lr * a < 1: successive gradients agree -> x (1 + rate)
    (HypergradientSGD, 1.5, 1.0, 0.9),    # lr * a > 1: every step overshoots -> x (1 - rate)
    (HypergradientAdam, 0.01, 1.0, 1.1),  # Adam's small steps towards 0 agree too
])
def test_the_rule_on_a_parabola(cls: type, lr: float, a: float, factor: float) -> None:
    """In one dimension the cosine is exactly +1 or -1: n steps adapt n - 1 times."""
    opt = cls(learning_rate=lr, hypergradient_rate=0.1)
    assert _steps_on_a_parabola(opt, a, 3) == pytest.approx(lr * factor**2, rel=1e-5)


def test_rate_must_be_in_the_open_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"hypergradient_rate must be in \(0, 1\)"):
        make_optimizer("sgd", 0.1, hypergradient_rate=1.0)
    assert type(make_optimizer("adamw", 0.1, hypergradient_rate=0.1)).__name__ == "HypergradientAdamW"
    assert type(make_optimizer("adam", 0.1)) is keras.optimizers.Adam


def _model() -> keras.Model:
    seed_everything(0)
    return keras.Sequential([keras.Input((16, 16, 4)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])


def test_fit_adapts_reports_and_resumes_the_learning_rate(tmp_path, patches, events_of) -> None:
    """A too-small SGD rate grows; each epoch event carries it; a resume continues from it."""
    ckpt = tmp_path / "model.keras"
    common = {"learning_rate": 1e-3, "optimizer": "sgd", "momentum": 0.0, "batch_size": 32,
              "lr_hypergradient": 0.05, "checkpoint": ckpt}
    out = fit(_model(), *patches, epochs=2, **common)
    rates = out["history"]["learning_rate"]
    assert len(rates) == 2 and rates[0] > 1e-3 and rates[1] > rates[0]
    assert [e["metrics"]["learning_rate"] for e in events_of("epoch")] == rates

    again = _model()
    same = fit(again, *patches, epochs=2, **common)  # resumes at epoch 2 and trains nothing
    assert same["resumed_from_epoch"] == 2
    assert float(keras.ops.convert_to_numpy(again.optimizer.learning_rate)) == pytest.approx(rates[-1])

    plain = fit(_model(), *patches, epochs=1, learning_rate=1e-3, batch_size=32)
    assert "learning_rate" not in plain["history"]  # off by default: a fixed rate is not logged


def test_spec_fields_and_their_checks() -> None:
    spec = RunSpec().with_overrides({"train.lr_hypergradient": True})
    assert spec.train.lr_hypergradient_rate == 0.02
    with pytest.raises(SpecError, match=r"train\.lr_hypergradient_rate"):
        spec.with_overrides({"train.lr_hypergradient_rate": 0.0})
    with pytest.raises(SpecError, match=r"train\.lr_hypergradient does not work with train\.distribution"):
        spec.with_overrides({"train.distribution": "mirrored"})
