"""A dataset folder: its description, its scenes, and their images and labels.

Two layouts are read (see ``docs/architecture.md`` and ``docs/gid.md``):

* ``mlwf`` — ``dataset.yaml`` listing the scenes, ``images/<scene>.tif`` (bands per
  ``bands``) and ``labels/<scene>.tif`` (one band, uint8 class index, 0 = unlabeled).
* ``gid`` — the Gaofen Image Dataset's own: ``<scene>.tif`` images and
  ``<scene>_label.tif`` RGB colour-coded labels. A GID folder as downloaded
  (``image_NirRGB/``, ``label_5classes/``) needs no ``dataset.yaml`` at all
  (:mod:`mlwf_nb.data.gid`); with one, its keys override the built-in description.

Opening a dataset never writes into its folder, so shared read-only datasets work.
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

from mlwf_nb import _yaml
from mlwf_nb._io import write_text
from mlwf_nb.data import gid
from mlwf_nb.data.classes import DEFAULT_CLASSES, ClassInfo, colors_to_index
from mlwf_nb.data.dataset_file import (
    DATASET_FILE,
    DEFAULT_BANDS,
    LAYOUTS,
    Scene,
    default_image,
    default_label,
    parse,
    scene_from,
)
from mlwf_nb.data.nodata import BandNodata, band_nodata
from mlwf_nb.data.raster import open_raster
from mlwf_nb.errors import DatasetError, RasterError

__all__ = [
    "ClassInfo", "Scene", "Dataset", "DEFAULT_CLASSES", "DEFAULT_BANDS", "DATASET_FILE",
    "LAYOUTS", "write_dataset_yaml", "colors_to_index", "not_a_dataset", "is_dataset",
]

WAYS_OUT = ("point dataset.path at a dataset folder (one with a dataset.yaml, or a GID folder as downloaded: "
            "image_NirRGB/ and label_5classes/, see docs/gid.md), or ask for synthetic data: a preset that "
            "has it (--preset tiny|cpu), `mlwf synth DIR`, or dataset.synthetic: true with a path that does "
            "not exist yet")


def not_a_dataset(path: str | os.PathLike[str]) -> DatasetError:
    """The error for a path that holds no dataset: what was found there and the two ways out."""
    p = Path(path)
    if not str(path):
        what = "dataset.path is empty"
    elif not p.exists():
        what = f"{str(p)!r} does not exist"
    elif not p.is_dir():
        what = f"{str(p)!r} is a file, not a dataset folder"
    elif not any(p.iterdir()):
        what = f"{str(p)!r} is an empty folder"
    else:
        what = (f"{str(p)!r} is not a dataset folder: it has no {DATASET_FILE} and no GID image folder "
                f"({', '.join(f'{d}/' for d in gid.IMAGE_DIRS)})")
    return DatasetError(f"{what}; {WAYS_OUT}")


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a dataset folder (a dataset.yaml, or a GID folder as downloaded)."""
    p = Path(path)
    return (p / DATASET_FILE).is_file() or (p.is_dir() and gid.is_gid_folder(p))


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
    if not isinstance(data.get("classes"), str):
        data["classes"] = [c.to_dict() if isinstance(c, ClassInfo) else c for c in data.get("classes", [])]
    parse(data, str(path), Path(root))  # validate before writing
    return write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


_BAND_ALIASES = {"red": ("red", "r"), "green": ("green", "g"), "blue": ("blue", "b"),
                 "nir": ("nir", "n", "near-infrared", "nearinfrared")}


