"""Data views for the widgets: small, decimated reads of a dataset, as numpy arrays.

No ipywidgets here. Thumbnails are read decimated (GDAL picks overviews or
samples rows; a whole big scene is never loaded) and patches are windowed
reads of the lazy ``Dataset.open_image`` arrays, so a 7,000 x 7,000 GID scene
costs a few hundred kilobytes per view. A sample dataset (``layout: samples``) is
shown as a grid of its images (:func:`sample_grid`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwf_nb.data.dataset import Dataset, colors_to_index
from mlwf_nb.data.raster import check_tiff
from mlwf_nb.data.samples import SampleDataset
from mlwf_nb.data.stretch import StretchParams, apply_stretch, band_histograms, fit_optimized_linear

__all__ = ["Thumbnail", "read_thumbnail", "read_patch", "scene_rows", "rgb_views", "fit_view_stretch",
           "sample_grid", "first_sample", "augment_preview", "augment_reference"]

TRUE_COLOR = (2, 1, 0)   # R, G, B of bands (B, G, R, NIR); a dataset gives its own (Dataset.true_color_bands)
FALSE_COLOR = (3, 2, 1)  # NIR, R, G of the same (Dataset.false_color_bands)


@dataclass
class Thumbnail:
    """A decimated scene: image (bands, h, w) uint16, label (h, w) uint8, and the decimation step."""

    image: np.ndarray
    label: np.ndarray | None
    step: int
    height: int
    width: int


def _decimated(path: Any, max_size: int) -> tuple[np.ndarray, int, int, int]:
    """Read a raster with GDAL decimation (``out_shape``): overviews if present, nearest otherwise."""
    import rasterio
    from rasterio.enums import Resampling

    check_tiff(path)
    with rasterio.open(path) as src:
        h, w = src.height, src.width
        step = max(1, -(-max(h, w) // max_size))
        shape = (src.count, -(-h // step), -(-w // step))
        return src.read(out_shape=shape, resampling=Resampling.nearest), step, h, w


def read_thumbnail(ds: Dataset, scene_id: str, max_size: int = 256) -> Thumbnail:
    """Read a scene decimated to at most ``max_size`` pixels on a side (never the whole scene)."""
    scene = ds.scene(scene_id)
    arr, step, h, w = _decimated(scene.image, max_size)
    label = None
    if scene.label is not None:
        lab, _, _, _ = _decimated(scene.label, max_size)
        label = lab[0] if lab.shape[0] == 1 else colors_to_index(lab, ds.classes, str(scene.label))
    return Thumbnail(arr, label, step, h, w)


def read_patch(ds: Dataset, scene_id: str, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``size`` x ``size`` window at (y, x) (clipped to the scene): image (bands, s, s), label (s, s)."""
    img = ds.open_image(scene_id, chunks=False)
    h, w = int(img.sizes["y"]), int(img.sizes["x"])
    size = min(size, h, w)
    y = int(np.clip(y, 0, h - size))
    x = int(np.clip(x, 0, w - size))
    window = {"y": slice(y, y + size), "x": slice(x, x + size)}
    patch = np.asarray(img.isel(window).values)
    label = None
    if ds.scene(scene_id).label is not None:
        label = np.asarray(ds.open_label(scene_id, chunks=False).isel(window).values).reshape(size, size)
    return patch, label


def fit_view_stretch(image: np.ndarray, nodata: float | None = 0, low: float = 2.5,
                     high: float = 99.0) -> StretchParams:
    """Fit an optimized-linear stretch on a (decimated) image for display."""
    return fit_optimized_linear(band_histograms(image, nodata=nodata), low, high)


def rgb_views(image: np.ndarray, params: StretchParams, nodata: Any = 0,
              true_color: Sequence[int] = TRUE_COLOR,
              false_color: Sequence[int] = FALSE_COLOR) -> tuple[np.ndarray, np.ndarray]:
    """True colour and NIR false colour (H, W, 3) uint8 of a (bands, H, W) image.

    ``true_color`` and ``false_color`` are band indices (red, green, blue and NIR, red, green),
    from the dataset's band names (:attr:`Dataset.true_color_bands`): GID's NIR,R,G,B order
    differs from the B,G,R,NIR of the synthetic data.
    """
    u8 = np.asarray(apply_stretch(image, params, axis=0, nodata=nodata))
    if u8.shape[0] < 3:
        rgb = np.moveaxis(u8[[0, 0, 0]], 0, -1)
        return rgb, rgb
    return np.moveaxis(u8[list(true_color)], 0, -1), np.moveaxis(u8[list(false_color)], 0, -1)


