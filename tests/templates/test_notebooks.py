"""The template notebooks 06 (galaxy), 07 (lung) and 08 (masks) run through papermill with tiny parameters."""

from __future__ import annotations

import json

import pytest

from tests.notebooks.papermill_run import execute, outputs, pngs

TEMPLATES = ["06_galaxy_morphology.ipynb", "07_lung_segmentation.ipynb", "08_mask_detection.ipynb"]


def _run(name, tmp_path, overrides):
    nb = execute(name, tmp_path / f"out-{name}", preset="tiny", dataset_dir=str(tmp_path / "data"), synthetic=True,
                 run_dir=str(tmp_path / "run"), backend="local", overrides=overrides, timeout=600)
    return json.dumps(outputs(nb)), len(pngs(nb))


@pytest.mark.slow
def test_06_galaxy(tmp_path):
    text, images = _run(TEMPLATES[0], tmp_path, {"train.epochs": 2, "dataset.scenes": 160})
    assert "run finished: Success" in text and "test accuracy" in text
    assert text.count("| precision | recall |") == 1  # the report's per-class table, once
    assert images >= 3  # sample grid, curves, confusion matrix (and the prediction grid)
    assert (tmp_path / "run" / "outputs" / "confusion_matrix.png").exists()


@pytest.mark.slow
def test_07_lung(tmp_path):
    text, images = _run(TEMPLATES[1], tmp_path, {"train.epochs": 2, "dataset.scenes": 40,
                                                 "execution.staging": "sandbox"})  # jobs as on a pool
    assert "run finished: Success" in text and "Dice (lung)" in text
    assert images >= 3  # samples with masks, curves, confusion matrix (and the overlays)
    metrics = json.loads((tmp_path / "run" / "outputs" / "metrics.json").read_text())
    assert metrics["dice_lung"] > 0.0 and (tmp_path / "run" / "outputs" / "maps" / "overlays.png").exists()


@pytest.mark.slow
def test_08_masks(tmp_path):
    text, images = _run(TEMPLATES[2], tmp_path, {"train.epochs": 1, "dataset.scenes": 48})
    assert "run finished: Success" in text and "mAP@0.5" in text and "mask_weared_incorrect" in text
    assert text.count(">AP@0.5:0.95<") + text.count("| AP@0.5:0.95 |") == 1  # the per-class table once
    assert images >= 3  # scenes with true boxes, curves, test images with detections
    metrics = json.loads((tmp_path / "run" / "outputs" / "metrics.json").read_text())
    assert 0.0 <= metrics["map50"] <= 1.0 and (tmp_path / "run" / "outputs" / "maps" / "detections.png").exists()
