"""The land-cover evaluation steps: ``evaluate`` (one model over the test scenes) and ``evaluate-hybrid``.

Each test scene is read once, raw, and stretched in memory with its source's stretch
(:func:`mlwf_nb.steps.landcover.stretched_scene`, the pixels ``preprocess`` samples patches
from); blended sliding-window predictions make its class map, scored against its label.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.checks import require_checked
from mlwf_nb.steps.landcover import _NO_FILES, stretched_scene
from mlwf_nb.steps.registry import step

__all__ = ["evaluate", "evaluate_hybrid", "scene_stretches"]


def _predict_fn(model: Any) -> Any:
    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch.astype("float32"), training=False))  # models rescale 0..255

    return predict


def _scene_name(path: Path) -> str:
    """A scene's id from a file name that carries it (``GF-2_002.image.tif`` -> ``GF-2_002``), for messages."""
    return path.name.split(".")[0]


def _require_checks(checks: list[Path], scenes: list[Path], job: str) -> None:
    """Each test scene's ``check`` report, in the order of ``scenes`` (when the job was given them)."""
    if checks and len(checks) != len(scenes):
        raise StepError(f"{job}: {len(checks)} check reports for {len(scenes)} scenes; give one per scene")
    for report, scene_path in zip(checks, scenes, strict=False):
        require_checked([report], _scene_name(scene_path), job)


def scene_stretches(stretch: list[Path], scene_stretch: list[str], scenes: list[Path], labels: list[Path],
                    job: str) -> list[Any]:
    """Each scene's stretch: ``scenes[i]`` is stretched with the file whose "source" is ``scene_stretch[i]``.

    ``stretch`` are ``fit-stretch`` files (``{"source": ..., "params": ...}``), each listed once
    (a job lists a file once); several scenes may share one. ``labels[i]`` is ``scenes[i]``'s label.
    """
    from mlwf_nb.data.stretch import StretchParams

    if not len(scenes) == len(labels) == len(scene_stretch):
        raise StepError(f"{job}: {len(scenes)} scenes, {len(labels)} labels and {len(scene_stretch)} scene_stretch "
                        "entries; give one label and one stretch source per scene, in the order of the scenes")
    by_source: dict[str, StretchParams] = {}
    for path in stretch:
        data = _io.read_json(path)
        src = data.get("source") if isinstance(data, dict) else None
        if not isinstance(src, str) or "params" not in data:
            raise StepError(f"{job}: {path.name} is not a fit-stretch file (it needs 'source' and 'params' keys)")
        if src in by_source:
            raise StepError(f"{job}: two stretch files are for source {src!r} ({path.name}); give one per source")
        by_source[src] = StretchParams.from_dict(data["params"])
    missing = sorted({s for s in scene_stretch if s not in by_source})
    if missing:
        raise StepError(f"{job}: no stretch file for {missing} (given: {sorted(by_source)}); add the "
                        "fit-stretch file of each scene's source")
    return [by_source[s] for s in scene_stretch]




class _TestScene(NamedTuple):
    id: str
    raster: Any  # the raw scene, lazily: the maps' georeference
    u8: np.ndarray  # (H, W, bands), stretched in memory
    truth: np.ndarray  # (H, W) class indices
    void: np.ndarray | None  # nodata pixels (0 in every stretched band) when the stretch has a nodata


def _test_scenes(ds: Any, scenes: list[Path], labels: list[Path], params: list[Any]) -> Iterator[_TestScene]:
    """The raw test scenes, each read once and stretched in memory with its own parameters, one at a time."""
    from mlwf_nb.data.nodata import has_nodata, void_pixels

    for image, label, p in zip(scenes, labels, params, strict=True):
        raster, u8 = stretched_scene(image, p)
        truth = np.asarray(ds.read_label(label, chunks=False))  # class indices (gid: from colours)
        yield _TestScene(_scene_name(image), raster, u8, truth, void_pixels(u8) if has_nodata(p.nodata) else None)


def _maps_by_scene(maps: list[Path], scenes: int) -> list[list[Path]]:
    """``maps`` (the same number of files per scene, in the order of the scenes) grouped by scene."""
    if maps and (not scenes or len(maps) % scenes):
        raise StepError(f"evaluate: {len(maps)} map files for {scenes} scenes; give the same number per scene")
    k = len(maps) // scenes if scenes else 0
    return [maps[i * k:(i + 1) * k] for i in range(scenes)]


