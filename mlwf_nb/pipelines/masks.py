"""The mask-detection pipeline: find faces and tell with mask / without / worn incorrectly.

integrity -> split-samples -> (hpo rounds) -> train-samples (the single-stage detector, box-preserving
augmentation) -> evaluate-masks (COCO mAP@0.5 and @0.5:0.95, per-class precision/recall, boxes)

Spec sections used: ``dataset`` (``scenes`` = number of images, ``height`` = ``width`` = image
size, ``seed``), ``split``, ``augment`` (``flip: horizontal``, ``zoom``, ``shift_width``,
``shift_height``; no rotation), ``model`` (``centernet``), ``train``, ``hpo`` (trials report
``val_map50``: ``hpo.objective=val_map50``), ``evaluate.batch_size``, ``execution``.
"""

from __future__ import annotations

from pathlib import Path

from mlwf_nb.pipelines._samples import DATA, OUT, add_split, add_training, prepare_samples
from mlwf_nb.pipelines.base import Graph, Pipeline
from mlwf_nb.pipelines.search import add_search
from mlwf_nb.spec import RunSpec

__all__ = ["PIPELINE", "build", "prepare", "PRESETS"]

_COMMON: dict[str, object] = {"model.name": "centernet", "augment.flip": "horizontal", "augment.rotation": 0.0,
                              "augment.zoom": 0.25, "augment.shift_width": 0.15, "augment.shift_height": 0.15,
                              "hpo.objective": "val_map50", "hpo.direction": "max"}
PRESETS: dict[str, dict[str, object]] = {
    "tiny": {**_COMMON, "dataset.path": "data/masks-synth-tiny", "dataset.scenes": 64, "dataset.height": 64,
             "dataset.width": 64, "split.train": 0.5, "split.val": 0.25, "split.test": 0.25, "model.width": 4,
             "model.dropout": 0.0, "train.epochs": 2, "train.batch_size": 16, "train.learning_rate": 3e-3,
             "evaluate.batch_size": 64},
    "cpu": {**_COMMON, "dataset.path": "data/masks-synth-cpu", "dataset.scenes": 2000, "dataset.height": 96,
            "dataset.width": 96, "split.train": 0.75, "split.val": 0.1, "split.test": 0.15, "model.width": 12,
            "model.dropout": 0.0, "train.epochs": 10, "train.batch_size": 32, "train.learning_rate": 2e-3,
            "evaluate.batch_size": 128},
    "paper": {**_COMMON, "dataset.path": "data/masks-synth-paper", "dataset.scenes": 10000, "dataset.height": 256,
              "dataset.width": 256, "split.train": 0.8, "split.val": 0.1, "split.test": 0.1, "model.width": 32,
              "model.dropout": 0.1, "train.epochs": 60, "train.batch_size": 64, "train.learning_rate": 1e-3,
              "train.optimizer": "adamw", "evaluate.batch_size": 128},
}


def _generate(spec: RunSpec, root: Path) -> None:
    from mlwf_nb.data.masks_synth import generate_masks_dataset
    from mlwf_nb.errors import SpecError

    if spec.dataset.height != spec.dataset.width:
        raise SpecError(f"masks: the synthetic scenes are square; got dataset.height={spec.dataset.height}, "
                        f"dataset.width={spec.dataset.width} (set both to one size, a multiple of 16)")
    generate_masks_dataset(root, count=spec.dataset.scenes, size=spec.dataset.height, seed=spec.dataset.seed)


def prepare(spec: RunSpec) -> None:
    """Generate the synthetic face scenes when the dataset is missing; write its manifest."""
    prepare_samples(spec, _generate)


def build(spec: RunSpec, g: Graph) -> None:
    """Add the mask-detection jobs for ``spec`` to ``g``."""
    parts = add_split(spec, g)
    best = add_search(spec, g, train=parts["train"], val=parts["val"], dataset=f"{DATA}/dataset.yaml")
    model = add_training(g, parts["train"], parts["val"], best)
    g.add("evaluate-masks", "evaluate", dataset=f"{DATA}/dataset.yaml", model=model, test=parts["test"],
          metrics=f"{OUT}/metrics.json", detections=f"{OUT}/detections.json", figure=f"{OUT}/maps/detections.png",
          report=f"{OUT}/report.md")


PIPELINE = Pipeline(name="masks", build=build, prepare=prepare, task="detection", presets=PRESETS,
                    description="Face-mask detection (3 classes) with a single-stage detector, COCO mAP")
