"""The galaxy-morphology pipeline: classify galaxy images into five morphology classes.

integrity -> split-samples (stratified by class) -> augment-minority -> (hpo rounds) -> train-samples
-> evaluate-galaxy

Spec sections used: ``dataset`` (``scenes`` = number of images, ``height`` = image
size, ``seed``), ``split``, ``augment`` (flips while training), ``model``
(``small_cnn`` by default), ``train``, ``hpo`` (trials train on the balanced split),
``evaluate.batch_size``, ``execution``.
"""

from __future__ import annotations

from pathlib import Path

from mlwf_nb.pipelines._samples import DATA, OUT, WORK, add_split, add_training, prepare_samples
from mlwf_nb.pipelines.base import Graph, Pipeline
from mlwf_nb.pipelines.search import add_search
from mlwf_nb.spec import RunSpec
from mlwf_nb.spec.presets import PIPELINE_PRESETS

__all__ = ["PIPELINE", "build", "prepare", "TARGET_SHARE", "PRESETS"]

TARGET_SHARE = 0.15
"""augment-minority oversamples every class below this share of the training set."""

PRESETS = PIPELINE_PRESETS["galaxy"]
"""The template's own presets (kept with every preset in :mod:`mlwf_nb.spec.presets`)."""


def _generate(spec: RunSpec, root: Path) -> None:
    from mlwf_nb.data.galaxy_synth import generate_galaxy_dataset

    generate_galaxy_dataset(root, count=spec.dataset.scenes, size=spec.dataset.height, seed=spec.dataset.seed)


def prepare(spec: RunSpec) -> None:
    """Generate the synthetic galaxy set when the dataset is missing; write its manifest."""
    prepare_samples(spec, _generate)


def build(spec: RunSpec, g: Graph) -> None:
    """Add the galaxy jobs for ``spec`` to ``g``."""
    parts = add_split(spec, g)
    balanced = [f"{WORK}/split/train-balanced{ext}" for ext in (".x.npy", ".y.npy", ".json")]
    g.add("augment-minority", train=parts["train"], out=balanced, target_share=TARGET_SHARE, seed=spec.seed)
    best = add_search(spec, g, train=balanced, val=parts["val"], dataset=f"{DATA}/dataset.yaml")
    model = add_training(g, balanced, parts["val"], best)
    g.add("evaluate-galaxy", "evaluate", dataset="dataset/dataset.yaml", model=model, test=parts["test"],
          metrics=f"{OUT}/metrics.json", confusion=f"{OUT}/confusion_matrix.json",
          figure=f"{OUT}/confusion_matrix.png", samples=f"{OUT}/maps/predictions.png", report=f"{OUT}/report.md")


PIPELINE = Pipeline(name="galaxy", build=build, prepare=prepare, task="classification", presets=PRESETS,
                    description="Galaxy morphology (5 classes) from RGB cut-outs, minority oversampling")