def _evaluate_scenes(spec: RunSpec, ds: Any, model: Any, tests: Iterable[_TestScene],
                     maps: list[list[Path]] | None = None) -> Any:
    """Predict each test scene's map (blended sliding windows), score it, write its ``maps``; the scores.

    ``maps[i]`` are scene i's files (e.g. ``<scene>.tif`` and ``<scene>.png``): a GeoTIFF of
    classes with the raw scene's georeference and an RGB picture.
    """
    from mlwf_nb.data.patches import class_map as to_class_map
    from mlwf_nb.data.raster import write_like
    from mlwf_nb.ml.evaluate import MapScores
    from mlwf_nb.ml.maps import predict_scene
    from mlwf_nb.ml.plots import class_map_rgb

    scores = MapScores(ds.num_classes)
    colors = [cls.color for cls in sorted(ds.classes, key=lambda k: k.index)]
    input_size = int(model.input_shape[1])
    predict = _predict_fn(model)
    e = spec.evaluate
    for i, t in enumerate(tests):
        probs = predict_scene(predict, t.u8, e.window_sizes, e.stride_fraction, input_size, e.batch_size, e.blend)
        pred, truth = to_class_map(probs), t.truth
        if t.void is not None:  # nodata pixels are no class
            truth, pred = np.where(t.void, 0, truth), np.where(t.void, 0, pred).astype(np.uint8)
        labelled = scores.add(pred, truth)
        for target in maps[i] if maps else []:
            if target.suffix == ".tif":  # class 0: unlabeled or nodata
                write_like(target, pred[None].astype("uint8"), t.raster, nodata=0)
            elif target.suffix == ".png":
                _save_png(target, class_map_rgb(pred, colors))
            else:
                raise StepError(f"evaluate: map {target.name!r} must end in .tif or .png")
        emit("log", level="info", message=f"evaluated {t.id}: {labelled} labelled pixels")
    return scores


def _save_png(path: Path, rgb: np.ndarray) -> None:
    import matplotlib.image

    with _io.atomic_path(path, suffix=".png") as tmp:
        matplotlib.image.imsave(tmp, rgb, format="png")


@step("evaluate", outputs=("metrics", "confusion", "figure", "maps", "report"), warm=True, runs_model=True)
def evaluate(spec: RunSpec, dataset: Path, model: Path, scenes: list[Path], labels: list[Path],
             stretch: list[Path], scene_stretch: list[str], metrics: Path, confusion: Path, figure: Path,
             maps: list[Path], report: Path, title: str = "global", checks: list[Path] = _NO_FILES) -> None:
    """Sliding-window inference over the test scenes: confusion matrix, metrics, classification maps.

    ``scenes`` are the raw test scenes; each is read once and stretched to 8 bits in memory with
    the ``stretch`` file whose source is ``scene_stretch[i]`` (no 8-bit copy is written).
    ``checks``: the test scenes' ``check`` reports, in the order of ``scenes``.
    """
    import keras

    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.ml.plots import plot_confusion_matrix, save_figure

    _require_checks(checks, scenes, f"evaluate[{title}]")
    ds = Dataset.describe(dataset)
    params = scene_stretches(stretch, scene_stretch, scenes, labels, f"evaluate[{title}]")
    by_scene = _maps_by_scene(maps, len(scenes))
    net = keras.models.load_model(model, compile=False)
    scores = _evaluate_scenes(spec, ds, net, _test_scenes(ds, scenes, labels, params), by_scene)
    cm = scores.cm
    result = scores.metrics(ds.class_names)
    _io.write_json(confusion, {"classes": ds.class_names, "colors": [list(c) for c in ds.class_colors],
                               "matrix": cm.tolist(), "title": title})
    _io.write_json(metrics, result)
    save_figure(plot_confusion_matrix(cm, ds.class_names, ds.class_colors), figure)
    _io.write_text(report, _report(title, result, ds.class_names, maps))
    emit("artifact", kind="confusion_matrix", path=str(confusion), figure=str(figure),
         matrix=cm.tolist(), classes=ds.class_names, colors=[list(c) for c in ds.class_colors])
    for target in maps:
        if target.suffix == ".png":
            emit("artifact", kind="map", path=str(target))
    emit("artifact", kind="report", path=str(report), overall_accuracy=result.get("overall_accuracy"),
         kappa=result.get("kappa"))


