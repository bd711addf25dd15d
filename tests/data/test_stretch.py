from __future__ import annotations

import math

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from mlwf_nb.data.raster import open_raster, write_geotiff
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
from mlwf_nb.errors import DatasetError


def ref_value(values: np.ndarray, percent: float) -> float:
    """Plain reference: sort, then take the value at the cumulative-count rank."""
    s = np.sort(values)
    k = max(math.ceil(percent / 100.0 * s.size), 1)
    return float(s[k - 1])


def ref_optimized(img: np.ndarray, low: float, high: float, nodata: int | None):
    blacks, whites = [], []
    for band in img:
        v = band.ravel()
        v = v[v != nodata] if nodata is not None else v
        a, b = ref_value(v, low), ref_value(v, high)
        blacks.append(a - 0.1 * (b - a))
        whites.append(b + 0.5 * (b - a))
    return blacks, whites


@pytest.fixture
def img():
    rng = np.random.default_rng(42)
    data = rng.gamma(3.0, 300.0, size=(4, 53, 61)).astype(np.uint16)
    data[2] += 1000
    data[:, :5, :7] = 0  # nodata corner
    return data


@pytest.mark.parametrize("low, high", [(2.5, 99.0), (0.0, 100.0), (10.0, 90.0), (1.3, 97.7)])
def test_optimized_linear_exact(img, low, high):
    params = fit_optimized_linear(band_histograms(img, nodata=0), low, high)
    black, white = ref_optimized(img, low, high, nodata=0)
    assert params.method == "optimized_linear"
    assert params.black == black and params.white == white  # exact, not approximately


def test_nodata_excluded(img):
    hist = band_histograms(img, nodata=0)
    assert hist.shape == (4, 65536) and hist.dtype == np.int64
    assert (hist[:, 0] == 0).all() and hist.sum(axis=1).tolist() == [(b != 0).sum() for b in img]
    with_zero = band_histograms(img, nodata=None)
    assert with_zero[0, 0] >= 35
    a = fit_percentile(hist, 2.0, 98.0)
    assert a.black[0] == ref_value(img[0][img[0] != 0], 2.0)
    assert fit_percentile(with_zero, 0.0, 98.0).black[0] == 0.0


def test_streaming_histogram_equals_in_memory(img, tmp_path):
    lazy = xr.DataArray(dsa.from_array(img, chunks=(2, 16, 20)), dims=("band", "y", "x"))
    np.testing.assert_array_equal(band_histograms(lazy), band_histograms(img))
    path = write_geotiff(tmp_path / "s.tif", img, "EPSG:32650", _t(), nodata=0)
    np.testing.assert_array_equal(band_histograms(open_raster(path, chunks=16)), band_histograms(img))


def _t():
    from rasterio.transform import from_origin

    return from_origin(0, 0, 1, 1)


def test_fit_stretch_sums_scenes(img, tmp_path):
    other = (img // 2).astype(np.uint16)
    path = write_geotiff(tmp_path / "o.tif", other, "EPSG:32650", _t())
    params = fit_stretch([img, path], low=2.5, high=99.0, nodata=0)
    both = np.concatenate([img, other], axis=2)
    assert (params.black, params.white) == ref_optimized(both, 2.5, 99.0, nodata=0)
    assert fit_stretch(img, method="percentile", low=5, high=95).method == "percentile"
    with pytest.raises(DatasetError, match="unknown stretch method 'x'"):
        fit_stretch([img], method="x")


def test_apply_numpy_formula_and_layouts(img):
    params = fit_optimized_linear(band_histograms(img), 2.5, 99.0)
    out = apply_stretch(img, params)
    c, d = np.array(params.black)[:, None, None], np.array(params.white)[:, None, None]
    want = np.rint(np.clip(255.0 * (img - c) / (d - c), 0, 255)).astype(np.uint8)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, want)
    last = apply_stretch(np.moveaxis(img, 0, -1), params, axis=-1)
    np.testing.assert_array_equal(last, np.moveaxis(want, 0, -1))
    assert (apply_stretch(img, params, nodata=0)[:, :5, :7] == 0).all()
    with pytest.raises(DatasetError, match="4 bands"):
        apply_stretch(img[:3], params)


def test_apply_lazy_dataarray(img):
    params = fit_optimized_linear(band_histograms(img), 2.5, 99.0)
    lazy = xr.DataArray(dsa.from_array(img, chunks=(1, 16, 16)), dims=("band", "y", "x"))
    out = apply_stretch(lazy, params)
    assert isinstance(out.data, dsa.Array) and out.dtype == np.uint8  # still lazy
    np.testing.assert_array_equal(out.values, apply_stretch(img, params))