@dataclass
class Dataset:
    """A dataset folder: its description (``dataset.yaml`` or built-in for GID) and its scenes."""

    root: Path
    name: str
    bands: list[str]
    dtype: str
    nodata: Any
    classes: list[ClassInfo]
    sources: list[str]
    scenes: list[Scene]
    layout: str = "mlwf"
    version: int = 1
    source_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: str = ""

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read a dataset folder (its dataset.yaml, or a GID folder as downloaded) or a dataset.yaml.

        Nothing is written into the folder.

        Raises:
            DatasetError: There is no dataset at ``path`` (the message says what was found and
                the ways out), or its description is invalid (the message names the key).
        """
        p = Path(path)
        yml = p if p.suffix in (".yaml", ".yml") else p / DATASET_FILE
        if yml.is_file():
            try:
                data = _yaml.safe_load(yml.read_text(encoding="utf-8"))
            except yaml.YAMLError as err:
                raise DatasetError(f"{str(yml)!r} is not valid YAML: {' '.join(str(err).split())}") from err
            return cls(**parse(data, str(yml), yml.parent), where=str(yml))
        described = gid.describe(p) if p.is_dir() else None
        if described is None:
            raise not_a_dataset(p)
        where = f"{p} (a GID folder read with the built-in GID description)"
        return cls(**parse(described, where, p), where=where)

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
            data = _yaml.safe_load(yml.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise DatasetError(f"cannot read {str(yml)!r}: {' '.join(str(err).split())}; a job needs the "
                               "dataset's dataset.yaml") from err
        ds = cls(**parse({**data, "scenes": []} if isinstance(data, dict) else data, str(yml), yml.parent),
                 where=str(yml))
        ds.scenes = list(scenes or [])
        ds.sources += sorted({s.source for s in ds.scenes} - set(ds.sources))
        return ds

    @classmethod
    def create(cls, root: str | os.PathLike[str], name: str, sources: list[str] | list[dict[str, Any]],
               classes: list[ClassInfo] | None = None, bands: list[str] | None = None,
               dtype: str = "uint16", nodata: Any = 0, layout: str = "mlwf") -> Dataset:
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
            raise DatasetError(f"{self.where}: scene {scene_id!r} has unknown source {source!r}; "
                               f"add it to sources (known: {self.sources})")
        if any(s.id == scene_id for s in self.scenes):
            raise DatasetError(f"{self.where}: scene {scene_id!r} already exists; ids must be unique")
        scene = scene_from(self.root, {"id": scene_id, "source": source,
                                       **({"image": str(image)} if image else {}),
                                       **({"label": str(label)} if label else {})}, self.layout)
        self.scenes.append(scene)
        return scene

    def to_dict(self) -> dict[str, Any]:
        """The dataset.yaml content (every scene listed)."""
        scenes = []
        for s in self.scenes:
            entry: dict[str, Any] = {"id": s.id, "source": s.source}
            if s.image != default_image(self.root, s.id):
                entry["image"] = _rel(s.image, self.root)
            if s.label is not None and s.label != default_label(self.root, s.id):
                entry["label"] = _rel(s.label, self.root)
            scenes.append(entry)
        sources = [{"name": n, **self.source_info.get(n, {})} for n in self.sources]
        return {"name": self.name, "version": self.version, "layout": self.layout,
                "bands": list(self.bands), "dtype": self.dtype, "nodata": self.nodata,
                "classes": [c.to_dict() for c in self.classes], "sources": sources, "scenes": scenes}

    def save(self) -> Path:
        """Write dataset.yaml atomically (into the dataset folder: only when asked)."""
        return write_dataset_yaml(self.root, self.to_dict())

    # -- look-ups -------------------------------------------------------------------------
    @property
    def yaml_path(self) -> Path:
        """The dataset.yaml file (it need not exist: a GID folder is read without one)."""
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

    @property
    def band_nodata(self) -> BandNodata:
        """Nodata per band (:mod:`mlwf_nb.data.nodata`)."""
        return band_nodata(self.nodata, len(self.bands), f"{self.where}: nodata")

    def band_index(self, name: str) -> int | None:
        """Index of the band called ``name`` (red, green, blue, nir; a few spellings), or None."""
        aliases = _BAND_ALIASES.get(name, (name,))
        return next((i for i, b in enumerate(self.bands) if b.strip().lower() in aliases), None)

    @property
    def true_color_bands(self) -> tuple[int, int, int]:
        """Indices of red, green and blue (the first three bands when they are not named so)."""
        found = [self.band_index(n) for n in ("red", "green", "blue")]
        if any(i is None for i in found):
            return (0, 1, 2) if len(self.bands) >= 3 else (0, 0, 0)
        return (found[0], found[1], found[2])  # type: ignore[return-value]

    @property
    def false_color_bands(self) -> tuple[int, int, int]:
        """Indices of NIR, red and green (colour infrared); the true colour bands without a NIR band."""
        nir = self.band_index("nir")
        r, g, _ = self.true_color_bands
        return (nir, r, g) if nir is not None else self.true_color_bands

    def scene(self, scene_id: str) -> Scene:
        """The scene with this id (DatasetError listing some known ids otherwise)."""
        for s in self.scenes:
            if s.id == scene_id:
                return s
        known = ", ".join(s.id for s in self.scenes[:8]) + (" ..." if len(self.scenes) > 8 else "")
        raise DatasetError(f"{self.where}: no scene {scene_id!r}; known scenes: {known or 'none'}")

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
        """The scene's label as ``(y, x)`` uint8 dataset class indices, lazily (:meth:`read_label`)."""
        scene = self.scene(scene_id)
        if scene.label is None:
            raise DatasetError(f"scene {scene_id!r} of {self.where} has no label file; "
                               "add labels/<scene>.tif or give `label:` in dataset.yaml")
        return self.read_label(scene.label, chunks)

    def read_label(self, path: str | os.PathLike[str],
                   chunks: bool | int | dict[str, int] | None = True) -> xr.DataArray:
        """A label file of this dataset as ``(y, x)`` uint8 class indices, lazily.

        One-band labels are class indices already; three-band labels (GID's colour-coded
        ones) are mapped through ``classes[].color``, and a colour missing from the table
        raises DatasetError when the values are computed.
        """
        da = open_raster(path, chunks=chunks)
        if da.sizes["band"] == 1:
            return da.isel(band=0, drop=True).astype(np.uint8)
        if da.sizes["band"] != 3:
            raise RasterError(f"label {str(path)!r} has {da.sizes['band']} bands; expected 1 "
                              "(class index) or 3 (RGB colours)")
        where, classes = str(path), self.classes
        out = xr.apply_ufunc(lambda a: colors_to_index(np.moveaxis(a, -1, 0), classes, where), da,
                             input_core_dims=[["band"]], output_core_dims=[[]], dask="parallelized",
                             output_dtypes=[np.uint8])
        return out.transpose("y", "x")

    # -- checks ---------------------------------------------------------------------------
    def check_scene(self, scene_id: str) -> None:
        """Check one scene's files against the description, streaming over chunks.

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


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -- checks ----------------------------------------------------------------------------

def _check_image(ds: Dataset, scene: Scene, image: xr.DataArray) -> None:
    where = str(scene.image)
    if image.sizes["band"] != len(ds.bands):
        raise RasterError(f"image {where!r} has {image.sizes['band']} bands but {ds.where} declares "
                          f"{len(ds.bands)} ({', '.join(ds.bands)}); fix the bands list or the image")
    if np.dtype(image.dtype) != np.dtype(ds.dtype):
        raise RasterError(f"image {where!r} has dtype {image.dtype} but {ds.where} declares "
                          f"{ds.dtype}; fix dtype in dataset.yaml or re-export the image")
    from mlwf_nb.data.nodata import has_nodata, nodata_mask

    nodata = ds.band_nodata
    if has_nodata(nodata) and not _any_valid(image, lambda b: bool((~nodata_mask(b, nodata, 0)).any())):  # type: ignore[operator]
        raise DatasetError(f"image {where!r} holds only nodata ({ds.nodata}); remove the scene from "
                           f"{ds.where} or replace the image")


def _any_valid(image: xr.DataArray, valid: Any) -> bool:
    """Whether ``valid(block)`` holds for some chunk of a (band, y, x) raster (stops at the first)."""
    from mlwf_nb.data.chunks import chunk_slices, stream

    data = image.data
    if not hasattr(data, "compute"):
        return bool(valid(np.asarray(data)))
    data = data.rechunk({0: -1}) if len(data.chunks[0]) > 1 else data
    return any(ok for _, ok in stream(data, chunk_slices(data), valid))


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
        raise DatasetError(f"label {where!r} holds class index {top}, but {ds.where} defines "
                           f"indices 0..{len(ds.classes) - 1}; fix the label or add the class")
