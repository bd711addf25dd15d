"""The land-cover steps: split, histogram, fit-stretch, preprocess, train, evaluate.

The dataset checks (``integrity``, ``check[scene]``) are in :mod:`mlwf_nb.steps.checks`.

Each is a declared step (see :mod:`mlwf_nb.steps.registry`): it reads its input
files, writes its output files atomically, and emits events. ``mlwf step NAME``
runs one, exactly as a Pegasus job does.
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
from mlwf_nb.steps.registry import step

_NO_FILES: list[Path] = []  # an optional list of files (never changed)

__all__ = ["split", "histogram", "fit_stretch", "preprocess", "train", "evaluate", "evaluate_hybrid",
           "train_from_shards", "shard_prefixes", "with_best", "stretch_nodata",
           "scene_stretches", "stretched_scene"]


@step("split", outputs=("split",))
def split(spec: RunSpec, dataset: Path, integrity: Path, split: Path) -> None:
    """Split the checked scenes (from the integrity report) into train/val/test, by seed and source."""
    from mlwf_nb.data.split import split_scenes, write_split

    scenes = _io.read_json(integrity).get("scenes")
    if not scenes:
        raise StepError(f"split: {integrity} lists no scenes; the integrity job found none")
    result = split_scenes([(s["id"], s["source"]) for s in scenes], spec.split.train, spec.split.val,
                          spec.split.test, seed=spec.split.seed, stratify=spec.split.stratify)
    write_split(split, result)
    emit("log", level="info", message=" ".join(f"{k}={len(v)}" for k, v in result.items()))


def _training_scenes(split: Path, scenes: list[str], job: str) -> None:
    from mlwf_nb.data.split import read_split

    leaked = sorted(set(scenes) - set(read_split(split)["train"]))
    if leaked:
        raise StepError(f"{job}: {leaked} are not training scenes of {split}; the stretch is fitted on "
                        "the training split only")


def _value_range(spec: RunSpec) -> tuple[float, float] | None:
    vr = spec.stretch.value_range
    return (float(vr[0]), float(vr[1])) if vr else None


@step("histogram", outputs=("histogram",))
def histogram(spec: RunSpec, dataset: Path, split: Path, image: Path, histogram: Path, scene: str,
              source: str, check: list[Path] = _NO_FILES) -> None:
    """Count one training scene's per-band histograms (one streamed read) for the stretch fit.

    Each training scene is counted in its own job, side by side; ``fit-stretch`` adds these
    small files instead of reading every training scene of its source in one job. Float
    scenes need ``stretch.value_range`` here (every scene binned alike); without it the
    pipeline fits them in ``fit-stretch`` over the scenes themselves. ``check``: the scene's
    ``check`` report (the workflow always gives it: nothing reads an unchecked scene).
    """
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.data.raster import capped_block_cache, open_raster
    from mlwf_nb.data.scan import write_histograms
    from mlwf_nb.data.stretch import band_histograms, counts_exactly

    _training_scenes(split, [scene], "histogram")
    require_checked(check, scene, f"histogram[{scene}]")
    data = open_raster(image)
    vr = _value_range(spec)
    if vr is None and not counts_exactly(data.dtype):
        raise StepError(f"histogram: {image.name} holds {data.dtype} pixels: one scene's histograms need "
                        "stretch.value_range [lo, hi] so that every scene is binned alike (without it, "
                        "fit-stretch fits over the scenes themselves)")
    with capped_block_cache():  # streamed chunk by chunk: GDAL need not keep the tiles
        counts = band_histograms(data, nodata=stretch_nodata(spec, Dataset.describe(dataset)), value_range=vr)
    write_histograms(histogram, counts, {"scene": scene, "source": source})


@step("fit-stretch", outputs=("params",))
def fit_stretch(spec: RunSpec, dataset: Path, split: Path, images: list[Path], scenes: list[str], params: Path,
                source: str = "all", histograms: list[Path] = _NO_FILES, checks: list[Path] = _NO_FILES) -> None:
    """Fit the 16-to-8-bit stretch of the training scenes ``scenes`` (of one sensor source).

    From their ``histograms`` (the ``histogram`` jobs' files, one per scene, in the order of
    ``scenes``: the same parameters as a fit over the scenes) or, given ``images`` instead,
    over the scenes themselves (float scenes without ``stretch.value_range``: their joint
    range comes first; ``checks`` are then their ``check`` reports, in the same order). Each
    scene must be in the split's training part.
    """
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.data.raster import capped_block_cache, open_raster
    from mlwf_nb.data.scan import read_histograms
    from mlwf_nb.data.stretch import fit_histograms
    from mlwf_nb.data.stretch import fit_stretch as fit

    given = histograms or images
    if not given:
        raise StepError(f"fit-stretch: no training histograms or images for source {source!r}")
    if histograms and images:
        raise StepError("fit-stretch: give the scenes' histograms or their images, not both")
    if len(scenes) != len(given):
        raise StepError(f"fit-stretch: {len(given)} files but {len(scenes)} scene ids; give one id per file")
    _training_scenes(split, scenes, "fit-stretch")
    if checks and len(checks) != len(scenes):
        raise StepError(f"fit-stretch: {len(checks)} check reports for {len(scenes)} scenes; give one per scene")
    for report, sid in zip(checks, scenes, strict=False):
        require_checked([report], sid, f"fit-stretch[{source}]")
    s, vr = spec.stretch, _value_range(spec)
    nodata = stretch_nodata(spec, Dataset.describe(dataset))
    if histograms:
        counts = []
        for path, sid in zip(histograms, scenes, strict=True):
            c, meta = read_histograms(path)
            if meta.get("scene") != sid:
                raise StepError(f"fit-stretch: {path.name} counts scene {meta.get('scene')!r}, not {sid!r}; "
                                "give the histograms in the order of the scene ids")
            counts.append(c)
        fitted = fit_histograms(counts, method=s.method, low=s.low, high=s.high, nodata=nodata, value_range=vr)
    else:
        emit("log", level="info", message=f"fit-stretch[{source}] reads its {len(images)} training scenes in "
             "this job (float pixels without stretch.value_range: their joint range comes first); with "
             "stretch.value_range each scene is counted in its own job")
        with capped_block_cache():  # streamed chunk by chunk: GDAL need not keep the tiles
            fitted = fit([open_raster(p) for p in images], method=s.method, low=s.low, high=s.high,
                         nodata=nodata, value_range=vr)
    _io.write_json(params, {"source": source, "scenes": list(scenes), "params": fitted.to_dict()})


def stretch_nodata(spec: RunSpec, ds: Any) -> Any:
    """The nodata of the stretch: dataset.yaml's (``stretch.nodata: dataset``), the spec's value, or none."""
    from mlwf_nb.data.nodata import band_nodata

    value = spec.stretch.nodata
    return ds.band_nodata if value == "dataset" else band_nodata(value, len(ds.bands), "stretch.nodata")


def _load_stretch(path: Path) -> Any:
    from mlwf_nb.data.stretch import StretchParams

    return StretchParams.from_dict(_io.read_json(path)["params"])


@step("preprocess", outputs=("out",))
def preprocess(spec: RunSpec, dataset: Path, image: Path, label: Path, stretch: Path, out: list[Path],
               scene: str, source: str, mode: str = "patches", check: list[Path] = _NO_FILES) -> None:
    """Stretch one scene to 8 bits; sample a patch shard (``patches``) or write the scene (``scene``).

    ``image`` and ``label`` are the scene's files, ``scene`` and ``source`` its id and sensor,
    ``check`` its ``check`` report (the workflow always gives it).
    """
    from mlwf_nb.data.dataset import Dataset, Scene
    from mlwf_nb.data.nodata import U8_NODATA, has_nodata, void_pixels
    from mlwf_nb.data.raster import capped_block_cache
    from mlwf_nb.data.stretch import apply_stretch

    if mode not in ("patches", "scene"):
        raise StepError(f"preprocess: mode must be 'patches' or 'scene', got {mode!r}")
    require_checked(check, scene, f"preprocess[{scene}]")
    ds = Dataset.describe(dataset, [Scene(scene, source, image, label)])
    params = _load_stretch(stretch)
    if mode == "scene":
        from mlwf_nb.data.raster import write_like

        image_da = ds.open_image(scene)
        with capped_block_cache():  # nodata pixels are 0 and the 8-bit GeoTIFF says so
            write_like(out[0], apply_stretch(image_da, params), image_da,
                       nodata=U8_NODATA if has_nodata(params.nodata) else None)
        return
    from mlwf_nb.data.patches import sample_patches
    from mlwf_nb.data.shards import write_shard
    from mlwf_nb.data.windows import label_masks
    from mlwf_nb.ml.models import is_per_pixel

    _, u8 = stretched_scene(image, params)  # what evaluate computes from a test scene, too
    lab = np.asarray(ds.open_label(scene))
    if has_nodata(params.nodata):  # nodata pixels (0 in every stretched band) are never a class
        lab = np.where(void_pixels(u8), 0, lab).astype(np.uint8)
    seed = spec.patches.seed * 1_000_003 + _stable_hash(scene)
    p = spec.patches
    per_pixel = is_per_pixel(spec.model.name)
    if per_pixel and p.min_purity > 0:  # a per-pixel model learns the borders that purity would drop
        emit("log", level="info", message=f"patches.min_purity={p.min_purity:g} is not used for the per-pixel "
             f"model {spec.model.name!r}: it learns from mixed windows too")
    x, y, meta = sample_patches(u8, lab, p.sizes, p.per_scene, p.input_size, 0.0 if per_pixel else p.min_purity,
                                p.balance, np.random.default_rng(seed), ds.num_classes)
    if per_pixel:  # the label mask under each window; unlabeled and nodata pixels: the ignored class
        y = label_masks(lab, meta["windows"], p.input_size, ignore=ds.num_classes)
    prefix = shard_prefixes(out)
    if len(prefix) != 1:
        raise StepError(f"preprocess: the patch shard is one <prefix>.x.npy/.y.npy/.json triple, got {out}")
    write_shard(prefix[0], x, y, {**(meta or {}), "scene": scene, "source": source})


def _stable_hash(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def shard_prefixes(files: list[Path]) -> list[str]:
    """Shard prefixes from a list of shard files (``<prefix>.x.npy`` etc.), in order, unique."""
    prefixes: dict[str, None] = {}
    for f in files:
        name = str(f)
        for suffix in (".x.npy", ".y.npy", ".json"):
            if name.endswith(suffix):
                prefixes[name[: -len(suffix)]] = None
                break
    return list(prefixes)


def train_from_shards(spec: RunSpec, train_files: list[Path], val_files: list[Path], *,
                      checkpoint: Path | None, num_classes: int, epochs: int | None = None,
                      metrics: list[Any] | None = None, tensorboard: list[Path] | None = None) -> tuple[Any, dict]:
    """Build the spec's model and train it on patch shards: the one training path of every caller.

    ``metrics`` are extra Keras metrics (e.g. IoU / Dice for segmentation shards);
    ``tensorboard`` the job's ``[train, validation]`` event files. Shards of label masks
    (per-pixel models) mark unlabeled pixels with class ``num_classes``, which the loss and
    the accuracy skip.
    """
    from mlwf_nb.data.shards import ShardSequence, loader_threads, read_shard
    from mlwf_nb.ml.models import build_model
    from mlwf_nb.ml.train import fit, seed_everything

    tr, va = shard_prefixes(train_files), shard_prefixes(val_files)
    if not tr:
        raise StepError("train: no training shards were given (check the split and preprocess jobs)")
    x0, y0 = read_shard(tr[0], mmap=True)[:2]
    t = spec.train
    # reading the memory maps, flips and the float conversion run on loader threads, overlapping the train step
    sequence: Any = ShardSequence  # a keras PyDataset made on first use (mypy sees the keras-free base)
    threads = loader_threads()
    train_seq = sequence(tr, t.batch_size, shuffle=True, seed=t.seed, augment=spec.augment, workers=threads)
    val_seq = sequence(va, t.batch_size, shuffle=False, seed=t.seed, workers=threads) if va else None
    seed_everything(t.seed)  # initial weights depend on the seed only, not on the process
    from mlwf_nb.ml.distribute import distribution_scope

    with distribution_scope(t.distribution) as replicas:
        if replicas > 1:
            emit("log", level="info", message=f"data-parallel training on {replicas} devices")
        model = build_model(spec.model.name, tuple(x0.shape[1:]), num_classes, width=spec.model.width,
                            dropout=spec.model.dropout)
        result = fit(model, train_seq, val_seq, epochs=epochs or t.epochs, learning_rate=t.learning_rate,
                     optimizer=t.optimizer, momentum=t.momentum, weight_decay=t.weight_decay,
                     checkpoint=checkpoint, checkpoint_every=t.checkpoint_every,
                     checkpoint_minutes=t.checkpoint_minutes, seed=t.seed, metrics=metrics or (),
                     tensorboard=tensorboard or (), keep_best=t.monitor if t.keep_best else None,
                     lr_hypergradient=t.lr_hypergradient_rate if t.lr_hypergradient else 0.0,
                     ignore_class=num_classes if y0.ndim == 3 else None)
    return model, result


def with_best(spec: RunSpec, best: list[Path]) -> RunSpec:
    """``spec`` with the values of a search's ``best.json`` applied (unchanged when ``best`` is empty)."""
    if not best:
        return spec
    values = _io.read_json(best[0]).get("values") or {}
    emit("log", level="info", message=f"training with the best hyper-parameters {values}")
    return spec.with_overrides(dict(values))


