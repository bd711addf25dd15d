"""Galaxy-morphology steps: ``augment-minority`` and ``evaluate-galaxy``.

Split and training are the shared sample steps (:mod:`mlwf_nb.steps.samples`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.landcover import shard_prefixes
from mlwf_nb.steps.registry import step

__all__ = ["augment_minority", "evaluate_galaxy", "oversample_minority", "predict_classes"]


def oversample_minority(X: np.ndarray, y: np.ndarray, target_share: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Add flipped/rotated copies of minority-class images until each class holds ``target_share``.

    A class below ``ceil(target_share * N)`` samples (N: the original count) gets
    copies of its own images (drawn with replacement), each under one of the 7
    non-identity symmetries of the square (rot90 x flip), so no copy is an exact
    duplicate of its source.

    Returns:
        ``(X, y, added)``: originals followed by the copies, and copies per class.
    """
    if not 0.0 <= target_share < 1.0:
        raise StepError(f"augment-minority: target_share must be in [0, 1), got {target_share}")
    counts = np.bincount(y, minlength=int(y.max()) + 1 if len(y) else 0)
    goal = int(np.ceil(target_share * len(y)))
    xs, ys, added = [X], [y], {}
    for cls, have in enumerate(counts):
        if have == 0 or have >= goal:
            continue
        need = goal - int(have)
        src = rng.choice(np.flatnonzero(y == cls), size=need, replace=True)
        ops = rng.integers(1, 8, size=need)  # 1..7: k = op % 4 quarter turns, flip if op >= 4
        copies = X[src].copy()
        for op in range(1, 8):
            sel = np.flatnonzero(ops == op)
            if len(sel):
                turned = np.rot90(copies[sel], k=op % 4, axes=(1, 2))
                copies[sel] = turned[:, :, ::-1] if op >= 4 else turned
        xs.append(copies)
        ys.append(np.full(need, cls, dtype=y.dtype))
        added[cls] = need
    return np.concatenate(xs), np.concatenate(ys), added


@step("augment-minority", outputs=("out",), warm=True)
def augment_minority(train: list[Path], out: list[Path], target_share: float = 0.15, seed: int = 0) -> None:
    """Oversample minority classes of the training shards with flips/rot90 up to ``target_share``."""
    from mlwf_nb.data.samples import load_shards
    from mlwf_nb.data.shards import write_shard

    prefixes, targets = shard_prefixes(train), shard_prefixes(out)
    if not prefixes or len(targets) != 1:
        raise StepError(f"augment-minority: needs training shards and one output shard, got {train} -> {out}")
    X, y = load_shards(prefixes)
    X2, y2, added = oversample_minority(X, y, target_share, np.random.default_rng(seed))
    write_shard(targets[0], X2, y2, {"scene": "train-balanced", "augmented": {str(k): v for k, v in added.items()}})
    before = np.bincount(y).tolist()
    after = np.bincount(y2).tolist()
    emit("log", level="info", message=f"augment-minority: class counts {before} -> {after} "
         f"(target share {target_share:g})")


def predict_classes(model: object, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of ``X`` (uint8) in batches, fed as ShardSequence feeds training (0..255)."""
    out = []
    for start in range(0, len(X), batch_size):
        batch = X[start:start + batch_size].astype("float32")  # raw 0..255 as in training; models rescale
        out.append(np.asarray(model(batch, training=False)))  # type: ignore[operator]
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


@step("evaluate-galaxy", outputs=("metrics", "confusion", "figure", "samples", "report"), warm=True, runs_model=True)
def evaluate_galaxy(spec: RunSpec, dataset: Path, model: Path, test: list[Path], metrics: Path,
                    confusion: Path, figure: Path, samples: Path, report: Path) -> None:
    """Classify the test shard: confusion matrix (json, png), metrics, a grid of predictions, a report."""
    import keras

    from mlwf_nb.data.samples import SampleDataset, load_shards
    from mlwf_nb.ml.evaluate import classification_metrics, confusion_matrix
    from mlwf_nb.ml.plots import plot_confusion_matrix, plot_samples, save_figure
    from mlwf_nb.steps.landcover_eval import _report

    ds = SampleDataset.open(dataset)
    X, y = load_shards(shard_prefixes(test))
    if not len(y):
        raise StepError("evaluate-galaxy: the test shard is empty; raise split.test or dataset.scenes")
    net = keras.models.load_model(model, compile=False)
    pred = predict_classes(net, X, spec.evaluate.batch_size).argmax(axis=-1)
    cm = confusion_matrix(y, pred, ds.num_classes)
    result = classification_metrics(cm, ds.class_names)
    result["majority_baseline"] = float(np.bincount(y, minlength=ds.num_classes).max() / len(y))
    _io.write_json(confusion, {"classes": ds.class_names, "colors": [list(c) for c in ds.class_colors],
                               "matrix": cm.tolist(), "title": "galaxy"})
    _io.write_json(metrics, result)
    save_figure(plot_confusion_matrix(cm, ds.class_names, ds.class_colors), figure)
    shown = np.random.default_rng(spec.seed).permutation(len(y))[:16]
    names = ds.class_names
    titles = [f"{names[y[i]]}\n-> {names[pred[i]]}" for i in shown]
    save_figure(plot_samples(X[shown], titles), samples)
    _io.write_text(report, _report("galaxy", result, names, [samples], what="Predictions on 16 test images"))
    emit("artifact", kind="confusion_matrix", path=str(confusion), figure=str(figure),
         matrix=cm.tolist(), classes=names)
    emit("artifact", kind="map", path=str(samples))
    emit("artifact", kind="report", path=str(report), overall_accuracy=result["overall_accuracy"],
         kappa=result["kappa"])
