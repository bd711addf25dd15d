"""Widgets follow the dataset's layout/task and the run's events, not the pipeline's name (headless)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mlwf_nb.data.galaxy_synth import generate_galaxy_dataset
from mlwf_nb.data.lung_synth import generate_lung_dataset
from mlwf_nb.data.samples import SampleDataset
from mlwf_nb.views import figures, scenes
from mlwf_nb.widgets import DatasetPicker, PatchExplorer, RunMonitor, SpecModel, Studio

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sample_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("samples")
    generate_galaxy_dataset(base / "galaxy", count=10, size=32, seed=0)
    generate_lung_dataset(base / "lung", count=6, height=32, width=32, seed=0)
    return {"galaxy": base / "galaxy", "lung": base / "lung"}


@pytest.mark.parametrize("name", ["galaxy", "lung"])
def test_picker_shows_a_sample_grid_for_the_samples_layout(sample_dirs, name):
    picker = DatasetPicker(SpecModel("tiny"))
    picker.path = str(sample_dirs[name])
    ds = picker.samples
    assert picker.error == "" and picker.dataset is None and isinstance(ds, SampleDataset)
    task = "segmentation" if name == "lung" else "classification"
    assert ds.task == task and task in picker._table.value and ds.class_names[0] in picker._table.value
    assert bytes(picker._grid.value).startswith(PNG) and picker.split == {}
    picker.path = str(sample_dirs[name] / "nothing-here")  # back to the empty state
    assert picker.samples is None and bytes(picker._grid.value) == b"" and "Generate synthetic" in picker.error


def test_sample_grid_titles_by_task_and_mask_overlay(sample_dirs):
    galaxy = SampleDataset.open(sample_dirs["galaxy"])
    images, titles = scenes.sample_grid(galaxy, n=4)
    assert len(images) == 4 and all(t.split(": ")[1] in galaxy.class_names for t in titles)
    lung = SampleDataset.open(sample_dirs["lung"])
    images, titles = scenes.sample_grid(lung, n=3)
    X, y = lung.load()
    assert all("%" in t and "lung" in t for t in titles)
    mask = y[0] > 0
    assert mask.any() and images[0].shape == (32, 32, 3)
    gray = np.repeat(X[0][..., :1], 3, axis=-1)
    assert np.array_equal(images[0][~mask], gray[~mask]) and not np.array_equal(images[0][mask], gray[mask])


def test_patch_explorer_degrades_to_a_message_and_hands_on_a_sample(sample_dirs):
    ds = SampleDataset.open(sample_dirs["lung"])
    explorer = PatchExplorer(SpecModel("tiny"))
    explorer.samples = ds
    assert "sample dataset" in explorer.message and "segmentation" in explorer._message.value
    assert explorer.patch.shape == ds.shape and explorer._scene.options == ()
    explorer.samples = None
    assert explorer.message == ""


def test_studio_passes_a_sample_dataset_through_to_the_augmentation_preview(sample_dirs):
    studio = Studio("tiny", submit=lambda *a, **k: None)
    studio.picker.path = str(sample_dirs["galaxy"])
    assert studio.patches.samples is studio.picker.samples is not None
    assert studio.augment.preview is not None and studio.augment.preview.shape[1:] == (32, 32, 3)


def test_history_figure_has_a_panel_per_metric_pair():
    fig = figures.history_figure({"loss": [1, 0.5], "val_loss": [1.1, 0.6], "dice": [0.5, 0.8],
                                  "val_dice": [0.4, 0.7], "iou": [0.3, 0.6], "val_iou": [0.2, 0.5]})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "dice", "iou"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_monitor_shows_segmentation_results_and_the_overlay(tmp_path):
    overlay = tmp_path / "outputs" / "maps" / "overlays.png"
    overlay.parent.mkdir(parents=True)
    overlay.write_bytes(figures.figure_png(figures.images_figure([np.zeros((4, 4, 3), np.uint8)])))
    evs = [{"type": "run_started"}]
    evs += [{"type": "epoch", "job": "train_ID1", "epoch": e,
             "metrics": {"loss": 1 / e, "val_loss": 1.2 / e, "dice": 0.5 + e / 10, "val_dice": 0.4 + e / 10,
                         "iou": 0.3 + e / 10, "val_iou": 0.2 + e / 10}} for e in (1, 2)]
    evs += [{"type": "artifact", "kind": "segmentation", "path": "outputs/metrics.json", "dice": 0.9712,
             "iou": 0.944, "pixel_accuracy": 0.99},
            {"type": "artifact", "kind": "map", "path": "outputs/maps/overlays.png"},
            {"type": "run_finished", "state": "Success"}]
    lines = [json.dumps({"v": 1, "seq": i + 1, "ts": time.time(), **e}) for i, e in enumerate(evs)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    monitor = RunMonitor(tmp_path, poll_interval=0.02)
    assert monitor.wait(timeout=60, show=False) == "Success"
    assert {"dice", "val_dice", "iou", "val_iou"} <= set(monitor.history)
    assert monitor.segmentation["dice"] == 0.9712 and monitor.confusion == {}
    html = monitor._segmentation.value
    assert "0.9712" in html and "0.9440" in html and "pixel accuracy" in html
    assert monitor.maps == [str(overlay)] and bytes(monitor._map.value) == overlay.read_bytes()
    assert bytes(monitor._curves.value).startswith(PNG)
