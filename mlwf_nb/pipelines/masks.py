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
from mlwf_nb.spec.presets import PIPELINE_PRESETS

__all__ = ["PIPELINE", "build", "prepare", "PRESETS"]

PRESETS = PIPELINE_PRESETS["masks"]
"""The template's own presets (kept with every preset in :mod:`mlwf_nb.spec.presets`)."""


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
