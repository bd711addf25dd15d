"""A generated dataset whose first scenes carry a 65535 nodata border on top (dataset.yaml ``nodata: 65535``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from mlwf_nb.data.raster import open_raster, write_geotiff

BORDER = 65535


def add_nodata_border(root: Path, scenes: int, rows: int) -> Path:
    """Set the top ``rows`` of the first ``scenes`` images (in file order) to 65535 and declare it nodata."""
    for k, path in enumerate(sorted((root / "images").glob("*.tif"))):
        da = open_raster(path, chunks=False)
        arr = np.asarray(da).copy()
        if k < scenes:
            arr[:, :rows] = BORDER
        write_geotiff(path, arr, da.rio.crs, da.rio.transform(), nodata=None, blocksize=16)
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    meta["nodata"] = BORDER
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta))
    (root / "manifest.json").unlink(missing_ok=True)
    return root
