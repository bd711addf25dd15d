"""The lung-segmentation pipeline: a U-Net segments the lung fields of chest X-rays.

integrity -> split-samples -> (hpo rounds) -> train-samples (unet, per-pixel loss, IoU/Dice metrics)
-> evaluate-lung

Spec sections used: ``dataset`` (``scenes`` = number of images, ``height``,
``width``, ``seed``), ``split``, ``augment`` (flips only: image and mask flip
together), ``model`` (``unet``), ``train``, ``hpo`` (``hpo.objective=val_dice`` or ``val_iou``),
``evaluate.batch_size``, ``execution``.
"""

from __future__ import annotations

from pathlib import Path

from mlwf_nb.pipelines._samples import DATA, OUT, add_split, add_training, prepare_samples
from mlwf_nb.pipelines.base import Graph, Pipeline
from mlwf_nb.pipelines.search import add_search
from mlwf_nb.spec import RunSpec
from mlwf_nb.spec.presets import PIPELINE_PRESETS

__all__ = ["PIPELINE", "build", "prepare", "PRESETS"]

PRESETS = PIPELINE_PRESETS["lung"]
"""The template's own presets (kept with every preset in :mod:`mlwf_nb.spec.presets`)."""


def _generate(spec: RunSpec, root: Path) -> None:
    from mlwf_nb.data.lung_synth import generate_lung_dataset

    generate_lung_dataset(root, count=spec.dataset.scenes, height=spec.dataset.height, width=spec.dataset.width,
                          seed=spec.dataset.seed)


def prepare(spec: RunSpec) -> None:
    """Generate the synthetic chest X-rays when the dataset is missing; write its manifest."""
    prepare_samples(spec, _generate)


def build(spec: RunSpec, g: Graph) -> None:
    """Add the lung jobs for ``spec`` to ``g``."""
    parts = add_split(spec, g)
    best = add_search(spec, g, train=parts["train"], val=parts["val"], dataset=f"{DATA}/dataset.yaml")
    model = add_training(g, parts["train"], parts["val"], best)
    g.add("evaluate-lung", "evaluate", dataset="dataset/dataset.yaml", model=model, test=parts["test"],
          metrics=f"{OUT}/metrics.json", confusion=f"{OUT}/confusion_matrix.json",
          figure=f"{OUT}/confusion_matrix.png", overlays=f"{OUT}/maps/overlays.png", report=f"{OUT}/report.md")


PIPELINE = Pipeline(name="lung", build=build, prepare=prepare, task="segmentation", presets=PRESETS,
                    description="Lung-field segmentation of chest X-rays with a U-Net (Dice, IoU)")
