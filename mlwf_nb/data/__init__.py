"""The data layer: pure functions over numpy / xarray, with file I/O at its edge.

``import mlwf_nb.data`` is light: numpy, xarray and the raster stack load with
the first use of a name from them, and Keras only with the augmentation and
``ShardSequence`` names. See ``docs/architecture.md`` for the dataset format.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlwf_nb.data.augment import build_augmenter, is_flip_only, preview
    from mlwf_nb.data.dataset import (
        DEFAULT_CLASSES,
        ClassInfo,
        Dataset,
        Scene,
        colors_to_index,
        write_dataset_yaml,
    )
    from mlwf_nb.data.integrity import (
        IntegrityReport,
        build_manifest,
        sha256_file,
        verify,
        write_manifest,
    )
    from mlwf_nb.data.patches import (
        class_map,
        extract_windows,
        resize,
        resize_batch,
        sample_patches,
        sliding_windows,
        stitch_multiscale,
        stitch_probabilities,
    )
    from mlwf_nb.data.raster import check_tiff, open_raster, write_geotiff, write_like
    from mlwf_nb.data.shards import (
        ShardBatches,
        ShardSequence,
        class_counts,
        read_shard,
        read_shard_meta,
        shard_paths,
        write_shard,
    )
    from mlwf_nb.data.split import read_split, split_scenes, write_split
    from mlwf_nb.data.stretch import (
        StretchParams,
        apply_stretch,
        band_histograms,
        fit_optimized_linear,
        fit_percentile,
        fit_stretch,
        load_stretch,
        save_stretch,
    )

_EXPORTS: dict[str, list[str]] = {
    "dataset": ["ClassInfo", "Scene", "Dataset", "DEFAULT_CLASSES", "write_dataset_yaml",
                "colors_to_index"],
    "raster": ["open_raster", "write_geotiff", "write_like", "check_tiff"],
    "integrity": ["sha256_file", "build_manifest", "write_manifest", "verify", "IntegrityReport"],
    "split": ["split_scenes", "write_split", "read_split"],
    "stretch": ["StretchParams", "band_histograms", "fit_optimized_linear", "fit_percentile",
                "fit_stretch", "apply_stretch", "save_stretch", "load_stretch"],
    "patches": ["sample_patches", "sliding_windows", "extract_windows", "stitch_probabilities",
                "stitch_multiscale", "class_map", "resize", "resize_batch"],
    "augment": ["build_augmenter", "preview", "is_flip_only"],
    "shards": ["write_shard", "read_shard", "read_shard_meta", "shard_paths", "class_counts",
               "ShardBatches", "ShardSequence"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ClassInfo", "Scene", "Dataset", "DEFAULT_CLASSES", "write_dataset_yaml", "colors_to_index",
    "open_raster", "write_geotiff", "write_like", "check_tiff",
    "sha256_file", "build_manifest", "write_manifest", "verify", "IntegrityReport",
    "split_scenes", "write_split", "read_split",
    "StretchParams", "band_histograms", "fit_optimized_linear", "fit_percentile", "fit_stretch",
    "apply_stretch", "save_stretch", "load_stretch",
    "sample_patches", "sliding_windows", "extract_windows", "stitch_probabilities",
    "stitch_multiscale", "class_map", "resize", "resize_batch",
    "build_augmenter", "preview", "is_flip_only",
    "write_shard", "read_shard", "read_shard_meta", "shard_paths", "class_counts", "ShardBatches",
    "ShardSequence",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwf_nb.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mlwf_nb.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
