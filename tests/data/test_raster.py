from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from mlwf_nb.data.raster import check_tiff, open_raster, write_geotiff, write_like
from mlwf_nb.errors import RasterError


def test_write_and_open_roundtrip(tmp_path, geo):
    arr = np.arange(3 * 50 * 70, dtype=np.uint16).reshape(3, 50, 70)
    path = write_geotiff(tmp_path / "a.tif", arr, geo.CRS, geo.TRANSFORM, nodata=0, blocksize=16)
    da = open_raster(path, chunks=32)
    assert da.dims == ("band", "y", "x")
    assert da.chunks == ((3,), (32, 18), (32, 32, 6))  # lazy dask chunks
    np.testing.assert_array_equal(da.values, arr)
    assert da.rio.transform() == geo.TRANSFORM and da.rio.nodata == 0
    assert da.rio.crs.to_epsg() == 32650
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]  # no temporary left behind


@pytest.mark.parametrize("interleave", ["band", "pixel"])
def test_write_interleave_roundtrip(tmp_path, geo, interleave):
    arr = np.random.default_rng(0).integers(0, 255, (4, 40, 36), dtype=np.uint8)
    import dask.array as dsa

    path = write_geotiff(tmp_path / "a.tif", dsa.from_array(arr, chunks=(4, 16, 16)), geo.CRS, geo.TRANSFORM,
                         blocksize=16, compress=None, interleave=interleave)
    with rasterio.open(path) as ds:
        assert ds.interleaving.name == interleave
        np.testing.assert_array_equal(ds.read(), arr)
    with pytest.raises(RasterError, match=r"interleave must be 'band' or 'pixel'.*'line'"):
        write_geotiff(tmp_path / "b.tif", arr, geo.CRS, geo.TRANSFORM, interleave="line")
    assert not (tmp_path / "b.tif").exists()


def test_write_2d_and_dask_blocks(tmp_path, geo):
    src = open_raster(write_geotiff(tmp_path / "a.tif", np.arange(40 * 30, dtype=np.int32)
                                    .reshape(40, 30), geo.CRS, geo.TRANSFORM), chunks=16)
    out = write_geotiff(tmp_path / "b.tif", src * 2, geo.CRS, geo.TRANSFORM)  # dask, written per chunk
    np.testing.assert_array_equal(open_raster(out).values[0], np.arange(1200).reshape(40, 30) * 2)


def test_write_like_copies_georeference(tmp_path, geo):
    t = from_origin(1000.0, 2000.0, 2.0, 2.0)
    ref = open_raster(write_geotiff(tmp_path / "ref.tif", np.ones((2, 20, 10), np.uint16), geo.CRS, t))
    out = open_raster(write_like(tmp_path / "lab.tif", np.full((20, 10), 3, np.uint8), ref))
    assert out.rio.transform() == t and out.rio.crs == ref.rio.crs
    assert out.dtype == np.uint8 and int(out.values.sum()) == 600
    with pytest.raises(RasterError, match=r"reference"):
        write_like(tmp_path / "bad.tif", np.ones((5, 5)), ref)


def test_bad_shape_rejected(tmp_path, geo):
    with pytest.raises(RasterError, match=r"bad.tif"):
        write_geotiff(tmp_path / "bad.tif", np.ones(5), geo.CRS, geo.TRANSFORM)


def test_non_tiff_named_tif(tmp_path):
    p = tmp_path / "scene.tif"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(RasterError, match=r"scene.tif.*not a TIFF"):
        open_raster(p)


@pytest.mark.parametrize("tiled", [True, False])
@pytest.mark.parametrize("cut", [1, 500])
def test_truncated_tiff_detected(tmp_path, tiled, cut, geo):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65535, (2, 64, 64), dtype=np.uint16)  # incompressible
    good = write_geotiff(tmp_path / "good.tif", arr, geo.CRS, geo.TRANSFORM, tiled=tiled, compress=None)
    data = good.read_bytes()
    bad = tmp_path / "cut.tif"
    bad.write_bytes(data[:-cut])
    check_tiff(good)
    # GDAL itself opens it happily: the header is intact
    with rasterio.open(bad) as src:
        assert src.count == 2
    with pytest.raises(RasterError, match=r"cut.tif.*truncated"):
        open_raster(bad)


def test_missing_file(tmp_path):
    with pytest.raises(RasterError, match=r"nope.tif"):
        open_raster(tmp_path / "nope.tif")


def test_bigtiff_checked(tmp_path, geo):
    p = tmp_path / "big.tif"
    with rasterio.open(p, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint16",
                       crs=geo.CRS, transform=geo.TRANSFORM, BIGTIFF="YES") as dst:
        dst.write(np.ones((1, 32, 32), np.uint16))
    assert p.read_bytes()[2] == 43  # BigTIFF magic
    check_tiff(p)
    (tmp_path / "bigcut.tif").write_bytes(p.read_bytes()[:-300])
    with pytest.raises(RasterError, match=r"bigcut.tif"):
        check_tiff(tmp_path / "bigcut.tif")
