"""The ``dataset.yaml`` format: parsed and checked into what :class:`~mlwf_nb.data.dataset.Dataset` holds.

Keys: ``name``, ``bands`` (names in file order, e.g. ``[nir, red, green, blue]``),
``dtype``, ``nodata`` (one value, one per band, or null: :mod:`mlwf_nb.data.nodata`),
``classes`` (a list of ``{index, name, color}`` or a built-in table name: ``gid-5``,
``gid-15``), ``sources`` (names or ``{name: ...}`` entries), ``scenes`` (``{id, source,
image?, label?}``), ``layout`` (``mlwf`` or ``gid``), ``image_dir`` / ``label_dir``
(``gid``), ``version``. Every problem is a :class:`DatasetError` naming the file and the key.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb.data import gid
from mlwf_nb.data.classes import CLASS_TABLES, ClassInfo
from mlwf_nb.data.nodata import band_nodata
from mlwf_nb.errors import DatasetError, DatasetWarning

__all__ = ["DATASET_FILE", "LAYOUTS", "DEFAULT_BANDS", "FORMAT_HELP", "Scene", "parse", "default_image",
           "default_label"]

DATASET_FILE = "dataset.yaml"
LAYOUTS = ("mlwf", "gid")
DEFAULT_BANDS = ["blue", "green", "red", "nir"]
FORMAT_HELP = "see docs/architecture.md, 'Dataset on disk', for the format"


@dataclass(frozen=True)
class Scene:
    """One scene: its id, sensor source, image file and (optional) label file."""

    id: str
    source: str
    image: Path
    label: Path | None


def parse(data: Any, where: str, root: Path) -> dict[str, Any]:
    """Check dataset.yaml content and return the :class:`Dataset` fields.

    Args:
        data: The parsed YAML (or a built-in description).
        where: What to name in messages (the file, or the folder for a built-in description).
        root: The dataset folder that relative scene paths start from.

    Raises:
        DatasetError: Anything malformed; the message names ``where`` and the key.
    """
    if not isinstance(data, dict):
        raise DatasetError(f"{where!r} must be a mapping of keys, got {type(data).__name__}; {FORMAT_HELP}")
    missing = [k for k in ("name", "bands", "classes", "sources") if k not in data]
    if missing:
        raise DatasetError(f"{where!r} lacks the key(s) {missing}; {FORMAT_HELP}")
    layout = data.get("layout", "mlwf")
    if layout not in LAYOUTS:
        raise DatasetError(f"{where!r}: layout {layout!r} is unknown; use one of {list(LAYOUTS)}")
    bands = data["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise DatasetError(f"{where!r}: bands must be a non-empty list of names, got {bands!r}")
    dtype = str(data.get("dtype", "uint16"))
    try:
        np.dtype(dtype)
    except TypeError as err:
        raise DatasetError(f"{where!r}: dtype {dtype!r} is not a numpy dtype (e.g. uint16)") from err
    nodata = data.get("nodata", 0)
    band_nodata(nodata, len(bands), f"{where!r}: nodata")  # checked here, used through Dataset.band_nodata
    classes = _parse_classes(data["classes"], where)
    sources, info = _parse_sources(data["sources"], where)
    if data.get("scenes") is None and layout == "gid":
        scenes = _discover_gid(root, data, where)
        sources = _match_sources(sources, scenes, where)
        scenes = [Scene(s.id, _spelling(s.source, sources), s.image, s.label) for s in scenes]
    else:
        scenes = _parse_scenes(data.get("scenes") or [], root, sources, layout, where, data.get("label_dir"))
    return {"root": root, "name": str(data["name"]), "bands": list(bands), "dtype": dtype, "nodata": nodata,
            "classes": classes, "sources": sources, "scenes": scenes, "layout": layout,
            "version": int(data.get("version", 1)), "source_info": info}


def _parse_classes(raw: Any, where: str) -> list[ClassInfo]:
    if isinstance(raw, str):
        if raw not in CLASS_TABLES:
            raise DatasetError(f"{where!r}: classes {raw!r} is not a built-in class table; use one of "
                               f"{sorted(CLASS_TABLES)} or list the classes")
        return list(CLASS_TABLES[raw])
    if not isinstance(raw, list) or len(raw) < 2:
        raise DatasetError(f"{where!r}: classes must list index 0 (unlabeled) and at least one class, or "
                           f"name a built-in table ({', '.join(sorted(CLASS_TABLES))})")
    out = []
    for i, c in enumerate(raw):
        try:
            color = tuple(int(v) for v in c["color"])
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise ValueError("color")
            out.append(ClassInfo(int(c["index"]), str(c["name"]), color))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{where!r}: classes[{i}] = {c!r} must be "
                               "{index: int, name: str, color: [r, g, b] in 0..255}") from err
    indices = [c.index for c in out]
    if sorted(indices) != list(range(len(out))):
        raise DatasetError(f"{where!r}: class indices must be 0..{len(out) - 1} (0 = unlabeled), got {indices}")
    if len({c.color for c in out}) != len(out):
        raise DatasetError(f"{where!r}: two classes share a colour; give each class its own")
    return sorted(out, key=lambda c: c.index)


def _parse_sources(raw: Any, where: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    if not isinstance(raw, list):
        raise DatasetError(f"{where!r}: sources must be a list of names or {{name: ...}} entries")
    names, info = [], {}
    for i, s in enumerate(raw):
        if isinstance(s, str):
            names.append(s)
        elif isinstance(s, dict) and isinstance(s.get("name"), str):
            names.append(s["name"])
            info[s["name"]] = {k: v for k, v in s.items() if k != "name"}
        else:
            raise DatasetError(f"{where!r}: sources[{i}] = {s!r} needs a name")
    return names, info


def _spelling(found: str, declared: list[str]) -> str:
    """The declared spelling of a found source (``GF2`` found, ``GF-2`` declared: ``GF-2``)."""
    return next((d for d in declared if gid.source_key(d) == gid.source_key(found)), found)


def _match_sources(declared: list[str], scenes: list[Scene], where: str) -> list[str]:
    """Declared sources (in their spelling) plus the ones found; a declared source without scenes warns."""
    found = {gid.source_key(s.source) for s in scenes}
    for name in declared:
        if gid.source_key(name) not in found:
            names = sorted({s.source for s in scenes})
            warnings.warn(DatasetWarning(f"{where}: source {name!r} is declared but no scene has it (the "
                                         f"scenes' sources are {names}); check the scene names or the "
                                         "sources list"), stacklevel=3)
    extra = sorted({s.source for s in scenes if _spelling(s.source, declared) == s.source} - set(declared))
    return [*declared, *extra]


def _parse_scenes(raw: Any, root: Path, sources: list[str], layout: str, where: str,
                  label_dir: str | None) -> list[Scene]:
    if not isinstance(raw, list):
        raise DatasetError(f"{where!r}: scenes must be a list of {{id, source}} entries")
    out, seen = [], set()
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or not isinstance(s.get("id"), str):
            raise DatasetError(f"{where!r}: scenes[{i}] = {s!r} needs an id and a source")
        if s.get("source") not in sources:
            near = _spelling(str(s.get("source")), sources)
            hint = f" (did you mean {near!r}?)" if near in sources else ""
            raise DatasetError(f"{where!r}: scene {s['id']!r} has source {s.get('source')!r}{hint}, "
                               f"which is not in sources {sources}; add it there")
        if s["id"] in seen:
            raise DatasetError(f"{where!r}: scene id {s['id']!r} appears twice; ids must be unique")
        seen.add(s["id"])
        out.append(scene_from(root, s, layout, label_dir))
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


def scene_from(root: Path, s: dict[str, Any], layout: str, label_dir: str | None = None) -> Scene:
    """A :class:`Scene` from a ``scenes:`` entry (default files by layout)."""
    _safe_scene(root, s)
    image = root / s["image"] if s.get("image") else default_image(root, s["id"])
    if s.get("label"):
        label: Path | None = root / s["label"]
    elif layout == "gid":
        label = gid.find_label(root, image, label_dir)
    else:
        label = default_label(root, s["id"])
        label = label if label.exists() else None
    return Scene(id=s["id"], source=str(s["source"]), image=image, label=label)


def default_image(root: Path, scene_id: str) -> Path:
    """``images/<id>.tif``."""
    return root / "images" / f"{scene_id}.tif"


def default_label(root: Path, scene_id: str) -> Path:
    """``labels/<id>.tif``."""
    return root / "labels" / f"{scene_id}.tif"


def _discover_gid(root: Path, data: dict[str, Any], where: str) -> list[Scene]:
    """Scenes of a GID folder: ``<scene>.tif`` images, ``<scene>_label.tif`` labels, sources from the names."""
    image_dir = root / data["image_dir"] if data.get("image_dir") else next(
        (root / d for d in gid.IMAGE_DIRS if (root / d).is_dir()), root)
    images = gid.image_files(image_dir)
    if not images:
        raise DatasetError(f"{where!r}: layout gid without a scenes list, but no <scene>.tif images in "
                           f"{str(image_dir)!r}; add images or list scenes")
    scenes = []
    for p in images:
        _safe_scene(root, {"id": p.stem})
        scenes.append(Scene(id=p.stem, source=gid.scene_source(p.stem), image=p,
                            label=gid.find_label(root, p, data.get("label_dir"))))
    return scenes
