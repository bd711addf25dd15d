"""The built-in presets: ``tiny`` (tests), ``cpu`` (the tutorial), ``paper`` (the published set-up)."""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "name": "tiny",
        "dataset": {"path": "data/gid-synth-tiny", "scenes": 6, "height": 96, "width": 96,
                    "sources": ["GF-2", "GF-1"]},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "patches": {"sizes": [16, 32], "input_size": 16, "per_scene": 48, "min_purity": 0.5},
        "augment": {"flip": "horizontal_and_vertical"},
        "model": {"name": "small_cnn", "width": 8, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 32, "learning_rate": 3e-3},
        "evaluate": {"window_sizes": [16, 32], "stride_fraction": 1.0, "batch_size": 256},
        "execution": {"jobs": 2, "retries": 1},
    },
    "cpu": {
        "name": "cpu",
        "dataset": {"path": "data/gid-synth-cpu", "scenes": 12, "height": 384, "width": 384,
                    "sources": ["GF-2", "GF-1", "JL-1"]},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "patches": {"sizes": [24, 48, 96], "input_size": 32, "per_scene": 400, "min_purity": 0.6},
        "augment": {"flip": "horizontal_and_vertical", "rotation": 0.0},
        "model": {"name": "small_cnn", "width": 24, "dropout": 0.2},
        "train": {"epochs": 8, "batch_size": 64, "learning_rate": 2e-3},
        "evaluate": {"window_sizes": [24, 48, 96], "stride_fraction": 0.5, "batch_size": 256},
    },
    "paper": {
        "name": "paper",
        "dataset": {"path": "data/gid-synth-paper", "scenes": 150, "height": 6800, "width": 7200,
                    "sources": ["GF-2", "GF-1", "JL-1", "ZY-3", "Sentinel-2A"]},
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        "patches": {"sizes": [56, 112, 224], "input_size": 224, "per_scene": 2000},
        # the paper's augmentation: rotations, zooms, shifts and flips, one affine warp per uint8 patch in the
        # loader threads (mlwf_nb.data.augment; docs/benchmarks.md, row "augment")
        "augment": {"rotation": 0.25, "flip": "horizontal_and_vertical", "zoom": 0.1,
                    "shift_height": 0.1, "shift_width": 0.1},
        "model": {"name": "resnet50", "dropout": 0.0},
        "train": {"epochs": 50, "batch_size": 256, "learning_rate": 1e-3, "optimizer": "sgd",
                  "momentum": 0.9, "weight_decay": 1e-4},
        "evaluate": {"window_sizes": [56, 112, 224], "stride_fraction": 0.5, "batch_size": 256},
        "execution": {"site": "gpus", "gpus": 1, "cores": 8, "memory_mb": 32768,
                      "checkpoint_time": 60, "maxwalltime": 240},
    },
}