def test_float_data_binned_approximation():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 0.05, size=(2, 40, 40))
    hist = band_histograms(x, nodata=None, value_range=(0.0, 1.0))
    p = fit_percentile(hist, 2.0, 98.0, value_range=(0.0, 1.0))
    ref = ref_value(x[0].ravel(), 2.0)
    assert abs(p.black[0] - ref) <= 1.0 / 65536 + 1e-12


def test_float_scenes_fit_over_their_joint_range():
    """Without value_range the scenes' joint min..max is binned: exact to one bin width over both."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.3, 0.05, size=(2, 40, 40)), rng.normal(0.6, 0.1, size=(2, 30, 30))
    b[:, :5] = np.nan  # never counted
    p = fit_stretch([a, b], method="percentile", low=2.0, high=98.0, nodata=None)
    both = np.concatenate([a[1].ravel(), b[1].ravel()])
    both = both[np.isfinite(both)]
    lo, hi = p.extra["value_range"]
    assert (lo, hi) == (np.nanmin([a.min(), np.nanmin(b)]), np.nanmax([a.max(), np.nanmax(b)]))
    for percent, got in ((2.0, p.black[1]), (98.0, p.white[1])):
        assert abs(got - ref_value(both, percent)) <= (hi - lo) / 65536 + 1e-12
    with pytest.raises(DatasetError, match="mix integer and float"):
        fit_stretch([a, (a * 1000).astype("uint16")], nodata=None)


def test_save_load_roundtrip(tmp_path, img):
    params = {"GF-2": fit_optimized_linear(band_histograms(img)), "GF-1": StretchParams(
        "percentile", [1.0, 2.0], [3.0, 4.0], 2.0, 98.0)}
    path = save_stretch(tmp_path / "stretch.json", params)
    assert load_stretch(path) == params
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"bad\.json"):
        load_stretch(tmp_path / "bad.json")


@pytest.mark.parametrize("nodata", [None, 0, 7, 70000])
def test_lookup_table_path_identical_to_formula(nodata):
    """Large uint16 arrays go through a per-band lookup table: identical to the float64 formula."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65536, size=(4, 300, 301), dtype=np.uint16)  # > 65536 values: table path
    x[:, 0, :4] = [0, 7, 65535, 1]
    if nodata is not None and nodata < 65536:
        x[:, 1, 3] = nodata  # a nodata pixel (every band holds it)
        x[1:, 1, 4] = nodata  # one band is not nodata: a valid pixel
    params = StretchParams("optimized_linear", [100.0, 0.0, 5000.5, 65000.0], [3000.0, 65535.0, 5001.0, 65535.0])
    c, d = np.array(params.black)[:, None, None], np.array(params.white)[:, None, None]
    floor = 0 if nodata is None else 1  # with nodata, 0 is reserved for it
    want = np.rint(np.clip(255.0 * (x - c) / (d - c), floor, 255)).astype(np.uint8)
    if nodata is not None:
        want[:, (x == nodata).all(axis=0)] = 0
        assert (want[:, 1, 4] > 0).all() and (want[:, 1, 3] == 0).all() == (nodata < 65536)
    np.testing.assert_array_equal(apply_stretch(x, params, nodata=nodata), want)
    last = apply_stretch(np.moveaxis(x, 0, -1), params, axis=-1, nodata=nodata)
    np.testing.assert_array_equal(last, np.moveaxis(want, 0, -1))
    one = StretchParams("percentile", params.black[:1], params.white[:1])
    want_one = np.rint(np.clip(255.0 * (x[:1] - c[:1]) / (d[:1] - c[:1]), floor, 255)).astype(np.uint8)
    if nodata is not None:
        want_one[x[:1] == nodata] = 0  # one band: its own value decides
    np.testing.assert_array_equal(apply_stretch(x[:1], one, nodata=nodata), want_one)


def test_histogram_nodata_bin_zeroed_equals_masked(img):
    """Counting everything then zeroing the nodata bin equals counting only valid pixels."""
    for nodata in (0, 5, None, 70000, 0.5):
        hist = band_histograms(img, nodata=nodata)
        for band, h in zip(img, hist, strict=True):
            v = band.ravel()
            v = v[v != nodata] if nodata is not None else v
            np.testing.assert_array_equal(h, np.bincount(v, minlength=65536))
