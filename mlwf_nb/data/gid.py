"""The Gaofen Image Dataset (GID) read as downloaded: layout, band order, classes and sources.

GID's large-scale classification set unpacks to::

    image_NirRGB/GF2_PMS1__L1A0000564539-MSS1.tif          4 bands: NIR, R, G, B
    image_RGB/GF2_PMS1__L1A0000564539-MSS1.tif             3 bands: R, G, B (optional)
    label_5classes/GF2_PMS1__L1A0000564539-MSS1_label.tif  RGB colour-coded labels

and its fine land-cover set has ``label_15classes/`` instead. Such a folder needs no
``dataset.yaml``: :func:`describe` gives the description :class:`~mlwf_nb.data.dataset.Dataset`
uses (nothing is written into the folder). The band order comes from the image folder,
the class table from the label folder (``gid-5`` or ``gid-15``, see
:mod:`mlwf_nb.data.classes`), the dtype from the first image, and each scene's sensor
source from its name up to the first ``_``, normalised (``GF2`` -> ``GF-2``). See
``docs/gid.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["IMAGE_DIRS", "LABEL_DIRS", "NODATA", "describe", "is_gid_folder", "normalise_source", "source_key",
           "scene_source", "find_label", "image_files"]

IMAGE_DIRS: dict[str, list[str]] = {"image_NirRGB": ["nir", "red", "green", "blue"],
                                    "image_RGB": ["red", "green", "blue"]}
"""GID's image folders and the band order of their files (preferred first)."""

LABEL_DIRS: dict[str, str] = {"label_5classes": "gid-5", "label_15classes": "gid-15"}
"""GID's label folders and their class tables."""

NODATA = 0
"""GID scenes are filled with 0 outside the imaged area (a pixel is nodata where every band is 0)."""

_OTHER_LABEL_DIRS = ("labels", "label")
_SOURCE = re.compile(r"([A-Za-z]{1,4})[-_ ]?(\d+[A-Za-z]?)")


def normalise_source(name: str) -> str:
    """A sensor name as this toolkit spells it: ``GF2``, ``gf-2`` and ``GF_2`` become ``GF-2``.

    Short letter+number codes (GF-1, GF-2, JL-1, ZY-3) get upper case and one hyphen;
    other names (``Sentinel-2A``) are kept as they are.
    """
    text = name.strip()
    m = _SOURCE.fullmatch(text)
    return f"{m[1].upper()}-{m[2].upper()}" if m else text


def source_key(name: str) -> str:
    """What two spellings of one source share (``GF-2`` and ``gf2`` -> ``gf2``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def scene_source(scene_id: str) -> str:
    """The sensor source of a GID scene: its name up to the first ``_``, normalised."""
    return normalise_source(scene_id.split("_", 1)[0])


def image_files(folder: Path) -> list[Path]:
    """The scene images of a folder: ``*.tif`` / ``*.tiff`` that are not ``*_label`` files, sorted."""
    found = [p for p in folder.glob("*.tif*") if p.suffix.lower() in (".tif", ".tiff")]
    return sorted(p for p in found if not p.stem.endswith("_label"))


def _first_dir(root: Path, names: Any) -> str | None:
    return next((d for d in names if (root / d).is_dir()), None)


def is_gid_folder(root: Path) -> bool:
    """Whether ``root`` has a GID image folder (``image_NirRGB/`` or ``image_RGB/``) with images."""
    name = _first_dir(root, IMAGE_DIRS)
    return name is not None and bool(image_files(root / name))


def describe(root: Path) -> dict[str, Any] | None:
    """The ``dataset.yaml`` content of a GID folder as downloaded, or None when ``root`` is not one."""
    image_dir = _first_dir(root, IMAGE_DIRS)
    if image_dir is None:
        return None
    images = image_files(root / image_dir)
    if not images:
        return None
    label_dir = _first_dir(root, LABEL_DIRS)
    meta: dict[str, Any] = {
        "name": root.resolve().name, "version": 1, "layout": "gid", "bands": list(IMAGE_DIRS[image_dir]),
        "dtype": _dtype(images[0]), "nodata": NODATA, "classes": LABEL_DIRS.get(label_dir or "", "gid-5"),
        "sources": sorted({scene_source(p.stem) for p in images}), "image_dir": image_dir,
    }
    if label_dir is not None:
        meta["label_dir"] = label_dir
    return meta


def _dtype(path: Path) -> str:
    """The pixel type of a GeoTIFF from its header (no pixels read)."""
    import rasterio

    from mlwf_nb.data.raster import check_tiff
    from mlwf_nb.errors import RasterError

    check_tiff(path)
    try:
        with rasterio.open(path) as src:
            return str(src.dtypes[0])
    except rasterio.errors.RasterioError as err:
        raise RasterError(f"cannot open raster {str(path)!r}: {err}; check that it is a GeoTIFF") from err


def find_label(root: Path, image: Path, label_dir: str | None = None) -> Path | None:
    """The ``<scene>_label.tif`` of an image: in ``label_dir`` if given, else beside it or in a label folder."""
    name = f"{image.stem}_label{image.suffix}"
    places = [root / label_dir] if label_dir else [image.parent, *(root / d for d in (*LABEL_DIRS,
                                                                                        *_OTHER_LABEL_DIRS))]
    return next((p / name for p in places if (p / name).is_file()), None)