def _report(title: str, m: dict, names: list[str], maps: list[Path], what: str = "Classification maps") -> str:
    """The evaluation report (Markdown).

    ``maps`` are linked as ``maps/<name>``: the pipelines write them into ``maps/`` beside the
    report (``outputs/maps/GF-2_003.png`` for ``outputs/report.md``).
    """
    lines = [f"# Evaluation ({title})", "",
             f"- overall accuracy: {m['overall_accuracy']:.4f}", f"- Cohen's kappa: {m['kappa']:.4f}",
             f"- mIoU: {m['miou']:.4f}"]
    if "border" in m:  # maps only (land cover): an image classifier (galaxy) has no class borders
        lines.append(f"- overall accuracy within {m['border']['width']} px of a class border: "
                     f"{m['border']['overall_accuracy']:.4f} ({100 * m['border']['share']:.1f} % of the "
                     "labelled pixels)")
    lines += ["", "| class | precision | recall | F1 | IoU | support |", "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        c = m["per_class"][name]
        lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | "
                     f"{c['iou']:.3f} | {c['support']} |")
    pictures = [p for p in maps if p.suffix == ".png"]
    if pictures:
        links = ", ".join(f"[{p.stem}](maps/{p.name})" + (" ([GeoTIFF](maps/" + p.stem + ".tif))"
                                                         if p.with_suffix(".tif") in maps else "")
                          for p in pictures)
        lines += ["", f"{what} (in `maps/` beside this report): {links}"]
    return "\n".join([*lines, ""])


@step("evaluate-hybrid", outputs=("comparison",), warm=True, runs_model=True)
def evaluate_hybrid(spec: RunSpec, dataset: Path, models: list[Path], global_model: Path, scenes: list[Path],
                    labels: list[Path], stretch: list[Path], scene_stretch: list[str], comparison: Path,
                    sources: list[str], scene_sources: list[str], checks: list[Path] = _NO_FILES) -> None:
    """Route each test scene to its source's model and compare with the single global model.

    ``models[k]`` is the model of ``sources[k]``; ``scene_sources[i]`` the source of ``scenes[i]``;
    ``checks[i]`` its ``check`` report. Each raw scene is read once and stretched in memory (as in
    ``evaluate``) for both models.
    """
    import keras

    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.ml.evaluate import classification_metrics

    _require_checks(checks, scenes, "evaluate-hybrid")
    ds = Dataset.describe(dataset)
    if len(sources) != len(models):
        raise StepError(f"evaluate-hybrid: {len(models)} models for {len(sources)} sources ({sources})")
    if len(scene_sources) != len(scenes):
        raise StepError(f"evaluate-hybrid: {len(scenes)} scenes but {len(scene_sources)} scene sources")
    params = scene_stretches(stretch, scene_stretch, scenes, labels, "evaluate-hybrid")
    unknown = sorted({src for src in scene_sources if src not in sources})
    if unknown:
        raise StepError(f"evaluate-hybrid: no model for source(s) {unknown} of the test scenes (models: {sources})")
    per_source = {n: keras.models.load_model(m, compile=False) for n, m in zip(sources, models, strict=True)}
    glob = keras.models.load_model(global_model, compile=False)
    c = ds.num_classes
    cms = {"hybrid": np.zeros((c, c), np.int64), "global": np.zeros((c, c), np.int64)}
    rows = []
    for test, src in zip(_test_scenes(ds, scenes, labels, params), scene_sources, strict=True):
        row: dict[str, Any] = {"scene": test.id, "source": src}
        for kind, net in (("hybrid", per_source[src]), ("global", glob)):
            cm = _evaluate_scenes(spec, ds, net, [test]).cm
            cms[kind] += cm
            row[kind] = classification_metrics(cm, ds.class_names)["overall_accuracy"]
        rows.append(row)
    table = {k: classification_metrics(v, ds.class_names) for k, v in cms.items()}
    _io.write_json(comparison, {"scenes": rows, "hybrid": table["hybrid"], "global": table["global"],
                                "summary": {k: {"overall_accuracy": v["overall_accuracy"], "kappa": v["kappa"],
                                                "miou": v["miou"]} for k, v in table.items()}})
    emit("artifact", kind="report", path=str(comparison),
         overall_accuracy=table["hybrid"]["overall_accuracy"], title="hybrid vs global")
