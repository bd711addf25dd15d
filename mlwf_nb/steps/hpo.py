"""HPO workflow steps: ``hpo-propose``, ``trial`` and ``hpo-select``.

``hpo-propose[r] -> trial[r, 1..K] -> hpo-propose[r+1] -> ... -> hpo-select``.
The oracle state is one JSON file per round (``r{r}.state.json``): round r reads
round r-1's as an input and writes its own as an output, so the DAG edges are
explicit. A trial never fails the workflow because training failed: the error is
recorded in ``result.json`` (status ``failed``) and the job exits 0; the next
``hpo-propose`` counts consecutive failures and stops the search only past
``hpo.max_consecutive_failures``.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlwf_nb._io import atomic_path, read_json, write_json
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.registry import step

__all__ = ["hpo_propose", "trial", "hpo_select"]


@step("hpo-propose", outputs=("hp", "state_out"), warm=True)
def hpo_propose(spec: RunSpec, state: list[Path], results: list[Path], hp: list[Path],
                state_out: Path, round: int) -> None:
    """Propose one round of trials: write each trial's hp.json and the new oracle state.

    Args:
        spec: The run's spec (``hpo`` section; ``train.epochs`` is Hyperband's budget).
        state: The previous round's state file (none in round 0).
        results: The previous round's ``result.json`` files.
        hp: This round's ``hp.json`` outputs, one per trial job.
        state_out: This round's state file (e.g. ``work/hpo/r{r}.state.json``).
        round: The round index r (from 0).
    """
    from mlwf_nb.hpo.rounds import propose

    if len(state) > 1:
        raise StepError(f"hpo-propose takes at most one --state file, got {len(state)}")
    if round > 0 and not state:
        raise StepError(f"hpo-propose round {round} needs --state (the state of round {round - 1})")
    propose(state_out.parent, round, list(results), spec.hpo, list(hp),
            state_in=state[0] if state else None, state_out=state_out,
            max_epochs=spec.train.epochs)


@step("trial", outputs=("result", "tensorboard"), checkpoints=("checkpoint",), warm=True, runs_model=True)
def trial(spec: RunSpec, hp: Path, result: Path, checkpoint: list[Path], train: list[Path],
          val: list[Path], dataset: list[Path], parents: list[Path], tensorboard: list[Path],
          cheap: bool = False) -> None:
    """Run one trial with the values in hp.json and write its result.json.

    Trains with ``mlwf_nb.steps.landcover.train_from_shards`` when training shards are
    given (patch shards of a scene dataset, or sample shards: ``dataset`` tells which); with
    ``cheap`` (or ``hpo.cheap_objective``, or no shards) it scores the values with the
    analytic objective instead. A training error is recorded as a
    failed trial and the step returns normally.

    Args:
        spec: The run's spec; the trial's values are applied on top of it.
        hp: The trial's ``hp.json`` from ``hpo-propose``.
        result: ``result.json`` output.
        checkpoint: The trial's checkpoint files (Pegasus checkpoint files): the checkpoint
            (``*.keras``) first, then its JSON sidecar (see :mod:`mlwf_nb.ml.checkpoint`).
        train: Training patch shards (empty: cheap objective).
        val: Validation patch shards.
        dataset: The dataset description (zero or one file).
        parents: Hyperband promotions: the previous rung's checkpoint files (declared so Pegasus
            stages them; hp.json's ``resume_from`` names the one to continue).
        tensorboard: The trial's TensorBoard event files ``[train, validation]`` (none: no log);
            a skipped or failed trial leaves them valid and empty.
        cheap: Force the analytic objective.
    """
    try:
        _trial(spec, hp, result, checkpoint, train, val, dataset, tensorboard, cheap)
    finally:
        _ensure_event_files(tensorboard)


def _ensure_event_files(files: list[Path]) -> None:
    """Declared outputs must exist: write empty event files where training wrote none."""
    if files and not all(Path(f).exists() for f in files):
        from mlwf_nb.ml.tensorboard import EpochLog

        log = EpochLog(files)
        log.start({})
        log.close()


def _trial(spec: RunSpec, hp: Path, result: Path, checkpoint: list[Path], train: list[Path], val: list[Path],
           dataset: list[Path], tensorboard: list[Path], cheap: bool) -> None:
    doc = read_json(hp)
    if not checkpoint:
        raise StepError("trial: --checkpoint needs the trial's checkpoint file (and its .json sidecar)")
    model = checkpoint[0]
    base = {"round": doc.get("round"), "trial": doc.get("trial"), "trial_id": doc.get("trial_id"),
            "values": doc.get("values", {}), "epochs": doc.get("epochs")}
    if doc.get("skip"):
        write_json(result, {**base, "status": "skipped", "objective": None, "metrics": {},
                            "error": None})
        return
    emit("trial_started", round=base["round"], trial=base["trial"], trial_id=base["trial_id"],
         hp=base["values"])
    start = time.time()
    use_cheap = cheap or spec.hpo.cheap_objective or not (train and val)
    try:
        metrics, epochs = _run(spec, doc, model, train, val, dataset, use_cheap, tensorboard)
        objective = metrics.get(spec.hpo.objective)
        if not isinstance(objective, (int, float)) or not math.isfinite(objective):
            raise StepError(f"objective {spec.hpo.objective!r} is missing or not finite in the "
                            f"trial's metrics {sorted(metrics)}; set hpo.objective to one of them")
        out = {**base, "status": "ok", "objective": float(objective), "metrics": metrics,
               "error": None, "epochs": epochs}
    except Exception as err:
        out = {**base, "status": "failed", "objective": None, "metrics": {},
               "error": f"{type(err).__name__}: {err}"}
    out.update(seconds=round(time.time() - start, 3), cheap=use_cheap,
               checkpoint=str(model) if _has(model) else None)
    write_json(result, out)
    emit("trial_finished", round=base["round"], trial=base["trial"], trial_id=base["trial_id"],
         status=out["status"], objective=out["objective"], error=out["error"])


def _run(spec: RunSpec, doc: dict[str, Any], checkpoint: Path, train: list[Path], val: list[Path],
         dataset: list[Path], cheap: bool, tensorboard: list[Path]) -> tuple[dict[str, float], int]:
    from mlwf_nb.hpo.space import apply_hp

    trial_spec = apply_hp(spec, doc.get("values", {}))
    epochs = int(doc.get("epochs") or trial_spec.train.epochs)
    resume = Path(doc["resume_from"]) if doc.get("resume_from") else None
    if cheap:
        initial = int(doc.get("initial_epoch") or 0)
        return _cheap(trial_spec, doc, checkpoint, epochs, initial, resume), epochs
    return _train(trial_spec, checkpoint, train, val, dataset, epochs, resume, tensorboard), epochs


def _has(path: Path | None) -> bool:
    """A real checkpoint: the workflow's empty placeholder does not count."""
    return path is not None and path.exists() and path.stat().st_size > 0


