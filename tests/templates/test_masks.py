"""The mask-detection template: synthetic scenes, the detector's targets, the pipeline end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from mlwf_nb.data.masks_synth import CLASS_SHARES, MASK_CLASSES, draw_face_scenes
from mlwf_nb.errors import DatasetError
from mlwf_nb.pipelines import available_pipelines, get_pipeline, preset_spec
from mlwf_nb.workflow import build_graph, write_run_dir

NAMES = [c["name"] for c in MASK_CLASSES]


def test_scenes_are_deterministic_with_sane_boxes():
    X, B = draw_face_scenes(120, 64, seed=2)
    assert X.shape == (120, 64, 64, 3) and X.dtype == np.uint8 and B.shape == (120, 4, 5)
    assert np.array_equal(X[:7], draw_face_scenes(7, 64, seed=2)[0])  # image i depends on (seed, i) only
    assert not np.array_equal(X, draw_face_scenes(120, 64, seed=3)[0])
    ok = B[..., 4] >= 0
    assert ok[:, 0].all() and ok.sum(axis=1).min() >= 1 and ok.sum(axis=1).max() == 4
    assert (B[~ok] == -1).all()
    boxes = B[ok]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :4] >= 0).all() and (boxes[:, [2, 3]] <= 64).all()
    assert h.min() >= 0.14 * 64 and h.max() <= 0.38 * 64 and (w < h).mean() > 0.9  # heads: taller than wide
    share = np.bincount(boxes[:, 4].astype(int), minlength=3) / len(boxes)
    assert np.all(np.abs(share - np.asarray(CLASS_SHARES)) < 0.1)


def test_a_mask_is_drawn_where_the_class_says():
    X, B = draw_face_scenes(60, 96, seed=4)
    lower = {0: [], 1: []}  # colour spread in the lower face: masks are flat, faces have a red mouth
    for img, rows in zip(X, B, strict=True):
        for x0, y0, x1, y1, cls in rows[rows[:, 4] >= 0]:
            if cls in lower:
                h, w = y1 - y0, x1 - x0
                patch = img[int(y0 + 0.7 * h):int(y1 - 0.1 * h), int(x0 + 0.3 * w):int(x1 - 0.3 * w)]
                lower[int(cls)].append(float(patch[..., 0].astype(int).mean() - patch[..., 1].astype(int).mean()))
    assert np.median(lower[1]) > np.median(lower[0]) + 10  # redness of lips and skin vs. a mask


def test_bad_generator_settings_are_refused():
    with pytest.raises(DatasetError, match="face_range"):
        draw_face_scenes(3, 64, face_range=(0.5, 0.2))


def test_targets_decode_back_to_the_boxes():
    from mlwf_nb.ml.coco import coco_evaluate
    from mlwf_nb.ml.detector import STRIDE, decode, encode_targets

    _, B = draw_face_scenes(24, 64, seed=1)
    t = encode_targets(B, (64 // STRIDE, 64 // STRIDE), 3)
    assert t.shape == (24, 16, 16, 8) and t[..., 7].sum() == (B[..., 4] >= 0).sum()
    assert (t[..., :3].max(axis=(1, 2)) == 1).sum() >= 24  # a peak of 1 at every centre
    heat = np.clip(t[..., :3], 1e-4, 1 - 1e-4)
    grid = np.concatenate([np.log(heat / (1 - heat)), t[..., 3:7]], axis=-1)
    found = decode(grid, score_threshold=0.5)
    m = coco_evaluate(B, found, NAMES, (64, 64))
    assert m["map50"] == pytest.approx(1.0) and m["map"] > 0.95


def test_the_loss_prefers_the_truth():
    import keras

    from mlwf_nb.ml.detector import detection_loss, encode_targets

    _, B = draw_face_scenes(4, 64, seed=1)
    t = encode_targets(B, (16, 16), 3)
    heat = np.clip(t[..., :3], 1e-3, 1 - 1e-3)
    good = np.concatenate([np.log(heat / (1 - heat)), t[..., 3:7]], axis=-1).astype("float32")
    bad = good.copy()
    bad[..., :3] = np.roll(bad[..., :3], 3, axis=2)
    loss = detection_loss(3)
    lg, lb = (float(keras.ops.convert_to_numpy(loss(t, g))) for g in (good, bad))
    assert 0 <= lg < 0.5 < lb


def test_registered_with_presets_and_a_valid_wired_workflow(tmp_path):
    from mlwf_nb import schemas

    assert "masks" in available_pipelines() and get_pipeline("masks").task == "detection"
    for preset in ("tiny", "cpu", "paper"):
        spec = preset_spec(preset, "masks")
        assert spec.model.name == "centernet" and spec.hpo.objective == "val_map50" and spec.augment.rotation == 0
    spec = preset_spec("tiny", "masks", {"dataset.path": str(tmp_path / "data"), "dataset.synthetic": True,
                                         "hpo.strategy": "random",
                                         "hpo.trials": 2, "hpo.parallel": 2, "hpo.space": [
                                             {"name": "train.learning_rate", "type": "float", "min": 1e-3,
                                              "max": 1e-2, "log": True}]})
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec))
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    names = [j["name"] for j in wf["jobs"]]
    assert names == ["verify_samples", "split_samples", "hpo_propose", "trial", "trial", "hpo_select",
                     "train_samples", "evaluate_masks"]
    train = next(j for j in wf["jobs"] if j["name"] == "train_samples")
    outs = {u["lfn"] for u in train["uses"] if u["type"] == "output"}
    assert {"outputs/tensorboard/train/train/events.out.tfevents.train.train",
            "outputs/tensorboard/train/validation/events.out.tfevents.train.validation"} <= outs
    assert "outputs/hpo/best.json" in {u["lfn"] for u in train["uses"] if u["type"] == "input"}
    trials = [j for j in wf["jobs"] if j["name"] == "trial"]
    assert all(any("tensorboard/trial-r0-" in u["lfn"] for u in t["uses"] if u["type"] == "output") for t in trials)
    for job in (j for j in wf["jobs"] if j["name"] in ("train_samples", "evaluate_masks")):  # flat sandbox
        base = [u["lfn"].rsplit("/", 1)[-1] for u in job["uses"]]
        assert len(base) == len(set(base)), job["name"]
    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    assert len(schemas.validate_run_dir(run)) == 4


@pytest.mark.slow
def test_tiny_pipeline_end_to_end_on_the_local_backend(tmp_path):
    import mlwf_nb
    from mlwf_nb.runs import Run

    # each job in an empty folder holding only its declared files (execution.staging=sandbox), as on
    # an HTCondor pool: a path the workflow does not declare fails here
    spec = preset_spec("tiny", "masks", {"dataset.path": str(tmp_path / "data"), "dataset.synthetic": True,
                                         "train.epochs": 1, "execution.staging": "sandbox"})
    run = mlwf_nb.submit(spec, run_dir=tmp_path / "run", wait=True)
    assert run.state == "Success", Run.attach(run.dir).status()
    out = run.dir / "outputs"
    m = json.loads((out / "metrics.json").read_text())
    assert {"map50", "map", "map75", "per_class", "baselines"} <= set(m)
    assert [r["class"] for r in m["per_class"]] == NAMES and m["objects"] > 0
    assert m["baselines"]["empty"]["map50"] == 0.0
    assert len(json.loads((out / "detections.json").read_text())["images"]) == m["images"]
    assert (out / "maps" / "detections.png").stat().st_size > 5000 and "mAP@0.5" in (out / "report.md").read_text()
    assert len(list((out / "tensorboard" / "train").glob("*/events.out.tfevents.*"))) == 2
    kinds = {e.get("kind") for e in run.events() if e.get("type") == "artifact"}
    assert {"model", "detection", "map", "report"} <= kinds
    history = json.loads((out / "history.json").read_text())["history"]
    assert {"loss", "val_loss", "val_map50", "val_map"} <= set(history)


def test_a_search_trial_trains_the_detector_and_reports_val_map50(tmp_path):
    from mlwf_nb.data.masks_synth import generate_masks_dataset
    from mlwf_nb.data.samples import load_shards
    from mlwf_nb.data.shards import write_shard
    from mlwf_nb.ml.tensorboard import event_files
    from mlwf_nb.steps.hpo import trial

    yaml_path = generate_masks_dataset(tmp_path / "data", count=24, size=32, seed=0, max_faces=2)
    X, B = load_shards([tmp_path / "data" / "shards" / "part-000"])
    parts = {p: write_shard(tmp_path / "split" / p, X[s], B[s]) for p, s in
             (("train", slice(0, 16)), ("val", slice(16, 24)))}
    spec = preset_spec("tiny", "masks", {"dataset.path": str(tmp_path / "data"), "dataset.synthetic": True,
                                         "model.width": 4})
    hp, result = tmp_path / "hp.json", tmp_path / "result.json"
    hp.write_text(json.dumps({"round": 0, "trial": 0, "trial_id": "t0", "epochs": 1,
                              "values": {"train.learning_rate": 0.003}}))
    tb = [tmp_path / f for f in event_files("trial[r0,0]")]
    trial(spec, hp, result, [tmp_path / "trial.keras", tmp_path / "trial.keras.json"], parts["train"], parts["val"],
          [yaml_path], [], tb)
    doc = json.loads(result.read_text())
    assert doc["status"] == "ok" and doc["cheap"] is False, doc["error"]
    assert {"loss", "val_loss", "val_map50", "val_map"} <= set(doc["metrics"])
    assert doc["objective"] == doc["metrics"]["val_map50"] and 0.0 <= doc["objective"] <= 1.0
    assert all(f.stat().st_size > 0 for f in tb)
