"""The land-cover pipeline (GID style): one user of the public step/pipeline API.

integrity -> split; check[scene] -> histogram[training scene] -> fit-stretch[source] -> preprocess[scene]
-> (hpo rounds) -> train -> evaluate,
and with ``model.per_source`` one train/evaluate branch per sensor source plus a
hybrid evaluation against the global model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlwf_nb.ml.tensorboard import event_files
from mlwf_nb.pipelines.base import Graph, Pipeline
from mlwf_nb.pipelines.search import add_search
from mlwf_nb.spec import RunSpec

if TYPE_CHECKING:
    from mlwf_nb.data.cache import RunInputs

__all__ = ["PIPELINE", "prepare", "build", "DATA", "WORK", "OUT"]

DATA, WORK, OUT = "dataset", "work", "outputs"


def _remote(spec: RunSpec) -> str | None:
    """The dataset's base URL when ``dataset.path`` is ``http(s)://...``, else None."""
    path = spec.dataset.path
    return path.rstrip("/") + "/" if path.startswith(("http://", "https://")) else None


def _remote_root(url: str) -> Path:
    """Where the small files of a remote dataset (dataset.yaml, manifest.json) are kept for planning."""
    import hashlib
    import os

    cache = Path(os.environ.get("MLWF_CACHE", Path.home() / ".cache" / "mlwf")).expanduser()
    return cache / "datasets" / hashlib.sha256(url.encode()).hexdigest()[:16]


def _fetch_remote(url: str) -> Path:
    """Download ``manifest.json`` and ``dataset.yaml`` of a remote dataset; the scenes are staged by the run.

    The scenes themselves are registered in the replica catalog with their URL and sha256, so the
    backend downloads and checks them like Pegasus stage-in jobs do.
    """
    import urllib.request

    from mlwf_nb import _io
    from mlwf_nb.data.integrity import sha256_file
    from mlwf_nb.errors import DatasetError, IntegrityError

    root = _remote_root(url)
    for name in ("manifest.json", "dataset.yaml"):
        try:
            with urllib.request.urlopen(url + name, timeout=60) as resp, _io.atomic_path(root / name) as tmp:
                tmp.write_bytes(resp.read())
        except OSError as err:
            raise DatasetError(f"cannot download {url + name}: {err}; check dataset.path (a folder URL "
                               "holding dataset.yaml and manifest.json)") from err
    expected = _io.read_json(root / "manifest.json")["files"].get("dataset.yaml", {}).get("sha256")
    actual = sha256_file(root / "dataset.yaml")
    if expected and expected != actual:
        raise IntegrityError(f"{url}dataset.yaml: sha256 is {actual} but the manifest expects {expected}",
                             path=url + "dataset.yaml", expected=expected, actual=actual)
    return root


def prepare(spec: RunSpec) -> None:
    """Check the dataset before any job runs; generate the synthetic one only when asked for.

    See :func:`mlwf_nb.pipelines._prepare.require_dataset`. Nothing is written into an existing
    dataset: its description and manifest come from it or from the user cache
    (:func:`mlwf_nb.data.cache.run_inputs`).
    """
    from mlwf_nb.data.cache import run_inputs
    from mlwf_nb.data.dataset import is_dataset, not_a_dataset
    from mlwf_nb.pipelines._prepare import require_dataset

    url = _remote(spec)
    if url is not None:
        _fetch_remote(url)
        return
    d = spec.dataset
    synth = (f"`mlwf synth {d.path} --scenes {d.scenes} --size {d.height} {d.width} --seed {d.seed} "
             f"--sources {' '.join(d.sources)}`")
    root = require_dataset(spec, is_dataset, _generate, not_a_dataset, command=synth)
    _check_headers(run_inputs(root))


def _generate(spec: RunSpec, root: Path) -> None:
    from mlwf_nb.data.synth import generate_dataset

    d = spec.dataset
    generate_dataset(root, scenes=d.scenes, height=d.height, width=d.width, sources=tuple(d.sources), seed=d.seed)


