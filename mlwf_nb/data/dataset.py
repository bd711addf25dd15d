"""A dataset folder: ``dataset.yaml``, its scenes, and their images and labels.

Two layouts are read (see ``docs/architecture.md``):

* ``mlwf`` — ``images/<scene>.tif`` (bands per ``bands``) and ``labels/<scene>.tif``
  (one band, uint8 class index, 0 = unlabeled); scenes listed in ``dataset.yaml``.
* ``gid`` — the Gaofen Image Dataset's own: ``<scene>.tif`` images and
  ``<scene>_label.tif`` RGB colour-coded labels (beside the image or in a
  ``label_5classes/`` folder). Without a ``scenes:`` list the scenes are
  discovered from file names; a scene's source is its id up to the first ``_``.

Images and labels are opened lazily (dask); checks stream over chunks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from mlwf_nb._io import write_text
from mlwf_nb.data.raster import open_raster
from mlwf_nb.errors import DatasetError, RasterError

__all__ = [
    "ClassInfo", "Scene", "Dataset", "DEFAULT_CLASSES", "DEFAULT_BANDS", "DATASET_FILE",
    "LAYOUTS", "write_dataset_yaml", "colors_to_index",
]

DATASET_FILE = "dataset.yaml"
LAYOUTS = ("mlwf", "gid")
DEFAULT_BANDS = ["blue", "green", "red", "nir"]
_FIX = "see docs/architecture.md, 'Dataset on disk', for the format"


@dataclass(frozen=True)
class ClassInfo:
    """One land-cover class: dataset index (0 = unlabeled), name and label colour."""

    index: int
    name: str
    color: tuple[int, int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for dataset.yaml."""
        return {"index": self.index, "name": self.name, "color": list(self.color)}


DEFAULT_CLASSES: list[ClassInfo] = [
    ClassInfo(0, "unlabeled", (0, 0, 0)),
    ClassInfo(1, "built-up", (255, 0, 0)),
    ClassInfo(2, "farmland", (0, 255, 0)),
    ClassInfo(3, "forest", (0, 255, 255)),
    ClassInfo(4, "meadow", (255, 255, 0)),
    ClassInfo(5, "water", (0, 0, 255)),
]


@dataclass(frozen=True)
class Scene:
    """One scene: its id, sensor source, image file and (optional) label file."""

    id: str
    source: str
    image: Path
    label: Path | None


