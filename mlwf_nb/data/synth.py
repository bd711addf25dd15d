"""A synthetic GID-like land-cover dataset: 4-band uint16 scenes with class labels.

Each scene is laid out from a few cheap ingredients that every row block can
evaluate on its own, so a GID-size scene (6800 x 7200 x 4) is written block by
block without ever holding the whole image:

* low-resolution smoothed noise fields (one per class zone), upsampled
  bilinearly: meadow is the background, farmland zones are cut into brick-like
  rectangular parcels with different crops, forest is thresholded noise with
  rough edges, built-up zones are blocks of roofs between streets, water is
  lakes plus meandering rivers;
* per-material spectral signatures (B, G, R, NIR, 10-bit DN), a periodic
  texture tile, sensor gain/offset/noise per source, clipped to 1..1023 so the
  nodata value 0 never appears inside a scene;
* a thin dashed line of unlabeled (0) pixels along class borders, as in GID.

The same seed and arguments give byte-identical rasters.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window
from scipy import ndimage

from mlwf_nb._io import atomic_path, ensure_dir
from mlwf_nb.data.dataset import DEFAULT_CLASSES, write_dataset_yaml
from mlwf_nb.errors import DatasetError

__all__ = ["SOURCES", "CLASSES", "CRS_EPSG", "generate_dataset", "summarize"]

CRS_EPSG = 32650  # WGS 84 / UTM zone 50N, where many GID scenes lie (Hubei, ~114 E)
CLASSES: tuple[dict[str, Any], ...] = tuple(c.to_dict() for c in DEFAULT_CLASSES)
# name: (pixel size m, gain, offset DN, noise sigma DN, per-band gain tilt B,G,R,NIR)
SOURCES: dict[str, tuple[float, float, float, float, tuple[float, float, float, float]]] = {
    "GF-2": (4.0, 1.00, 0.0, 6.0, (1.00, 1.00, 1.00, 1.00)),
    "GF-1": (8.0, 0.85, 25.0, 9.0, (1.04, 1.00, 0.97, 0.95)),
    "JL-1": (5.0, 1.15, -15.0, 5.0, (0.96, 1.00, 1.03, 1.05)),
    "ZY-3": (5.8, 0.90, 40.0, 8.0, (1.06, 1.02, 1.00, 0.92)),
    "Sentinel-2A": (10.0, 0.75, 60.0, 4.0, (0.98, 1.00, 1.02, 1.08)),
}
_BUILT, _FARM, _FOREST, _MEADOW, _WATER = 1, 2, 3, 4, 5
_ROWS = 512  # rows per computed block (fixed: the noise stream depends on it)
_TEX = (251, 241)  # periods of the two texture tiles (coprime: no visible repeat)
_N_CROPS, _N_ROOFS = 5, 4
# Materials: 0 meadow, 1 forest, 2 water, 3 street, 4.. roofs, then crops.
_M_MEADOW, _M_FOREST, _M_WATER, _M_STREET, _M_ROOF = 0, 1, 2, 3, 4
_M_CROP = _M_ROOF + _N_ROOFS
_SIG = np.array([
    [260, 330, 300, 500],  # meadow
    [165, 225, 165, 640],  # forest: low red, bright NIR
    [330, 300, 215, 105],  # water: dark NIR
    [300, 305, 310, 315],  # street: flat asphalt
    [520, 530, 540, 550], [470, 440, 430, 450], [400, 410, 420, 430], [560, 555, 545, 540],  # roofs
    [230, 300, 250, 580], [250, 330, 230, 660], [210, 270, 280, 470],  # crops: green
    [330, 360, 400, 450], [280, 340, 310, 520],  # crops: bare soil, stubble
], dtype=np.float32)
_AMP = np.array([0.08, 0.16, 0.03, 0.03] + [0.04] * _N_ROOFS + [0.05] * _N_CROPS, dtype=np.float32)


@dataclass
class _Plan:
    """Everything needed to draw any row block of one scene."""

    h: int
    w: int
    cell: float
    fields: np.ndarray            # (4, gh, gw) zone fields: farm, forest, built, lake
    edge: float                   # weight of pixel texture on zone edges
    thresholds: np.ndarray        # (4,) thresholds on those fields
    parcel_y: np.ndarray          # farmland parcel row boundaries
    parcel_x: np.ndarray          # farmland parcel column boundaries
    parcel_shift: np.ndarray      # column shift per parcel row (brick layout)
    crops: np.ndarray             # crop material per parcel id
    block: int                    # built-up block period
    street: int                   # street width
    roofs: np.ndarray             # roof material per block id (2-D)
    rivers: list[tuple[bool, np.ndarray, float]]  # (vertical, centre line, width)
    tex: list[np.ndarray]         # periodic texture tiles, periods _TEX


def _smooth_field(rng: np.random.Generator, gh: int, gw: int, sigma: float) -> np.ndarray:
    """Two octaves of smoothed noise (sigma and sigma/2 cells), zero mean, unit variance."""
    def octave(s: float) -> np.ndarray:
        f = ndimage.gaussian_filter(rng.standard_normal((gh, gw)), s, mode="reflect")
        return (f - f.mean()) / (f.std() + 1e-9)

    return (octave(sigma) + 0.3 * octave(sigma / 2)).astype(np.float32)


def _boundaries(rng: np.random.Generator, length: int, size: float) -> np.ndarray:
    n = int(length / (0.6 * size)) + 3  # enough steps to pass the far edge
    steps = size * rng.uniform(0.6, 1.4, n)
    return (np.cumsum(steps) - rng.uniform(0, size)).astype(np.float32)


def _river(rng: np.random.Generator, h: int, w: int, width: float) -> tuple[bool, np.ndarray, float]:
    vertical = bool(rng.integers(2))
    along, across = (h, w) if vertical else (w, h)
    t = np.arange(along, dtype=np.float32)
    centre = np.full(along, rng.uniform(0.15, 0.85) * across, dtype=np.float32)
    for k in range(3):
        period = along / rng.uniform(0.6 + k, 1.5 + 2 * k)
        centre += rng.uniform(0.03, 0.12) / (k + 1) * across * np.sin(2 * np.pi * t / period
                                                                      + rng.uniform(0, 2 * np.pi))
    return vertical, centre, width


def _plan_scene(rng: np.random.Generator, h: int, w: int, pixel_size: float) -> _Plan:
    """Draw the layout of one scene; scales follow the scene size and the pixel size."""
    u = min(h, w) * float(np.clip((4.0 / pixel_size) ** 0.5, 0.6, 1.2))
    zone = float(np.clip(u / 2.2, 32, 900))
    cell = zone / 12
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    fields = np.stack([_smooth_field(rng, gh, gw, 4.0) for _ in range(4)])
    shares = [rng.uniform(0.25, 0.45), rng.uniform(0.15, 0.3), rng.uniform(0.08, 0.2),
              rng.uniform(0.03, 0.07)]
    inside = fields[:, : gh - 1, : gw - 1].reshape(4, -1)
    thresholds = np.array([np.quantile(inside[i], 1 - s) for i, s in enumerate(shares)],
                          dtype=np.float32)
    parcel = float(np.clip(u / 9, 8, 90))
    py, px = _boundaries(rng, h, parcel * 0.8), _boundaries(rng, w, parcel * 1.2)
    block = int(np.clip(u / 10, 8, 60))
    n_rivers = int(rng.integers(0, 3)) if u >= 128 else int(rng.integers(0, 2))
    rivers = [_river(rng, h, w, float(np.clip(u / 35, 2, 30))) for _ in range(n_rivers)]
    tex = [ndimage.gaussian_filter(rng.standard_normal((n, n)), s, mode="wrap")
           for n, s in zip(_TEX, (1.0, 4.0), strict=True)]
    tex = [(t / t.std()).astype(np.float32) for t in tex]
    return _Plan(h=h, w=w, cell=cell, fields=fields, edge=float(min(0.3, 12 / zone)),
                 thresholds=thresholds, parcel_y=py, parcel_x=px,
                 parcel_shift=rng.uniform(0, parcel, len(py)).astype(np.float32),
                 crops=rng.integers(0, _N_CROPS, (len(py) + 1) * (len(px) + 2)).astype(np.int16),
                 block=block, street=max(1, round(block / 7)),
                 roofs=rng.integers(0, _N_ROOFS, (h // block + 2, w // block + 2)).astype(np.int16),
                 rivers=rivers, tex=tex)


def _upsample(field: np.ndarray, cell: float, r0: int, r1: int, w: int) -> np.ndarray:
    """Bilinear value of a low-resolution ``field`` at full-resolution rows r0..r1."""
    gy = np.arange(r0, r1, dtype=np.float32) / cell
    gx = np.arange(w, dtype=np.float32) / cell
    j, i = gy.astype(np.int32), gx.astype(np.int32)
    wy, wx = (gy - j)[:, None], gx - i
    rows = field[j] * (1 - wy) + field[j + 1] * wy
    return rows[:, i] * (1 - wx) + rows[:, i + 1] * wx


def _texture(plan: _Plan, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine and coarse periodic texture (unit variance) at rows r0..r1."""
    rows, cols = np.arange(r0, r1), np.arange(plan.w)
    fine = plan.tex[0][np.ix_(rows % _TEX[0], cols % _TEX[0])]
    coarse = plan.tex[1][np.ix_(rows % _TEX[1], cols % _TEX[1])]
    return fine, coarse


