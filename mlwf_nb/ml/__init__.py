"""ml layer: model registry, the one training path, checkpoints, evaluation and plots.

``import mlwf_nb.ml`` does not import TensorFlow/Keras or matplotlib: the names
below load their submodule on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "register_model", "build_model", "available_models",
    "fit", "seed_everything", "make_optimizer",
    "CheckpointExit", "save_checkpoint", "load_checkpoint", "sidecar_path",
    "confusion_matrix", "classification_metrics", "segmentation_metrics", "predict_scene",
    "plot_confusion_matrix", "plot_history", "class_map_rgb", "save_figure",
]

_HOME = {
    "register_model": "models", "build_model": "models", "available_models": "models",
    "fit": "train", "seed_everything": "train", "make_optimizer": "train",
    "CheckpointExit": "checkpoint", "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "sidecar_path": "checkpoint",
    "confusion_matrix": "evaluate", "classification_metrics": "evaluate",
    "segmentation_metrics": "evaluate", "predict_scene": "maps",
    "plot_confusion_matrix": "plots", "plot_history": "plots", "class_map_rgb": "plots",
    "save_figure": "plots",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"mlwf_nb.ml.{_HOME[name]}"), name)
    raise AttributeError(f"module 'mlwf_nb.ml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