def scene_rows(ds: Dataset, split: Mapping[str, Sequence[str]] | None = None,
               max_size: int = 64) -> list[dict[str, Any]]:
    """One row per scene: id, source, size, split and class fractions (from a decimated label)."""
    where = {sid: name for name, ids in (split or {}).items() for sid in ids}
    rows = []
    n = len(ds.classes)
    for sc in ds.scenes:
        img = ds.open_image(sc.id, chunks=False)
        row: dict[str, Any] = {"id": sc.id, "source": sc.source, "split": where.get(sc.id, ""),
                               "size": f"{int(img.sizes['y'])} x {int(img.sizes['x'])}"}
        if sc.label is not None and ds.layout != "gid":
            lab = _decimated(sc.label, max_size)[0][0]
            counts = np.bincount(lab.ravel().astype(np.intp), minlength=n)[1:n].astype(float)
            total = counts.sum()
            row["fractions"] = list(counts / total) if total else [0.0] * (n - 1)
        rows.append(row)
    return rows


def sample_grid(ds: SampleDataset, n: int = 12, alpha: float = 0.45) -> tuple[list[np.ndarray], list[str]]:
    """``n`` samples of a sample dataset spread over its first shard, as RGB images with titles.

    Classification samples are titled with their class; segmentation samples show the
    mask blended in the class colours and are titled with the non-background share.
    Only the first shard is read (memory-mapped), so big sets stay cheap.
    """
    from mlwf_nb.data.shards import read_shard

    X, y = read_shard(ds.root / ds.shards[0], mmap=True)[:2]
    idx = np.unique(np.linspace(0, len(X) - 1, min(n, len(X))).astype(int)) if len(X) else np.zeros(0, int)
    colors = np.asarray(ds.class_colors, dtype=float)
    images, titles = [], []
    for i in idx:
        img = np.asarray(X[i])
        rgb = np.repeat(img[..., :1], 3, axis=-1) if img.shape[-1] < 3 else img[..., :3]
        if ds.task == "segmentation":
            mask = np.asarray(y[i]).astype(np.intp)
            blend = rgb.astype(float) * (1 - alpha) + colors[mask] * alpha
            rgb = np.where((mask > 0)[..., None], blend, rgb).astype(np.uint8)
            titles.append(f"#{i}: {100 * float((mask > 0).mean()):.0f}% {ds.class_names[-1]}")
        else:
            titles.append(f"#{i}: {ds.class_names[int(y[i])]}")
        images.append(np.ascontiguousarray(rgb, dtype=np.uint8))
    return images, titles


def first_sample(ds: SampleDataset) -> np.ndarray:
    """The first image ``(H, W, B)`` uint8 of a sample dataset."""
    from mlwf_nb.data.shards import read_shard

    return np.array(read_shard(ds.root / ds.shards[0], mmap=True)[0][0])


def augment_preview(patch: np.ndarray, aug: Any, n: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` augmented versions ``(n, H, W, B)`` uint8 of an ``(H, W, B)`` uint8 patch.

    The training pipeline's own augmentation (:func:`mlwf_nb.data.augment.preview`),
    so the preview shows exactly what training sees.
    """
    from mlwf_nb.data.augment import preview

    return np.asarray(preview(patch, aug, n=n, seed=seed))


def augment_reference(patch: np.ndarray, aug: Any, n: int = 8, seed: int = 0) -> np.ndarray:
    """The draws of :func:`augment_preview` through Keras's layers one after another (the reference).

    :func:`mlwf_nb.data.augment.preview_keras`: put beside the preview, it shows that
    training's single warp gives the picture the chained layers give.
    """
    from mlwf_nb.data.augment import preview_keras

    return np.asarray(preview_keras(patch, aug, n=n, seed=seed))