def _check_headers(inputs: RunInputs) -> None:
    """Cheap plan-time check: every manifest file exists, every scene file is a complete TIFF (headers only).

    Each scene's ``check`` job checks its digests and pixels (``Dataset.check_scene``) before any
    job reads it.
    """
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.data.integrity import read_manifest
    from mlwf_nb.data.raster import check_tiff
    from mlwf_nb.errors import IntegrityError

    root, manifest = inputs.root, inputs.manifest
    for rel in read_manifest(manifest)["files"]:
        if not (root / rel).is_file() and rel != "dataset.yaml":
            raise IntegrityError(f"{str(root / rel)!r} is listed in {str(manifest)!r} but missing; copy it "
                                 "again, or rebuild the manifest (mlwf data manifest)", path=str(root / rel))
    for scene in Dataset.open(root).scenes:
        for path in (scene.image, scene.label):
            if path is not None:
                check_tiff(path)


@dataclass(frozen=True)
class _Scene:
    """A scene as the jobs see it: id, source, and the LFNs of its files (names carry scene and role)."""

    id: str
    source: str
    image: str
    label: str


def _register_dataset(spec: RunSpec, g: Graph) -> tuple[dict[str, _Scene], dict[str, str], str]:
    """Register dataset.yaml, the manifest and every scene's files; ``({scene: _Scene}, {lfn: key}, dtype)``.

    Scene files get flat LFNs ``dataset/<scene>.image.tif`` / ``dataset/<scene>.label.tif``
    (a job's sandbox holds files by basename); ``keys`` maps each LFN to its path in the
    dataset folder, the manifest's key, for the check jobs.
    """
    from mlwf_nb import _io
    from mlwf_nb.data.dataset import DATASET_FILE, Dataset
    from mlwf_nb.errors import DatasetError

    url = _remote(spec)
    if url:
        root = _remote_root(url)
        description, manifest_path = root / "dataset.yaml", root / "manifest.json"
    else:
        from mlwf_nb.data.cache import run_inputs

        inputs = run_inputs(spec.dataset.path, notify=False)  # prepare() gave the notice
        root, description, manifest_path = inputs.root, inputs.description, inputs.manifest
    ds = Dataset.open(root)
    manifest = _io.read_json(manifest_path)["files"]
    if url:  # the labels are not on disk here: take them from the manifest
        ds.scenes = [dataclasses.replace(sc, label=root / f"labels/{sc.id}.tif")
                     if sc.label is None and f"labels/{sc.id}.tif" in manifest else sc for sc in ds.scenes]

    def register(lfn: str, key: str) -> str:
        if key not in manifest:
            raise DatasetError(f"{key!r} of {ds.where!r} is not in {str(manifest_path)!r}; "
                               f"rebuild the manifest (mlwf data manifest {root})")
        where = description if key == DATASET_FILE else root / key  # a GID folder's description: the cache
        keys[g.add_input(lfn, (url + key) if url else where, manifest[key]["sha256"])] = key
        return lfn

    keys: dict[str, str] = {}
    register(f"{DATA}/{DATASET_FILE}", DATASET_FILE) if DATASET_FILE in manifest else \
        g.add_input(f"{DATA}/{DATASET_FILE}", description)
    g.add_input(f"{DATA}/manifest.json", (url + "manifest.json") if url else manifest_path)
    scenes = {}
    for sc in ds.scenes:
        image = register(f"{DATA}/{sc.id}.image.tif", _key(sc.image, root))
        label = register(f"{DATA}/{sc.id}.label.tif", _key(sc.label, root)) if sc.label is not None else ""
        scenes[sc.id] = _Scene(sc.id, sc.source, image, label)
    return scenes, keys, ds.dtype