def _train(spec: RunSpec, checkpoint: Path, train: list[Path], val: list[Path], dataset: list[Path],
           epochs: int, resume: Path | None, tensorboard: list[Path]) -> dict[str, float]:
    """Real training; a Hyperband promotion starts from its parent's checkpoint."""
    from mlwf_nb.steps.landcover import train_from_shards

    if not dataset:
        raise StepError("trial: training needs --dataset (the dataset.yaml) to know the classes")
    if resume is not None and _has(resume) and not _has(checkpoint):
        from mlwf_nb.ml.checkpoint import sidecar_path

        # the sidecar first, then the model: the pair the parent left (see mlwf_nb.ml.checkpoint)
        for source, target in ((sidecar_path(resume), sidecar_path(checkpoint)), (resume, checkpoint)):
            if _has(source):
                with atomic_path(target, suffix=target.suffix) as tmp:
                    shutil.copyfile(source, tmp)
    num_classes, metrics = _classes_and_metrics(dataset[0])
    if metrics is None:  # a detection dataset: the detector's own training path (val_map50, val_map)
        from mlwf_nb.data.samples import SampleDataset
        from mlwf_nb.steps.masks import train_detector

        names = SampleDataset.open(dataset[0]).class_names
        _, out = train_detector(spec, list(train), list(val), checkpoint=checkpoint, num_classes=num_classes,
                                class_names=names, epochs=epochs, tensorboard=tensorboard)
    else:
        _, out = train_from_shards(spec, list(train), list(val), checkpoint=checkpoint, num_classes=num_classes,
                                   epochs=epochs, metrics=metrics, tensorboard=tensorboard)
    history = out.get("history", {}) if isinstance(out, Mapping) else {}
    at = int(out.get("best_epoch") or 0) - 1 if isinstance(out, Mapping) else -1  # the epoch the trial keeps
    return {k: float(v[at]) for k, v in history.items() if isinstance(v, list) and v and len(v) > at}


def _classes_and_metrics(dataset: Path) -> tuple[int, list[Any] | None]:
    """Model classes and extra Keras metrics for a scene dataset or a sample dataset (``layout: samples``).

    A segmentation sample dataset trains with the ``iou``/``dice`` metrics of ``train-samples``,
    so ``hpo.objective=val_dice`` (or ``val_iou``) ranks its trials. A detection dataset gives
    ``None``: it trains a detector, not a classifier.
    """
    from mlwf_nb.data.samples import SampleDataset, is_sample_dataset

    if is_sample_dataset(dataset):
        from mlwf_nb.steps.samples import segmentation_keras_metrics

        ds = SampleDataset.open(dataset)
        if ds.task == "detection":
            return ds.num_classes, None
        return ds.num_classes, segmentation_keras_metrics(ds.num_classes) if ds.task == "segmentation" else []
    from mlwf_nb.data.dataset import Dataset

    return Dataset.describe(dataset).num_classes, []


def _cheap(spec: RunSpec, doc: dict[str, Any], checkpoint: Path, epochs: int, initial: int,
           resume: Path | None) -> dict[str, float]:
    """The analytic objective, with a small JSON checkpoint so resumption is visible."""
    from mlwf_nb.hpo.objective import analytic_objective

    for source in (checkpoint, resume):
        if source is not None and _has(source):
            try:
                saved = read_json(source)
            except ValueError:
                continue
            if isinstance(saved, dict) and saved.get("values") == doc.get("values"):
                initial = max(initial, min(int(saved.get("epoch", 0)), epochs))
                emit("checkpoint_restored", path=str(source), epoch=initial)
                break
    metrics = analytic_objective(doc.get("values", {}), spec.hpo.seed, space=spec.hpo.space,
                                 epochs=epochs, initial_epoch=initial)
    write_json(checkpoint, {"epoch": epochs, "values": doc.get("values"), "metrics": metrics})
    emit("checkpoint_saved", path=str(checkpoint), epoch=epochs)
    return metrics


@step("hpo-select", outputs=("best", "leaderboard"), warm=True)
def hpo_select(spec: RunSpec, results: list[Path], best: Path, leaderboard: Path) -> None:
    """Rank every trial: write best.json (the values to train with) and leaderboard.json.

    Args:
        spec: The run's spec (``hpo.objective``, ``hpo.direction``).
        results: Every trial's ``result.json``.
        best: ``best.json`` output.
        leaderboard: ``leaderboard.json`` output.
    """
    from mlwf_nb.hpo.rounds import select

    select(list(results), spec.hpo, best, leaderboard)