def write_dataset_yaml(root: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Validate ``meta`` and write it as ``root/dataset.yaml`` atomically.

    Args:
        root: The dataset folder (created if needed).
        meta: The dataset.yaml content (name, bands, dtype, nodata, classes,
            sources, scenes, layout); ``classes`` may hold :class:`ClassInfo`.

    Returns:
        The path of dataset.yaml.

    Raises:
        DatasetError: ``meta`` is not a valid dataset description.
    """
    path = Path(root) / DATASET_FILE
    data = dict(meta)
    data["classes"] = [c.to_dict() if isinstance(c, ClassInfo) else c for c in data.get("classes", [])]
    _parse(data, path)  # validate before writing
    return write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def colors_to_index(rgb: np.ndarray, classes: list[ClassInfo], where: str = "label") -> np.ndarray:
    """Map an RGB colour-coded label ``(3, H, W)`` to class indices ``(H, W)`` uint8.

    Raises:
        DatasetError: A colour is not in the class table; the message names
            ``where``, the colour and how many pixels have it.
    """
    r, g, b = (np.asarray(rgb[i], dtype=np.int64) for i in range(3))
    code = (r << 16) | (g << 8) | b
    table = np.array([(c.color[0] << 16) | (c.color[1] << 8) | c.color[2] for c in classes])
    order = np.argsort(table)
    pos = np.clip(np.searchsorted(table[order], code), 0, len(table) - 1)
    found = table[order][pos] == code
    if not found.all():
        bad = code[~found]
        first = int(bad.flat[0])
        colour = ((first >> 16) & 255, (first >> 8) & 255, first & 255)
        raise DatasetError(f"{where}: colour {colour} ({int((bad == first).sum())} pixels) is not in the "
                           f"class table {[c.color for c in classes]}; add it to classes[] in "
                           f"{DATASET_FILE} or fix the label")
    index = np.array([c.index for c in classes], dtype=np.uint8)[order]
    return index[pos]


@dataclass
class Dataset:
    """A dataset folder described by ``dataset.yaml``."""

    root: Path
    name: str
    bands: list[str]
    dtype: str
    nodata: float | None
    classes: list[ClassInfo]
    sources: list[str]
    scenes: list[Scene]
    layout: str = "mlwf"
    version: int = 1
    source_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read a dataset folder (or its dataset.yaml).

        Raises:
            DatasetError: dataset.yaml is missing or invalid; the message names it.
        """
        p = Path(path)
        yml = p if p.suffix in (".yaml", ".yml") else p / DATASET_FILE
        if not yml.is_file():
            raise DatasetError(f"{str(yml)!r} not found: {str(yml.parent)!r} is not a dataset folder; "
                               "point to a folder with a dataset.yaml, create one with "
                               "Dataset.create(...), or generate a synthetic dataset")
        try:
            data = yaml.safe_load(yml.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise DatasetError(f"{str(yml)!r} is not valid YAML: {err}") from err
        return _parse(data, yml)

    @classmethod
    def describe(cls, path: str | os.PathLike[str], scenes: list[Scene] | None = None) -> Dataset:
        """What ``dataset.yaml`` says (bands, classes, sources), with exactly ``scenes``.

        A workflow job's view of the dataset: it gets its scene files as arguments in a
        flat sandbox, so nothing is looked up beside ``dataset.yaml`` (no scene list, no
        ``images/`` folder, no discovery of a ``gid`` folder).

        Raises:
            DatasetError: dataset.yaml is missing or invalid.
        """
        yml = Path(path)
        try:
            data = yaml.safe_load(yml.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise DatasetError(f"cannot read {str(yml)!r}: {err}; a job needs the dataset's dataset.yaml") from err
        ds = _parse({**data, "scenes": []} if isinstance(data, dict) else data, yml)
        ds.scenes = list(scenes or [])
        ds.sources += sorted({s.source for s in ds.scenes} - set(ds.sources))
        return ds

    @classmethod
    def create(cls, root: str | os.PathLike[str], name: str, sources: list[str] | list[dict[str, Any]],
               classes: list[ClassInfo] | None = None, bands: list[str] | None = None,
               dtype: str = "uint16", nodata: float | None = 0, layout: str = "mlwf") -> Dataset:
        """Start a new (empty) dataset and write its dataset.yaml.

        Add scenes with :meth:`add_scene` and write them with :meth:`save`.
        """
        meta = {"name": name, "version": 1, "layout": layout, "bands": list(bands or DEFAULT_BANDS),
                "dtype": dtype, "nodata": nodata, "classes": list(classes or DEFAULT_CLASSES),
                "sources": [s if isinstance(s, dict) else {"name": s} for s in sources], "scenes": []}
        return cls.open(write_dataset_yaml(root, meta))

    def add_scene(self, scene_id: str, source: str, image: str | os.PathLike[str] | None = None,
                  label: str | os.PathLike[str] | None = None) -> Scene:
        """Add a scene (default files: images/<id>.tif and labels/<id>.tif); call :meth:`save`."""
        if source not in self.sources:
            raise DatasetError(f"{self.yaml_path}: scene {scene_id!r} has unknown source {source!r}; "
                               f"add it to sources (known: {self.sources})")
        if any(s.id == scene_id for s in self.scenes):
            raise DatasetError(f"{self.yaml_path}: scene {scene_id!r} already exists; ids must be unique")
        scene = _scene(self.root, {"id": scene_id, "source": source,
                                   **({"image": str(image)} if image else {}),
                                   **({"label": str(label)} if label else {})}, self.layout)
        self.scenes.append(scene)
        return scene

    def to_dict(self) -> dict[str, Any]:
        """The dataset.yaml content."""
        scenes = []
        for s in self.scenes:
            entry: dict[str, Any] = {"id": s.id, "source": s.source}
            if s.image != _default_image(self.root, s.id):
                entry["image"] = _rel(s.image, self.root)
            if s.label is not None and s.label != _default_label(self.root, s.id):
                entry["label"] = _rel(s.label, self.root)
            scenes.append(entry)
        sources = [{"name": n, **self.source_info.get(n, {})} for n in self.sources]
        return {"name": self.name, "version": self.version, "layout": self.layout,
                "bands": list(self.bands), "dtype": self.dtype, "nodata": self.nodata,
                "classes": [c.to_dict() for c in self.classes], "sources": sources, "scenes": scenes}

    def save(self) -> Path:
        """Write dataset.yaml atomically."""
        return write_dataset_yaml(self.root, self.to_dict())

    # -- look-ups -------------------------------------------------------------------------
    @property
    def yaml_path(self) -> Path:
        """The dataset.yaml file."""
        return self.root / DATASET_FILE

    @property
    def class_names(self) -> list[str]:
        """Model class names (index 0, unlabeled, left out), model class k = index k + 1."""
        return [c.name for c in self.classes if c.index > 0]

    @property
    def class_colors(self) -> list[tuple[int, int, int]]:
        """Colours of the model classes, in the order of :attr:`class_names`."""
        return [c.color for c in self.classes if c.index > 0]

    @property
    def num_classes(self) -> int:
        """Number of model classes (without unlabeled)."""
        return len(self.class_names)

    def scene(self, scene_id: str) -> Scene:
        """The scene with this id (DatasetError listing some known ids otherwise)."""
        for s in self.scenes:
            if s.id == scene_id:
                return s
        known = ", ".join(s.id for s in self.scenes[:8]) + (" ..." if len(self.scenes) > 8 else "")
        raise DatasetError(f"{self.yaml_path}: no scene {scene_id!r}; known scenes: {known or 'none'}")

    def scenes_by_source(self) -> dict[str, list[str]]:
        """Scene ids grouped by source, in the order of :attr:`sources`."""
        out: dict[str, list[str]] = {s: [] for s in self.sources}
        for sc in self.scenes:
            out.setdefault(sc.source, []).append(sc.id)
        return out

    # -- data -----------------------------------------------------------------------------
    def open_image(self, scene_id: str, chunks: bool | int | dict[str, int] | None = True) -> xr.DataArray:
        """The scene's image, ``(band, y, x)``, lazily (dask chunks)."""
        return open_raster(self.scene(scene_id).image, chunks=chunks)

    def open_label(self, scene_id: str, chunks: bool | int | dict[str, int] | None = True) -> xr.DataArray:
        """The scene's label as ``(y, x)`` uint8 dataset class indices, lazily.

        One-band labels are class indices already; three-band labels (the
        ``gid`` layout) are mapped through ``classes[].color``, and a colour
        missing from the table raises DatasetError when the values are computed.
        """
        scene = self.scene(scene_id)
        if scene.label is None:
            raise DatasetError(f"scene {scene_id!r} of {self.yaml_path} has no label file; "
                               "add labels/<scene>.tif or give `label:` in dataset.yaml")
        da = open_raster(scene.label, chunks=chunks)
        if da.sizes["band"] == 1:
            return da.isel(band=0, drop=True).astype(np.uint8)
        if da.sizes["band"] != 3:
            raise RasterError(f"label {str(scene.label)!r} has {da.sizes['band']} bands; expected 1 "
                              "(class index) or 3 (RGB colours)")
        where, classes = str(scene.label), self.classes
        out = xr.apply_ufunc(lambda a: colors_to_index(np.moveaxis(a, -1, 0), classes, where), da,
                             input_core_dims=[["band"]], output_core_dims=[[]], dask="parallelized",
                             output_dtypes=[np.uint8])
        return out.transpose("y", "x")

    # -- checks ---------------------------------------------------------------------------
    def check_scene(self, scene_id: str) -> None:
        """Check one scene's files against dataset.yaml, streaming over chunks.

        Checks: the image is a complete GeoTIFF with ``len(bands)`` bands of
        ``dtype``; it is not all nodata; the label (if any) has the image's
        shape and transform and only values (or colours) of the class table.

        Raises:
            RasterError: A file is unreadable, truncated, or disagrees with its partner.
            DatasetError: Other problems; each message names the file and the fix.
        """
        scene = self.scene(scene_id)
        image = open_raster(scene.image)
        _check_image(self, scene, image)
        if scene.label is not None:
            _check_label(self, scene, image)

    def check(self, raise_on_error: bool = True) -> list[DatasetError]:
        """Check every scene (:meth:`check_scene`).

        Returns:
            The problems found (empty when all is well) if ``raise_on_error`` is false.

        Raises:
            DatasetError: With ``raise_on_error``: the problem itself if there is
                one, or one error listing them all.
        """
        errors: list[DatasetError] = []
        for scene in self.scenes:
            try:
                self.check_scene(scene.id)
            except DatasetError as err:
                errors.append(err)
        if errors and raise_on_error:
            if len(errors) == 1:
                raise errors[0]
            lines = "\n".join(f"  - {e}" for e in errors)
            raise DatasetError(f"{len(errors)} problems in dataset {str(self.root)!r}:\n{lines}")
        return errors


# -- parsing ---------------------------------------------------------------------------

def _parse(data: Any, yml: Path) -> Dataset:
    if not isinstance(data, dict):
        raise DatasetError(f"{str(yml)!r} must be a mapping of keys, got {type(data).__name__}; {_FIX}")
    missing = [k for k in ("name", "bands", "classes", "sources") if k not in data]
    if missing:
        raise DatasetError(f"{str(yml)!r} lacks the key(s) {missing}; {_FIX}")
    layout = data.get("layout", "mlwf")
    if layout not in LAYOUTS:
        raise DatasetError(f"{str(yml)!r}: layout {layout!r} is unknown; use one of {list(LAYOUTS)}")
    bands = data["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise DatasetError(f"{str(yml)!r}: bands must be a non-empty list of names, got {bands!r}")
    dtype = str(data.get("dtype", "uint16"))
    try:
        np.dtype(dtype)
    except TypeError as err:
        raise DatasetError(f"{str(yml)!r}: dtype {dtype!r} is not a numpy dtype (e.g. uint16)") from err
    classes = _parse_classes(data["classes"], yml)
    sources, info = _parse_sources(data["sources"], yml)
    root = yml.parent
    if data.get("scenes") is None and layout == "gid":
        scenes = _discover_gid(root, data, yml)
        sources = sources + sorted({s.source for s in scenes} - set(sources))
    else:
        scenes = _parse_scenes(data.get("scenes") or [], root, sources, layout, yml)
    return Dataset(root=root, name=str(data["name"]), bands=list(bands), dtype=dtype,
                   nodata=data.get("nodata", 0), classes=classes, sources=sources, scenes=scenes,
                   layout=layout, version=int(data.get("version", 1)), source_info=info)


def _parse_classes(raw: Any, yml: Path) -> list[ClassInfo]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise DatasetError(f"{str(yml)!r}: classes must list index 0 (unlabeled) and at least one class")
    out = []
    for i, c in enumerate(raw):
        try:
            color = tuple(int(v) for v in c["color"])
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise ValueError("color")
            out.append(ClassInfo(int(c["index"]), str(c["name"]), color))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{str(yml)!r}: classes[{i}] = {c!r} must be "
                               "{index: int, name: str, color: [r, g, b] in 0..255}") from err
    indices = [c.index for c in out]
    if sorted(indices) != list(range(len(out))):
        raise DatasetError(f"{str(yml)!r}: class indices must be 0..{len(out) - 1} (0 = unlabeled), "
                           f"got {indices}")
    if len({c.color for c in out}) != len(out):
        raise DatasetError(f"{str(yml)!r}: two classes share a colour; give each class its own")
    return sorted(out, key=lambda c: c.index)


def _parse_sources(raw: Any, yml: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    if not isinstance(raw, list):
        raise DatasetError(f"{str(yml)!r}: sources must be a list of names or {{name: ...}} entries")
    names, info = [], {}
    for i, s in enumerate(raw):
        if isinstance(s, str):
            names.append(s)
        elif isinstance(s, dict) and isinstance(s.get("name"), str):
            names.append(s["name"])
            info[s["name"]] = {k: v for k, v in s.items() if k != "name"}
        else:
            raise DatasetError(f"{str(yml)!r}: sources[{i}] = {s!r} needs a name")
    return names, info


def _parse_scenes(raw: Any, root: Path, sources: list[str], layout: str, yml: Path) -> list[Scene]:
    if not isinstance(raw, list):
        raise DatasetError(f"{str(yml)!r}: scenes must be a list of {{id, source}} entries")
    out, seen = [], set()
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or not isinstance(s.get("id"), str):
            raise DatasetError(f"{str(yml)!r}: scenes[{i}] = {s!r} needs an id and a source")
        if s.get("source") not in sources:
            raise DatasetError(f"{str(yml)!r}: scene {s['id']!r} has source {s.get('source')!r}, "
                               f"which is not in sources {sources}; add it there")
        if s["id"] in seen:
            raise DatasetError(f"{str(yml)!r}: scene id {s['id']!r} appears twice; ids must be unique")
        seen.add(s["id"])
        out.append(_scene(root, s, layout))
    return out


def _safe_scene(root: Path, s: dict[str, Any]) -> None:
    """Scene ids and file paths must not escape the dataset folder (see :mod:`mlwf_nb.safety`)."""
    from mlwf_nb.safety import UnsafeNameError, check_name, check_within

    try:
        check_name(s["id"], "scene id")
        for key in ("image", "label"):
            if s.get(key):
                check_within(s[key], root, f"scene {key}")
    except UnsafeNameError as err:
        raise DatasetError(f"{str(root / DATASET_FILE)!r}: scene {s['id']!r}: {err}") from err


def _scene(root: Path, s: dict[str, Any], layout: str) -> Scene:
    _safe_scene(root, s)
    image = root / s["image"] if s.get("image") else _default_image(root, s["id"])
    if s.get("label"):
        label: Path | None = root / s["label"]
    elif layout == "gid":
        label = _find_gid_label(root, image)
    else:
        label = _default_label(root, s["id"])
        label = label if label.exists() else None
    return Scene(id=s["id"], source=str(s["source"]), image=image, label=label)


def _default_image(root: Path, scene_id: str) -> Path:
    return root / "images" / f"{scene_id}.tif"


def _default_label(root: Path, scene_id: str) -> Path:
    return root / "labels" / f"{scene_id}.tif"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -- gid layout ------------------------------------------------------------------------

_GID_LABEL_DIRS = ("label_5classes", "labels", "label")
_GID_IMAGE_DIRS = ("images", "image_NirRGB", "image_RGB")


def _discover_gid(root: Path, data: dict[str, Any], yml: Path) -> list[Scene]:
    """Scenes of a GID folder: ``<scene>.tif`` images, ``<scene>_label.tif`` labels."""
    image_dir = root / data["image_dir"] if data.get("image_dir") else next(
        (root / d for d in _GID_IMAGE_DIRS if (root / d).is_dir()), root)
    images = sorted(p for p in image_dir.glob("*.tif") if not p.stem.endswith("_label"))
    if not images:
        raise DatasetError(f"{str(yml)!r}: layout gid without a scenes list, but no <scene>.tif "
                           f"images in {str(image_dir)!r}; add images or list scenes")
    return [Scene(id=p.stem, source=p.stem.split("_", 1)[0], image=p, label=_find_gid_label(root, p))
            for p in images]


def _find_gid_label(root: Path, image: Path) -> Path | None:
    name = f"{image.stem}_label.tif"
    for cand in (image.parent / name, *(root / d / name for d in _GID_LABEL_DIRS)):
        if cand.is_file():
            return cand
    return None


# -- checks ----------------------------------------------------------------------------

def _check_image(ds: Dataset, scene: Scene, image: xr.DataArray) -> None:
    where = str(scene.image)
    if image.sizes["band"] != len(ds.bands):
        raise RasterError(f"image {where!r} has {image.sizes['band']} bands but {ds.yaml_path} declares "
                          f"{len(ds.bands)} ({', '.join(ds.bands)}); fix the bands list or the image")
    if np.dtype(image.dtype) != np.dtype(ds.dtype):
        raise RasterError(f"image {where!r} has dtype {image.dtype} but {ds.yaml_path} declares "
                          f"{ds.dtype}; fix dtype in dataset.yaml or re-export the image")
    if ds.nodata is not None and not bool((image != ds.nodata).any().compute()):
        raise DatasetError(f"image {where!r} holds only nodata ({ds.nodata}); remove the scene from "
                           f"{ds.yaml_path} or replace the image")


def _check_label(ds: Dataset, scene: Scene, image: xr.DataArray) -> None:
    assert scene.label is not None
    where = str(scene.label)
    label = open_raster(scene.label)
    if (label.sizes["y"], label.sizes["x"]) != (image.sizes["y"], image.sizes["x"]):
        raise RasterError(f"label {where!r} is {label.sizes['y']}x{label.sizes['x']} but image "
                          f"{str(scene.image)!r} is {image.sizes['y']}x{image.sizes['x']}; labels must "
                          "cover the image pixel for pixel")
    if not label.rio.transform().almost_equals(image.rio.transform()):
        raise RasterError(f"label {where!r} has transform {tuple(label.rio.transform())[:6]} but image "
                          f"{str(scene.image)!r} has {tuple(image.rio.transform())[:6]}; write the label "
                          "with the image's georeference (write_like)")
    values = ds.open_label(scene.id)  # gid colours: unknown colours raise while computing
    top = int(values.max().compute())
    if top >= len(ds.classes):
        raise DatasetError(f"label {where!r} holds class index {top}, but {ds.yaml_path} defines "
                           f"indices 0..{len(ds.classes) - 1}; fix the label or add the class")