def _key(path: Path, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def _counted_per_scene(spec: RunSpec, dtype: str) -> bool:
    """Whether each training scene's histograms can be counted in its own job.

    Integers of up to 16 bits, or any pixels with ``stretch.value_range``: every scene is
    binned alike. Float scenes without it need their joint range first, so ``fit-stretch``
    reads them all (and says so in the run's log).
    """
    from mlwf_nb.data.stretch import counts_exactly

    return bool(spec.stretch.value_range) or counts_exactly(dtype)


def build(spec: RunSpec, g: Graph) -> None:
    """Add the land-cover jobs for ``spec`` to ``g``.

    File names carry scene and role and are unique within every job (DESIGN.md, "Files
    inside a job: a flat sandbox"): ``dataset/GF-2_002.image.tif``, ``work/stretch/GF-2.stretch.json``,
    ``work/patches/GF-2_002.patches.x.npy``. ``evaluate`` reads the raw test scenes and their
    sources' stretch files and stretches in memory; with ``stretch.write_scenes`` a
    ``preprocess[<test scene>]`` job also writes ``outputs/scenes/GF-2_003.stretched.tif``.
    """
    from mlwf_nb.data.split import split_scenes

    scenes, keys, dtype = _register_dataset(spec, g)
    yaml_lfn = f"{DATA}/dataset.yaml"
    manifest = f"{DATA}/manifest.json"
    g.add("integrity", dataset=yaml_lfn, manifest=manifest, keys=list(keys.values()), scenes=list(scenes),
          sources=[s.source for s in scenes.values()], report=f"{WORK}/integrity.json")
    checks = {}
    for sc in scenes.values():  # one job a scene: no job reads more than its own scene
        files = [sc.image, sc.label] if sc.label else [sc.image]
        checks[sc.id] = [f"{WORK}/checks/{sc.id}.check.json"]
        g.add("check", f"check[{sc.id}]", dataset=yaml_lfn, manifest=manifest, files=files,
              keys=[keys[f] for f in files], scene=sc.id, source=sc.source, report=checks[sc.id][0])
    g.add("split", dataset=yaml_lfn, integrity=f"{WORK}/integrity.json", split=f"{WORK}/split.json")
    parts = split_scenes([(s.id, s.source) for s in scenes.values()], spec.split.train, spec.split.val,
                         spec.split.test, seed=spec.split.seed, stratify=spec.split.stratify)
    sources = sorted({scenes[s].source for s in parts["train"]}) if spec.stretch.per_source else ["all"]
    per_scene = _counted_per_scene(spec, dtype)
    for src in sources:
        chosen = [scenes[s] for s in parts["train"] if src in ("all", scenes[s].source)]
        counted: dict[str, list[str]] = {"images": [s.image for s in chosen],
                                         "checks": [checks[s.id][0] for s in chosen]}
        if per_scene:  # each training scene counted in its own job: no job reads more than its scene
            counted = {"histograms": [f"{WORK}/stretch/{s.id}.histogram.npz" for s in chosen]}
            for s, hist in zip(chosen, counted["histograms"], strict=True):
                g.add("histogram", f"histogram[{s.id}]", dataset=yaml_lfn, split=f"{WORK}/split.json",
                      image=s.image, histogram=hist, scene=s.id, source=s.source, check=checks[s.id])
        g.add("fit-stretch", f"fit-stretch[{src}]", dataset=yaml_lfn, split=f"{WORK}/split.json",
              scenes=[s.id for s in chosen], params=f"{WORK}/stretch/{src}.stretch.json", source=src, **counted)
    shards: dict[str, list[str]] = {"train": [], "val": []}
    tests: list[tuple[_Scene, str]] = []  # each test scene and the source of its stretch file
    for part in ("train", "val", "test"):
        for sid in parts.get(part, []):
            sc = scenes[sid]
            src = sc.source if spec.stretch.per_source else "all"
            if src not in sources:  # a source with no training scene: use the global stretch
                src = sources[0]
            common = dict(dataset=yaml_lfn, image=sc.image, label=sc.label,
                          stretch=f"{WORK}/stretch/{src}.stretch.json", scene=sid, source=sc.source,
                          check=checks[sid])
            if part == "test":  # evaluate stretches the raw scene in memory; the 8-bit copy only when asked
                if spec.stretch.write_scenes:
                    g.add("preprocess", f"preprocess[{sid}]", out=[f"{OUT}/scenes/{sid}.stretched.tif"],
                          mode="scene", **common)
                tests.append((sc, src))
            else:
                prefix = f"{WORK}/patches/{sid}.patches"
                files = [f"{prefix}.x.npy", f"{prefix}.y.npy", f"{prefix}.json"]
                g.add("preprocess", f"preprocess[{sid}]", out=files, mode="patches", **common)
                shards[part] += files
    best = add_search(spec, g, train=shards["train"], val=shards["val"], dataset=yaml_lfn)
    _train_and_evaluate(spec, g, yaml_lfn, shards, tests, "global", OUT, best)
    if spec.model.per_source:
        _per_source(spec, g, yaml_lfn, shards, tests, scenes)


def _test_args(tests: list[tuple[_Scene, str]]) -> dict[str, list[str]]:
    """An evaluate job's raw test scenes, labels, check reports, stretch files (each once), each scene's stretch."""
    used = list(dict.fromkeys(src for _, src in tests))
    return {"scenes": [sc.image for sc, _ in tests], "labels": [sc.label for sc, _ in tests],
            "checks": _checks(tests), "stretch": [f"{WORK}/stretch/{src}.stretch.json" for src in used],
            "scene_stretch": [src for _, src in tests]}


def _checks(tests: list[tuple[_Scene, str]]) -> list[str]:
    """The test scenes' check reports, in their order (evaluate reads the raw scenes and their labels)."""
    return [f"{WORK}/checks/{sc.id}.check.json" for sc, _ in tests]


def _train_and_evaluate(spec: RunSpec, g: Graph, yaml_lfn: str, shards: dict[str, list[str]],
                        tests: list[tuple[_Scene, str]], title: str, out: str, best: list[str]) -> str:
    """Add train (and evaluate when there are test scenes) for one model; returns the model's LFN.

    ``tests`` are the test scenes, each with the source of its stretch file (:func:`_test_args`).

    A per-source model's files carry its source (``outputs/per_source/GF-2/GF-2.model.keras``):
    the hybrid evaluation reads every source's model and the global one in one job.
    """
    tag = "" if title == "global" else f"{title}."
    label = "" if title == "global" else f"[{title}]"
    model = f"{out}/{tag}model.keras"
    ckpt = f"{WORK}/checkpoints/{tag}train.keras"
    g.add("train", f"train{label}", dataset=yaml_lfn, train=shards["train"], val=shards["val"], model=model,
          history=f"{out}/{tag}history.json", best=best, checkpoint=[ckpt, f"{ckpt}.json"],
          tensorboard=event_files("train" + ("" if title == "global" else f"-{title}")))
    if tests:
        maps = [f"{out}/maps/{sc.id}.{ext}" for sc, _ in tests for ext in ("tif", "png")]
        g.add("evaluate", f"evaluate{label}", dataset=yaml_lfn, model=model, **_test_args(tests),
              metrics=f"{out}/{tag}metrics.json", confusion=f"{out}/{tag}confusion_matrix.json",
              figure=f"{out}/{tag}confusion_matrix.png", maps=maps, report=f"{out}/{tag}report.md", title=title)
    return model


def _per_source(spec: RunSpec, g: Graph, yaml_lfn: str, shards: dict[str, list[str]],
                tests: list[tuple[_Scene, str]], scenes: dict[str, _Scene]) -> None:
    def src_of(lfn: str) -> str:
        return scenes[Path(lfn).name.split(".")[0]].source  # work/patches/<scene>.patches.x.npy

    sources = sorted({src_of(f) for f in shards["train"]})
    models = []
    for src in sources:
        sub = {k: [f for f in v if src_of(f) == src] for k, v in shards.items()}
        sub_tests = [t for t in tests if t[0].source == src]
        out = f"{OUT}/per_source/{src}"
        best = add_search(spec, g, train=sub["train"], val=sub["val"], dataset=yaml_lfn,
                          work=f"{WORK}/hpo/{src}", out=f"{out}/hpo", tag=src)
        models.append(_train_and_evaluate(spec, g, yaml_lfn, sub, sub_tests, src, out, best))
    routed = [t for t in tests if t[0].source in sources]
    if routed:
        g.add("evaluate-hybrid", "evaluate-hybrid", dataset=yaml_lfn, models=models,
              global_model=f"{OUT}/model.keras", **_test_args(routed), comparison=f"{OUT}/hybrid_comparison.json",
              sources=sources, scene_sources=[sc.source for sc, _ in routed])


PIPELINE = Pipeline(name="landcover", build=build, prepare=prepare, task="classification",
                    description="Land-cover classification of multispectral GeoTIFF scenes (GID style)")
