"""model.name=unet on land cover: trained on label masks (unlabeled pixels ignored), maps stitched per pixel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlwf_nb.data.shards import read_shard
from mlwf_nb.runs import submit

pytestmark = pytest.mark.slow


def test_tiny_unet_run(tmp_path):
    run = submit("tiny", run_dir=tmp_path / "run", wait=True, overrides=[
        f"dataset.path={tmp_path}/data", "dataset.synthetic=true", "dataset.scenes=4", "dataset.height=64",
        "dataset.width=64", "patches.sizes=[16, 32]", "patches.input_size=16", "patches.per_scene=16",
        "model.name=unet", "model.width=4", "train.epochs=1", "evaluate.window_sizes=[16]", "execution.jobs=2"])
    assert run.state == "Success", run.status()["mlwf"]
    shard = next((run.dir / "work").rglob("*.x.npy"))
    x, y, _ = read_shard(str(shard)[: -len(".x.npy")])
    assert y.shape == x.shape[:3]  # a label mask per patch, not one class
    assert set(np.unique(y)) <= set(range(6)) and 5 in np.unique(y)  # 5 classes + the ignored unlabeled class
    metrics = json.loads((run.dir / "outputs" / "metrics.json").read_text())
    assert metrics["support"] > 0 and 0.0 <= metrics["border"]["overall_accuracy"] <= 1.0
    report = run.outputs()["report"].read_text()
    assert f"- overall accuracy within {metrics['border']['width']} px of a class border: " in report
