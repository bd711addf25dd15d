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

__all__ = ["PIPELINE", "build", "prepare", "TARGET_SHARE", "PRESETS"]

TARGET_SHARE = 0.15
"""augment-minority oversamples every class below this share of the training set."""

PRESETS: dict[str, dict[str, object]] = {
    "tiny": {"dataset.path": "data/galaxy-synth-tiny", "dataset.scenes": 320, "dataset.height": 32,
             "dataset.width": 32, "split.train": 0.6, "split.val": 0.2, "split.test": 0.2,
             "model.name": "small_cnn", "model.width": 8, "model.dropout": 0.0,
             "train.epochs": 6, "train.batch_size": 32, "train.learning_rate": 3e-3},
    "cpu": {"dataset.path": "data/galaxy-synth-cpu", "dataset.scenes": 3000, "dataset.height": 64,
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
