"""Real Keras training on the tiny presets, through the steps exactly as the jobs call them.

The CNN must beat the majority class on galaxies, the U-Net must beat the all-background
Dice (0) on lungs by a clear margin; epoch metrics carry IoU/Dice for segmentation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlwf_nb.pipelines import get_pipeline, preset_spec
from mlwf_nb.steps.galaxy import augment_minority, evaluate_galaxy, oversample_minority
from mlwf_nb.steps.lung import evaluate_lung, lung_metrics
from mlwf_nb.steps.samples import split_samples, train_samples, verify_samples

EXT = (".x.npy", ".y.npy", ".json")


def _prepare(name, tmp_path):
    spec = preset_spec("tiny", name, {"dataset.path": str(tmp_path / "data"), "dataset.synthetic": True})
    get_pipeline(name).prepare(spec)
    root = tmp_path / "data"
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    verify_samples(root / "dataset.yaml", root / "manifest.json", files,
                   [f.relative_to(root).as_posix() for f in files], tmp_path / "integrity.json")
    parts = {p: [tmp_path / "split" / f"{p}{e}" for e in EXT] for p in ("train", "val", "test")}
    (tmp_path / "split").mkdir()
    split_samples(spec, root / "dataset.yaml", tmp_path / "integrity.json", [f for f in files if "shards" in str(f)],
                  [f for v in parts.values() for f in v])
    return spec, root / "dataset.yaml", parts


def _train(spec, yaml_path, train, val, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    train_samples(spec, yaml_path, train, val, out / "model.keras", out / "history.json",
                  [tmp_path / "ckpt.keras", tmp_path / "ckpt.keras.json"], [], [])
    return out, json.loads((out / "history.json").read_text())["history"]


def test_oversampling_reaches_the_target_share_with_transformed_copies():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (100, 8, 8, 3), dtype=np.uint8)
    y = np.array([0] * 80 + [1] * 15 + [2] * 5, dtype=np.int32)
    X2, y2, added = oversample_minority(X, y, 0.2, rng)
    assert added == {1: 5, 2: 15} and np.bincount(y2).tolist() == [80, 20, 20]
    assert np.array_equal(X2[:100], X)
    originals = {X[i].tobytes() for i in range(100)}
    assert not any(X2[i].tobytes() in originals for i in range(100, len(X2)))  # never an exact duplicate
    symmetric = {np.rot90(X[i], k).tobytes() for i in range(80, 100) for k in range(4)}
    symmetric |= {np.rot90(X[i], k)[:, ::-1].tobytes() for i in range(80, 100) for k in range(4)}
    assert all(X2[i].tobytes() in symmetric for i in range(100, len(X2)))


def test_lung_metrics_baseline():
    truth = np.zeros((2, 4, 4), np.int32)
    truth[:, 1:3, 1:3] = 1
    perfect = lung_metrics(truth, truth)
    assert perfect["dice_lung"] == 1.0 and perfect["baseline_all_background"]["dice_lung"] == 0.0
    assert perfect["baseline_all_background"]["pixel_accuracy"] == 0.75


@pytest.mark.slow
def test_galaxy_cnn_beats_chance(tmp_path):
    spec, yaml_path, parts = _prepare("galaxy", tmp_path)
    balanced = [tmp_path / "split" / f"balanced{e}" for e in EXT]
    augment_minority(parts["train"], balanced, target_share=0.15, seed=0)
    y_bal = np.load(balanced[1])
    assert np.bincount(y_bal).min() >= int(np.ceil(0.15 * len(np.load(parts["train"][1]))))
    out, hist = _train(spec, yaml_path, balanced, parts["val"], tmp_path)
    assert len(hist["val_accuracy"]) == spec.train.epochs
    evaluate_galaxy(spec, yaml_path, out / "model.keras", parts["test"], out / "metrics.json", out / "cm.json",
                    out / "cm.png", out / "samples.png", out / "report.md")
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall_accuracy"] > m["majority_baseline"] + 0.2 and m["kappa"] > 0.4, m
    assert (out / "cm.png").stat().st_size > 1000 and (out / "samples.png").stat().st_size > 1000
    assert json.loads((out / "cm.json").read_text())["classes"][3] == "spiral"
    report = (out / "report.md").read_text()  # whole images: no class-border line (that is the maps')
    assert "- overall accuracy: " in report and "| spiral |" in report and "class border" not in report


@pytest.mark.slow
def test_unet_dice_beats_all_background(tmp_path):
    spec, yaml_path, parts = _prepare("lung", tmp_path)
    out, hist = _train(spec, yaml_path, parts["train"], parts["val"], tmp_path)
    assert {"dice", "iou", "val_dice", "val_iou"} <= set(hist)
    assert hist["val_dice"][-1] > hist["val_dice"][0]
    evaluate_lung(spec, yaml_path, out / "model.keras", parts["test"], out / "metrics.json", out / "cm.json",
                  out / "cm.png", out / "overlays.png", out / "report.md")
    m = json.loads((out / "metrics.json").read_text())
    assert m["baseline_all_background"]["dice_lung"] == 0.0
    assert m["dice_lung"] > 0.7 and m["iou_lung"] > 0.5, m
    assert m["pixel_accuracy"] > m["baseline_all_background"]["pixel_accuracy"] + 0.1
    assert (out / "overlays.png").stat().st_size > 1000


@pytest.mark.slow
def test_lung_trial_reports_dice_and_the_training_takes_best_json(tmp_path):
    from mlwf_nb.steps.hpo import trial

    spec, yaml_path, parts = _prepare("lung", tmp_path)
    spec = spec.with_overrides({"hpo.objective": "val_dice"})
    hp, result = tmp_path / "hp.json", tmp_path / "result.json"
    hp.write_text(json.dumps({"round": 0, "trial": 0, "trial_id": "t0", "epochs": 1,
                              "values": {"train.learning_rate": 0.003}}))
    trial(spec, hp, result, [tmp_path / "trial.keras"], parts["train"], parts["val"], [yaml_path], [], [])
    doc = json.loads(result.read_text())
    assert doc["status"] == "ok" and doc["cheap"] is False, doc["error"]
    assert {"val_dice", "val_iou", "dice", "iou"} <= set(doc["metrics"])
    assert doc["objective"] == doc["metrics"]["val_dice"] and 0 <= doc["objective"] <= 1

    best = tmp_path / "best.json"  # the search's choice overrides the preset (6 epochs)
    best.write_text(json.dumps({"values": {"train.epochs": 1, "train.learning_rate": 0.003}}))
    out = tmp_path / "out"
    out.mkdir()
    train_samples(spec, yaml_path, parts["train"], parts["val"], out / "model.keras", out / "history.json",
                  [tmp_path / "ckpt.keras", tmp_path / "ckpt.keras.json"], [best], [])
    assert len(json.loads((out / "history.json").read_text())["history"]["val_dice"]) == 1
