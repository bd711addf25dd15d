"""Every preset, and their one resolution.

General presets: ``tiny`` (tests, seconds), ``cpu`` (the tutorial), ``paper`` (the
published set-up). A pipeline may have its own table (the galaxy, lung and masks
templates here; an installed pipeline's through ``Pipeline(presets=...)``, registered
when it loads): each entry overrides the general preset of the same name.

One syntax everywhere a preset is accepted (``RunSpec.from_preset``, ``load_spec``,
``mlwf run --preset``, ``submit``, ``SpecModel``, ``Studio``, ``preset_spec``)::

    "tiny"            the land-cover (general) preset
    "galaxy:tiny"     the galaxy template's own tiny
    ("tiny", "lung")  the same as "lung:tiny" where a pipeline is given apart
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mlwf_nb.errors import SpecError

__all__ = ["PRESETS", "PIPELINE_PRESETS", "register_presets", "resolve", "split_preset"]

DEFAULT_PIPELINE = "landcover"

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "name": "tiny",
        "dataset": {"path": "data/gid-synth-tiny", "synthetic": True, "scenes": 6, "height": 96, "width": 96,
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
        "dataset": {"path": "data/gid-synth-cpu", "synthetic": True, "scenes": 12, "height": 384, "width": 384,
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
        "dataset": {"path": "data/gid-synth-paper", "synthetic": True, "scenes": 150, "height": 6800, "width": 7200,
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


# -- the templates' own presets: overrides of the general preset of the same name ------------------

_GALAXY: dict[str, dict[str, Any]] = {
    "tiny": {"dataset.path": "data/galaxy-synth-tiny", "dataset.synthetic": True,
             "dataset.scenes": 320, "dataset.height": 32,
             "dataset.width": 32, "split.train": 0.6, "split.val": 0.2, "split.test": 0.2,
             "model.name": "small_cnn", "model.width": 8, "model.dropout": 0.0,
             "train.epochs": 6, "train.batch_size": 32, "train.learning_rate": 3e-3},
    "cpu": {"dataset.path": "data/galaxy-synth-cpu", "dataset.synthetic": True,
            "dataset.scenes": 3000, "dataset.height": 64,
            "dataset.width": 64, "split.train": 0.7, "split.val": 0.15, "split.test": 0.15,
            "model.name": "small_cnn", "model.width": 16, "model.dropout": 0.2,
            "train.epochs": 10, "train.batch_size": 64, "train.learning_rate": 2e-3},
    # Galaxy10-DECaLS-like (10,000 cut-outs, the spec's maximum; 128 px) on a ResNet-50, on GPU nodes
    "paper": {"dataset.path": "data/galaxy-synth-paper", "dataset.scenes": 10000, "dataset.height": 128,
              "dataset.width": 128, "split.train": 0.8, "split.val": 0.1, "split.test": 0.1,
              "augment.flip": "horizontal_and_vertical", "model.name": "resnet50", "model.dropout": 0.0,
              "train.epochs": 50, "train.batch_size": 128, "train.learning_rate": 1e-3, "train.optimizer": "sgd",
              "train.momentum": 0.9, "train.weight_decay": 1e-4, "execution.site": "gpus", "execution.gpus": 1},
}

_LUNG: dict[str, dict[str, Any]] = {
    "tiny": {"dataset.path": "data/lung-synth-tiny", "dataset.synthetic": True,
             "dataset.scenes": 96, "dataset.height": 32,
             "dataset.width": 32, "split.train": 0.6, "split.val": 0.2, "split.test": 0.2,
             "augment.flip": "horizontal", "model.name": "unet", "model.width": 8, "model.dropout": 0.0,
             "train.epochs": 6, "train.batch_size": 8, "train.learning_rate": 3e-3},
    "cpu": {"dataset.path": "data/lung-synth-cpu", "dataset.synthetic": True,
            "dataset.scenes": 600, "dataset.height": 64,
            "dataset.width": 64, "split.train": 0.7, "split.val": 0.15, "split.test": 0.15,
            "augment.flip": "horizontal", "model.name": "unet", "model.width": 16, "model.dropout": 0.1,
            "train.epochs": 8, "train.batch_size": 16, "train.learning_rate": 2e-3},
    # Montgomery + Shenzhen sized (800 chest X-rays), 256 x 256, a U-Net of width 32, on GPU nodes
    "paper": {"dataset.path": "data/lung-synth-paper", "dataset.scenes": 800, "dataset.height": 256,
              "dataset.width": 256, "split.train": 0.7, "split.val": 0.15, "split.test": 0.15,
              "augment.flip": "horizontal", "model.name": "unet", "model.width": 32, "model.dropout": 0.1,
              "train.epochs": 50, "train.batch_size": 8, "train.learning_rate": 1e-3,
              "execution.site": "gpus", "execution.gpus": 1},
}

_MASKS_COMMON: dict[str, object] = {"model.name": "centernet", "augment.flip": "horizontal", "augment.rotation": 0.0,
                              "augment.zoom": 0.25, "augment.shift_width": 0.15, "augment.shift_height": 0.15,
                              "hpo.objective": "val_map50", "hpo.direction": "max",
                              "dataset.synthetic": True}  # each preset's own folder: synthetic scenes
_MASKS: dict[str, dict[str, Any]] = {
    "tiny": {**_MASKS_COMMON, "dataset.path": "data/masks-synth-tiny", "dataset.scenes": 64, "dataset.height": 64,
             "dataset.width": 64, "split.train": 0.5, "split.val": 0.25, "split.test": 0.25, "model.width": 4,
             "model.dropout": 0.0, "train.epochs": 2, "train.batch_size": 16, "train.learning_rate": 3e-3,
             "evaluate.batch_size": 64},
    "cpu": {**_MASKS_COMMON, "dataset.path": "data/masks-synth-cpu", "dataset.scenes": 2000, "dataset.height": 96,
            "dataset.width": 96, "split.train": 0.75, "split.val": 0.1, "split.test": 0.15, "model.width": 12,
            "model.dropout": 0.0, "train.epochs": 10, "train.batch_size": 32, "train.learning_rate": 2e-3,
            "evaluate.batch_size": 128},
    "paper": {**_MASKS_COMMON, "dataset.path": "data/masks-synth-paper", "dataset.scenes": 10000, "dataset.height": 256,
              "dataset.width": 256, "split.train": 0.8, "split.val": 0.1, "split.test": 0.1, "model.width": 32,
              "model.dropout": 0.1, "train.epochs": 60, "train.batch_size": 64, "train.learning_rate": 1e-3,
              "train.optimizer": "adamw", "evaluate.batch_size": 128},
}

PIPELINE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {"galaxy": _GALAXY, "lung": _LUNG, "masks": _MASKS}
"""Pipeline name -> its presets; a pipeline with a table offers only its own (see :func:`resolve`)."""


def register_presets(pipeline: str, table: Mapping[str, Mapping[str, Any]]) -> None:
    """Make ``table`` (preset -> overrides) the presets of ``pipeline`` (``"pipeline:preset"``)."""
    PIPELINE_PRESETS[pipeline] = {k: dict(v) for k, v in table.items()}


def split_preset(name: str, pipeline: str | None = None) -> tuple[str, str]:
    """``(pipeline, preset)`` of ``"galaxy:tiny"``, or of ``"tiny"`` with ``pipeline`` (default land cover).

    Raises:
        SpecError: ``name`` names another pipeline than ``pipeline``.
    """
    named, _, preset = str(name).rpartition(":")
    if named and pipeline and named != pipeline:
        raise SpecError(f"preset {name!r} belongs to pipeline {named!r}, not {pipeline!r}; "
                        f"give {preset!r} with pipeline {pipeline!r}, or {name!r} alone")
    return named or pipeline or DEFAULT_PIPELINE, preset


def resolve(name: str, pipeline: str | None = None) -> dict[str, Any]:
    """The spec data of a preset (see the module docstring for the syntax).

    Returns:
        Plain spec data: the general preset's, with the pipeline, a run name and the
        pipeline's own overrides (dotted keys) applied by :meth:`RunSpec.from_preset`
        under the key ``"__overrides__"``.

    Raises:
        SpecError: an unknown preset or pipeline table; the message lists the valid ones.
    """
    pipe, preset = split_preset(name, pipeline)
    table = PIPELINE_PRESETS.get(pipe)
    if pipe != DEFAULT_PIPELINE and table is None:
        if preset in PRESETS:  # a pipeline without its own table runs on the general presets
            table = {}
        else:
            raise SpecError(f"unknown preset {name!r}; general presets: {', '.join(sorted(PRESETS))}")
    if table and preset not in table:
        raise SpecError(f"pipeline {pipe!r} has no preset {preset!r}; its presets: {', '.join(table)}")
    if not table and preset not in PRESETS:
        raise SpecError(f"unknown preset {name!r}; expected one of {', '.join(sorted(PRESETS))}"
                        + (f" or a pipeline's own as 'pipeline:preset' ({', '.join(sorted(PIPELINE_PRESETS))})"
                           if PIPELINE_PRESETS else ""))
    data = copy.deepcopy(PRESETS.get(preset, {}))
    if pipe != DEFAULT_PIPELINE:
        data.update(pipeline=pipe, name=f"{pipe}-{preset}")
        data["__overrides__"] = dict((table or {}).get(preset, {}))
    return data
