"""train.distribution=mirrored: the same training path under a data-parallel strategy."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.errors import SpecError
from mlwf_nb.ml.distribute import distribution_scope
from mlwf_nb.ml.models import build_model
from mlwf_nb.ml.train import fit


def test_mirrored_training_runs_and_learns(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 256).astype("int32")
    x = (rng.random((256, 16, 16, 4)) * 40 + y[:, None, None, None] * 200).astype("float32")
    with distribution_scope("mirrored") as replicas:
        assert replicas >= 1
        model = build_model("small_cnn", (16, 16, 4), 2, width=8, dropout=0.0)
        out = fit(model, (x, y), epochs=3, learning_rate=1e-2, checkpoint=tmp_path / "m.keras", batch_size=32)
    assert out["history"]["accuracy"][-1] > 0.8
    assert (tmp_path / "m.keras").exists()


def test_unknown_distribution_is_a_spec_error():
    with pytest.raises(SpecError, match=r"train\.distribution"), distribution_scope("ring-allreduce"):
        pass
