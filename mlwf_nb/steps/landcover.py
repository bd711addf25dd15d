"""The land-cover steps: split, histogram, fit-stretch, preprocess, train.

The dataset checks (``integrity``, ``check[scene]``) are in :mod:`mlwf_nb.steps.checks`, the
evaluation (``evaluate``, ``evaluate-hybrid``) in :mod:`mlwf_nb.steps.landcover_eval`.

Each is a declared step (see :mod:`mlwf_nb.steps.registry`): it reads its input
files, writes its output files atomically, and emits events. ``mlwf step NAME``
runs one, exactly as a Pegasus job does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.checks import require_checked
from mlwf_nb.steps.registry import step

_NO_FILES: list[Path] = []  # an optional list of files (never changed)

__all__ = ["split", "histogram", "fit_stretch", "preprocess", "train", "train_from_shards", "shard_prefixes",
           "with_best", "stretch_nodata", "stretched_scene"]


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
