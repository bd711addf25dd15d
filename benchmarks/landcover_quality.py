"""Land-cover map quality: whole-scene and class-border accuracy of a real run, with a per-pixel baseline.

Usage::

    python -m benchmarks.landcover_quality [--preset cpu] [--set key.path=value ...] [--label NAME]
                                            [--out DIR] [--run-dir EXISTING_RUN [--reevaluate]]

Runs the preset end to end on the local backend (or reads an existing run with ``--run-dir``;
with ``--reevaluate`` its trained model is evaluated again with the ``--set`` evaluate settings,
so map settings compare on the same model), then measures on the run's test scenes: overall
accuracy, Cohen's kappa and mIoU (from the run's ``metrics.json``), and overall accuracy within
1, 3 and 5 pixels of a class border (:func:`mlwf_nb.ml.evaluate.border_mask`) from the
classification maps against the labels. As a reference it classifies the same test pixels with
a per-pixel nearest-class-mean rule fitted on the training scenes (stretched with the same
stretch). Prints one JSON object and appends it to ``OUT/results.jsonl``. Not part of
``make bench``: it measures quality, not speed, and takes minutes. The figures in
``docs/gid.md`` came from this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "measure_run"]

WIDTHS = (1, 3, 5)


def _border_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from mlwf_nb.ml.evaluate import border_mask

    labelled = truth > 0
    ok = (pred == truth) & labelled
    out: dict[str, Any] = {"pixels": int(labelled.sum()), "correct": int(ok.sum())}
    for w in WIDTHS:
        near = border_mask(truth, w) & labelled
        out[f"border{w}"] = [int((ok & near).sum()), int(near.sum())]
    return out


def _scene_ids(run: Path, maps: list[Path], ds: Any) -> dict[str, Path]:
    ids = {s.id for s in ds.scenes}
    found = {}
    for m in maps:
        sid = next((i for i in sorted(ids, key=len, reverse=True) if m.name.startswith(i)), None)
        if sid is not None:
            found[sid] = m
    return found


def _nearest_mean(spec: Any, ds: Any, train: list[str], test: list[str]) -> dict[str, Any]:
    """Per-pixel nearest-class-mean on stretched pixels, fitted on the training scenes."""
    from mlwf_nb.data.stretch import apply_stretch, fit_stretch

    nodata = spec.stretch.nodata if not isinstance(spec.stretch.nodata, str) else ds.nodata
    params: dict[str, Any] = {}
    for src in sorted({ds.scene(s).source for s in train}):
        chosen = [ds.open_image(s) for s in train if ds.scene(s).source == src]
        params[src] = fit_stretch(chosen, spec.stretch.method, spec.stretch.low, spec.stretch.high, nodata)
    first = next(iter(params.values()))
    sums = np.zeros((ds.num_classes + 1, len(ds.bands)))
    counts = np.zeros(ds.num_classes + 1)
    for sid in train:
        u8 = np.asarray(apply_stretch(np.asarray(ds.open_image(sid, chunks=False)),
                                      params.get(ds.scene(sid).source, first))).reshape(len(ds.bands), -1)
        lab = np.asarray(ds.open_label(sid, chunks=False)).ravel()
        np.add.at(sums, lab, u8.T.astype(np.float64))
        counts += np.bincount(lab, minlength=ds.num_classes + 1)
    means = sums[1:] / np.maximum(counts[1:, None], 1)
    scores = []
    for sid in test:
        u8 = np.asarray(apply_stretch(np.asarray(ds.open_image(sid, chunks=False)),
                                      params.get(ds.scene(sid).source, first))).astype(np.float64)
        d = ((np.moveaxis(u8, 0, -1)[..., None, :] - means) ** 2).sum(-1)
        pred = (np.argmin(d, axis=-1) + 1).astype(np.uint8)
        scores.append(_border_scores(pred, np.asarray(ds.open_label(sid, chunks=False))))
    return _summarise(scores)


def _summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum(s["pixels"] for s in scores)
    out: dict[str, Any] = {"oa": sum(s["correct"] for s in scores) / max(total, 1)}
    for w in WIDTHS:
        ok, n = (sum(s[f"border{w}"][i] for s in scores) for i in (0, 1))
        out[f"border_oa_{w}px"] = ok / max(n, 1)
        out[f"border_share_{w}px"] = n / max(total, 1)
    return out


def reevaluate(run_dir: Path, overrides: list[str], out: Path) -> Path:
    """Evaluate a finished run's model again with ``overrides`` (evaluate.*) into ``out``; returns ``out``."""
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.spec import load_spec
    from mlwf_nb.steps.landcover_eval import evaluate

    spec = load_spec(run_dir / "spec.yaml", overrides=overrides)
    ds = Dataset.open(spec.dataset.path)
    tests = sorted(p.name.split(".")[0] for p in (run_dir / "outputs" / "maps").glob("*.tif"))  # <scene>.tif
    stretch = sorted((run_dir / "work" / "stretch").glob("*.stretch.json"))  # as the run's evaluate: raw scenes
    fitted = sorted(json.loads(p.read_text())["source"] for p in stretch)  # a source without its own: the first
    scene_stretch = [ds.scene(s).source if ds.scene(s).source in fitted else fitted[0] for s in tests]
    (out / "outputs" / "maps").mkdir(parents=True, exist_ok=True)
    spec.save(out / "spec.yaml")
    o = out / "outputs"
    evaluate(spec, ds.yaml_path, run_dir / "outputs" / "model.keras", [ds.scene(s).image for s in tests],
             [ds.scene(s).label for s in tests], stretch, scene_stretch, o / "metrics.json",
             o / "confusion_matrix.json", o / "confusion_matrix.png",
             [o / "maps" / f"{s}.{ext}" for s in tests for ext in ("tif", "png")], o / "report.md")
    return out