def _materials(plan: _Plan, r0: int, r1: int, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class index (before unlabeled borders) and material index for rows r0..r1."""
    w = plan.w
    zones = [_upsample(plan.fields[k], plan.cell, r0, r1, w) for k in range(4)]
    label = np.full((r1 - r0, w), _MEADOW, np.uint8)
    mat = np.full((r1 - r0, w), _M_MEADOW, np.int16)
    rows, cols = np.arange(r0, r1, dtype=np.float32), np.arange(w, dtype=np.float32)
    prow = np.searchsorted(plan.parcel_y, rows)
    pcol = np.searchsorted(plan.parcel_x, cols[None, :] + plan.parcel_shift[prow][:, None])
    farm = zones[0] > plan.thresholds[0]
    label[farm] = _FARM
    mat[farm] = _M_CROP + plan.crops[(prow[:, None] * (len(plan.parcel_x) + 2) + pcol)[farm]]
    forest = zones[1] + plan.edge * coarse > plan.thresholds[1]
    label[forest], mat[forest] = _FOREST, _M_FOREST
    built = zones[2] > plan.thresholds[2]
    by, bx = (rows.astype(np.int32) // plan.block), (cols.astype(np.int32) // plan.block)
    street = ((rows.astype(np.int32) % plan.block) < plan.street)[:, None] | \
        ((cols.astype(np.int32) % plan.block) < plan.street)[None, :]
    roof = _M_ROOF + plan.roofs[np.ix_(by, bx)]
    label[built] = _BUILT
    mat[built] = np.where(street, _M_STREET, roof)[built]
    water = zones[3] + 0.5 * plan.edge * coarse > plan.thresholds[3]
    for vertical, centre, width in plan.rivers:
        if vertical:
            water |= np.abs(cols[None, :] - centre[r0:r1, None]) < width / 2
        else:
            water |= np.abs(rows[:, None] - centre[None, :]) < width / 2
    label[water], mat[water] = _WATER, _M_WATER
    return label, mat


def _unlabel_borders(label: np.ndarray, below: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Set a dashed line of pixels to 0 where the class changes to the right or below."""
    down = np.vstack([label[1:], below[None, :]])
    edge = np.zeros(label.shape, bool)
    edge[:, :-1] = label[:, :-1] != label[:, 1:]
    edge |= label != down
    out = label.copy()
    out[edge & (rng.random(label.shape, dtype=np.float32) < 0.5)] = 0
    return out


def _radiance(plan: _Plan, mat: np.ndarray, tex: np.ndarray, source: str,
              rng: np.random.Generator) -> np.ndarray:
    """Sensor DN (rows, cols, 4) uint16 in 1..1023 for the given materials."""
    _, gain, offset, sigma, tilt = SOURCES[source]
    value = _SIG[mat] * (1 + _AMP[mat] * tex)[..., None]
    value *= np.asarray(tilt, np.float32) * gain
    value += offset
    value += rng.standard_normal(value.shape, dtype=np.float32) * sigma
    return np.clip(value, 1, 1023).astype(np.uint16)


def _profiles(h: int, w: int, transform: Affine, tile: int) -> tuple[dict[str, Any], dict[str, Any]]:
    common: dict[str, Any] = {"driver": "GTiff", "height": h, "width": w, "crs": CRS.from_epsg(CRS_EPSG),
                              "transform": transform, "tiled": True, "blockxsize": tile,
                              "blockysize": tile}
    image = {**common, "count": 4, "dtype": "uint16", "nodata": 0}
    label = {**common, "count": 1, "dtype": "uint8", "nodata": None, "compress": "deflate"}
    return image, label


def _write_scene(out: Path, scene_id: str, source: str, h: int, w: int, seed: int, index: int,
                 tile: int) -> dict[str, float]:
    """Write images/<id>.tif and labels/<id>.tif; return the class fractions."""
    pixel = SOURCES[source][0]
    plan = _plan_scene(np.random.default_rng([seed, index, 1]), h, w, pixel)
    origin = (300_000.0 + index * 60_000.0, 3_450_000.0 - (index % 7) * 40_000.0)
    image_profile, label_profile = _profiles(h, w, from_origin(*origin, pixel, pixel), tile)
    counts = np.zeros(len(CLASSES), np.int64)
    with atomic_path(out / "images" / f"{scene_id}.tif") as img_tmp, \
            atomic_path(out / "labels" / f"{scene_id}.tif") as lab_tmp, \
            rasterio.open(img_tmp, "w", **image_profile) as img, \
            rasterio.open(lab_tmp, "w", **label_profile) as lab:
        img.descriptions = ("blue", "green", "red", "nir")
        for b, r0 in enumerate(range(0, h, _ROWS)):
            r1 = min(h, r0 + _ROWS)
            rng = np.random.default_rng([seed, index, 2, b])
            fine, coarse = _texture(plan, r0, min(h, r1 + 1))
            label, mat = _materials(plan, r0, min(h, r1 + 1), coarse)
            below = label[-1]  # row r1 (or the last row itself at the bottom)
            label, mat = label[: r1 - r0], mat[: r1 - r0]
            tex = 0.8 * fine[: r1 - r0] + 0.6 * coarse[: r1 - r0]
            label = _unlabel_borders(label, below, rng)
            window = Window(0, r0, w, r1 - r0)
            img.write(np.moveaxis(_radiance(plan, mat, tex, source, rng), 2, 0), window=window)
            lab.write(label, 1, window=window)
            counts += np.bincount(label.ravel(), minlength=len(CLASSES))
    return {c["name"]: round(float(n) / (h * w), 5) for c, n in zip(CLASSES, counts, strict=True)}


def _check_args(scenes: int, height: int, width: int, sources: Sequence[str], tile: int) -> None:
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise DatasetError(f"synthetic dataset: unknown sources {unknown or list(sources)}; "
                           f"choose from {sorted(SOURCES)}")
    if scenes < 1 or height < 32 or width < 32:
        raise DatasetError(f"synthetic dataset: need scenes >= 1 and size >= 32x32, got "
                           f"scenes={scenes} size={height}x{width}")
    if tile < 16 or tile % 16:
        raise DatasetError(f"synthetic dataset: tile must be a multiple of 16 (GeoTIFF), got {tile}")


def generate_dataset(out_dir: str | os.PathLike[str], scenes: int = 12, height: int = 256,
                     width: int = 256, sources: Sequence[str] = ("GF-2", "GF-1", "JL-1"),
                     seed: int = 0, tile: int = 256, *, name: str | None = None) -> Path:
    """Write a synthetic GID-like dataset folder and return its path.

    Scenes are assigned to ``sources`` round-robin and named ``<source>_<nnn>``.
    The folder gets ``dataset.yaml`` (with per-scene class fractions),
    ``images/<id>.tif`` (4-band uint16 B,G,R,NIR, tiled, EPSG:32650, the
    source's pixel size) and ``labels/<id>.tif`` (uint8 class index, 0 =
    unlabeled), then ``manifest.json`` (the generator publishes the dataset, so runs and
    notebooks check the files against it). Regenerating into a synthetic dataset replaces
    its files atomically; a folder holding anything else is refused, so synthetic scenes
    are never mixed with a user's files.

    Args:
        out_dir: Dataset folder to create or fill.
        scenes: Number of scenes.
        height: Scene height in pixels (>= 32).
        width: Scene width in pixels (>= 32).
        sources: Sensor sources, names from :data:`SOURCES`.
        seed: Generator seed; the same seed gives byte-identical rasters.
        tile: GeoTIFF tile size (multiple of 16).
        name: Dataset name (default ``gid-synth-<height>x<width>``).

    Returns:
        The dataset folder.

    Raises:
        DatasetError: An unknown source, a too small size or a bad tile size, or ``out_dir``
            holds files and is not a synthetic dataset.
    """
    _check_args(scenes, height, width, sources, tile)
    _check_target(Path(out_dir))
    out = ensure_dir(out_dir)
    ensure_dir(out / "images")
    ensure_dir(out / "labels")
    entries = []
    for i in range(scenes):
        source = sources[i % len(sources)]
        scene_id = f"{source}_{i // len(sources):03d}"
        fractions = _write_scene(out, scene_id, source, height, width, seed, i, tile)
        entries.append({"id": scene_id, "source": source, "height": height, "width": width,
                        "class_fractions": fractions})
    meta = {
        "name": name or f"gid-synth-{height}x{width}", "version": 1, "layout": "mlwf",
        "bands": ["blue", "green", "red", "nir"], "dtype": "uint16", "nodata": 0,
        "classes": [dict(c) for c in CLASSES],
        "sources": [{"name": s, "pixel_size": SOURCES[s][0]} for s in dict.fromkeys(sources)],
        "scenes": entries, "generator": {"name": "mlwf synth", "seed": seed},
    }
    write_dataset_yaml(out, meta)
    from mlwf_nb.data.integrity import write_manifest

    write_manifest(out)
    return out


def _check_target(out: Path) -> None:
    """A synthetic dataset goes into a new or empty folder, or replaces an earlier synthetic dataset."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    yml = out / "dataset.yaml"
    try:
        meta = yaml.safe_load(yml.read_text(encoding="utf-8")) if yml.is_file() else None
    except (OSError, yaml.YAMLError):
        meta = None
    if not (isinstance(meta, dict) and isinstance(meta.get("generator"), dict)):
        raise DatasetError(f"refusing to write a synthetic dataset into {str(out)!r}: it holds other files "
                           "(it is not an earlier synthetic dataset); give a new or empty folder")


def summarize(dataset_dir: str | os.PathLike[str]) -> str:
    """A short human summary of a dataset folder, read from its ``dataset.yaml`` only.

    Raises:
        DatasetError: ``dataset.yaml`` is missing or not a mapping with ``scenes``.
    """
    path = Path(dataset_dir) / "dataset.yaml"
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DatasetError(f"{path}: cannot read dataset.yaml ({err}); generate the dataset "
                           "first (`mlwf synth OUT`)") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("scenes"), list):
        raise DatasetError(f"{path}: expected a mapping with a 'scenes' list")
    scenes = meta["scenes"]
    per_source = Counter(str(s.get("source", "?")) for s in scenes)
    sizes = Counter(f"{s.get('height', '?')}x{s.get('width', '?')}" for s in scenes)
    totals: Counter[str] = Counter()
    pixels = 0.0
    for s in scenes:
        n = float(s.get("height", 0)) * float(s.get("width", 0))
        pixels += n
        for cls, frac in (s.get("class_fractions") or {}).items():
            totals[cls] += frac * n
    lines = [f"{meta.get('name', path.parent.name)}: {len(scenes)} scenes",
             "  sources: " + ", ".join(f"{k} {v}" for k, v in per_source.items()),
             "  sizes:   " + ", ".join(f"{k} ({v})" for k, v in sizes.items())]
    if pixels and totals:
        lines.append("  classes: " + ", ".join(f"{c} {totals[c] / pixels:.1%}" for c in totals))
    return "\n".join(lines)