@step("train", outputs=("model", "history", "tensorboard"), checkpoints=("checkpoint",), warm=True, runs_model=True)
def train(spec: RunSpec, dataset: Path, train: list[Path], val: list[Path], model: Path, history: Path,
          checkpoint: list[Path], best: list[Path], tensorboard: list[Path]) -> None:
    """Train the model on patch shards, checkpointing; resumes from the checkpoint after a kill.

    ``best`` (optional): the ``best.json`` of a hyper-parameter search; its values override the spec.
    With ``train.train_on_val`` the validation shards are trained on too. ``tensorboard``: the
    job's ``[train, validation]`` event files (:func:`mlwf_nb.ml.tensorboard.event_files`).
    """
    from mlwf_nb.data.dataset import Dataset

    spec = with_best(spec, best)
    if spec.train.train_on_val:
        train, val = [*train, *val], []
    ds = Dataset.describe(dataset)
    ckpt = next((p for p in checkpoint if str(p).endswith(".keras")), None)
    keras_model, result = train_from_shards(spec, train, val, checkpoint=ckpt, num_classes=ds.num_classes,
                                            tensorboard=tensorboard)
    with _io.atomic_path(model, suffix=".keras") as tmp:
        keras_model.save(tmp)
    _io.write_json(history, result)
    emit("artifact", kind="model", path=str(model))


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


def stretched_scene(image: Path, params: Any) -> tuple[Any, np.ndarray]:
    """A raw scene read once, chunk by chunk, and stretched to 8 bits in memory: ``(raster, (H, W, bands) uint8)``.

    The pixels ``preprocess`` writes in mode ``scene`` (and samples patches from), bit for bit;
    ``raster`` is the raw scene, lazily (its georeference, for the maps).
    """
    from mlwf_nb.data.raster import capped_block_cache, open_raster
    from mlwf_nb.data.stretch import apply_stretch

    raster = open_raster(image)
    with capped_block_cache():  # the uint8 scene is a quarter of the uint16 one; GDAL keeps no tiles
        return raster, np.moveaxis(np.asarray(apply_stretch(raster, params)), 0, -1)


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