def measure_run(run_dir: Path) -> dict[str, Any]:
    """Metrics of a finished land-cover run (see the module docstring)."""
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.data.raster import open_raster
    from mlwf_nb.data.split import split_scenes
    from mlwf_nb.spec import load_spec

    spec = load_spec(run_dir / "spec.yaml")
    ds = Dataset.open(spec.dataset.path)
    metrics = json.loads((run_dir / "outputs" / "metrics.json").read_text())
    maps = sorted((run_dir / "outputs" / "maps").glob("*.tif"))
    by_scene = _scene_ids(run_dir, maps, ds)
    scores = [_border_scores(np.asarray(open_raster(path, chunks=False))[0],
                             np.asarray(ds.open_label(sid, chunks=False))) for sid, path in sorted(by_scene.items())]
    parts = split_scenes([(s.id, s.source) for s in ds.scenes], spec.split.train, spec.split.val,
                         spec.split.test, seed=spec.split.seed, stratify=spec.split.stratify)
    maps_summary = _summarise(scores)
    return {"run": str(run_dir), "model": spec.model.name, "test_scenes": sorted(by_scene),
            "overall_accuracy": metrics["overall_accuracy"], "kappa": metrics["kappa"], "miou": metrics["miou"],
            "maps": maps_summary,
            "nearest_class_mean": _nearest_mean(spec, ds, list(parts["train"]), sorted(by_scene))}


def main(argv: list[str] | None = None) -> int:
    """Run (or read) a land-cover run and print its quality figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.landcover_quality")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--label", default="")
    parser.add_argument("--out", default="/tmp/mlwf-quality")
    parser.add_argument("--run-dir", help="measure this finished run instead of starting one")
    parser.add_argument("--reevaluate", action="store_true", help="with --run-dir: evaluate its model again "
                        "with the --set evaluate settings")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.run_dir and args.reevaluate:
        run_dir = reevaluate(Path(args.run_dir), list(args.overrides),
                             out / f"reeval-{Path(args.run_dir).name}-{time.strftime('%H%M%S')}")
    elif args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        from mlwf_nb.pipelines import preset_spec
        from mlwf_nb.runs import submit

        spec = preset_spec(args.preset, "landcover", list(args.overrides))
        run = submit(spec, run_dir=out / f"run-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}", wait=True)
        if run.state != "Success":
            print(f"run {run.dir} ended {run.state}", file=sys.stderr)
            return 1
        run_dir = run.dir
    result = {"label": args.label, "preset": args.preset, "overrides": args.overrides,
              "seconds": round(time.monotonic() - started, 1), **measure_run(run_dir)}
    with open(out / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
