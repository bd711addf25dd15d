"""16-bit to 8-bit requantisation: ENVI "optimized linear" and percentile stretches.

Exact for integer data. A band's histogram counts every value 0..65535 (nodata
left out); with ``N`` counted pixels, the value at ``p`` percent is the smallest
value ``v`` whose cumulative count reaches ``max(ceil(p / 100 * N), 1)`` — for
sorted values ``s`` that is ``s[max(ceil(p / 100 * N), 1) - 1]``.

Optimized linear (ENVI): ``a`` = value at ``low`` %, ``b`` = value at ``high`` %,
``c = a - 0.1 (b - a)``, ``d = b + 0.5 (b - a)``; percentile: ``c = a``, ``d = b``.
Then ``out = clip(255 (x - c) / (d - c), 0, 255)``, rounded to the nearest
integer, as uint8.

Float data are binned into 65536 equal bins over ``value_range`` (by default the
joint min and max of the valid pixels of every scene fitted, one extra pass); a bin
stands for its lower edge, so for float data the fitted values are exact to one bin
width, ``(hi - lo) / 65536`` (an approximation). Integers of up to 16 bits are exact.

nodata (:mod:`mlwf_nb.data.nodata`): nodata pixels are left out of the histograms
and become 0 in every band of the output, and then valid pixels are stretched to
1..255 (``clip(..., 1, 255)``) so that 0 means nodata only. Without nodata the
output spans 0..255. Non-finite float values are never counted and become 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mlwf_nb._io import read_json, write_json
from mlwf_nb.data.nodata import BandNodata, Nodata, band_nodata, has_nodata, nodata_mask
from mlwf_nb.errors import DatasetError

__all__ = ["NBINS", "METHODS", "StretchParams", "band_histograms", "counts_exactly", "value_at_percent",
           "fit_optimized_linear", "fit_percentile", "fit_histograms", "fit_stretch", "apply_stretch", "save_stretch",
           "load_stretch", "data_range"]

NBINS = 65536
METHODS = ("optimized_linear", "percentile")


@dataclass
class StretchParams:
    """Per-band black (``c``) and white (``d``) points of a linear stretch to 0..255."""

    method: str
    black: list[float]
    white: list[float]
    low: float | None = None
    high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nodata(self) -> BandNodata:
        """The nodata the stretch was fitted with, one entry per band (what :func:`apply_stretch` masks)."""
        return band_nodata(self.extra.get("nodata"), len(self.black), "stretch parameters' nodata")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe)."""
        return {"method": self.method, "black": [float(v) for v in self.black],
                "white": [float(v) for v in self.white], "low": self.low, "high": self.high,
                **({"extra": self.extra} if self.extra else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StretchParams:
        """Inverse of :meth:`to_dict`."""
        try:
            black, white = [float(v) for v in data["black"]], [float(v) for v in data["white"]]
            method = str(data["method"])
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"stretch parameters {data!r} need method, black and white lists") from err
        if len(black) != len(white):
            raise DatasetError(f"stretch parameters: {len(black)} black but {len(white)} white values")
        return cls(method, black, white, data.get("low"), data.get("high"), dict(data.get("extra", {})))


# -- histograms --------------------------------------------------------------------------

def counts_exactly(dtype: Any) -> bool:
    """Whether pixels of ``dtype`` are counted value by value (integers of up to 16 bits: exact, one binning)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "ub" and dtype.itemsize <= 2



def _bin(block: np.ndarray, nodata: BandNodata, value_range: tuple[float, float] | None) -> np.ndarray:
    """Histogram ``(bands, NBINS)`` of one ``(bands, ...)`` block, nodata pixels left out.

    Exact integer data are counted whole and the nodata pixels taken off their bins
    afterwards (no boolean-mask copy of each band: about 3x faster, same counts).
    """
    flat = block.reshape(block.shape[0], -1)
    out = np.zeros((flat.shape[0], NBINS), dtype=np.int64)
    mask = nodata_mask(flat, nodata, axis=0)
    if value_range is None:
        for i, band in enumerate(flat):
            out[i] = np.bincount(band, minlength=NBINS)
        n = int(np.count_nonzero(mask)) if mask is not None else 0
        for i, value in enumerate(nodata):
            if n and value is not None:  # n > 0: every masked pixel holds exactly `value` in band i
                out[i, int(value)] -= n
        return out
    keep = ~mask if mask is not None else None
    lo, hi = value_range
    for i, band in enumerate(flat):
        valid = band[keep] if keep is not None else band
        valid = valid[np.isfinite(valid)] if valid.dtype.kind == "f" else valid
        idx = np.floor((valid.astype(np.float64) - lo) * (NBINS / (hi - lo)))
        out[i] = np.bincount(np.clip(idx, 0, NBINS - 1).astype(np.int64), minlength=NBINS)
    return out


def band_histograms(da: xr.DataArray | np.ndarray, nodata: Nodata = 0,
                    value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Per-band histograms over values 0..65535, ``(bands, 65536)`` int64.

    Dask-backed arrays are read in one streaming pass (``np.bincount`` per chunk,
    two chunks at a time on threads: :func:`mlwf_nb.data.chunks.stream`); the scene
    is never materialised.

    Args:
        da: ``(bands, y, x)`` DataArray (lazy or not) or numpy array.
        nodata: nodata value(s) whose pixels are left out (:mod:`mlwf_nb.data.nodata`;
            None: count everything).
        value_range: Only for float (or wide integer) data: the ``(lo, hi)``
            range binned into 65536 bins. If None it is the data's min and max
            (an extra pass over the data).

    Returns:
        The counts.
    """
    data: Any = da.data if isinstance(da, xr.DataArray) else da
    nd = band_nodata(nodata, int(data.shape[0]))
    if counts_exactly(np.dtype(data.dtype)):
        value_range = None
    elif value_range is None:
        value_range = data_range([data], nd)
    chunks = getattr(data, "chunks", None)
    if chunks is None or not hasattr(data, "compute"):
        return _bin(np.asarray(data), nd, value_range)
    from mlwf_nb.data.chunks import chunk_slices, stream

    data = _whole_bands(data)
    total = np.zeros((int(data.shape[0]), NBINS), dtype=np.int64)
    for sl, counts in stream(data, chunk_slices(data), lambda block: _bin(block, nd, value_range)):
        total[sl[0]] += counts  # reading the next chunk overlaps counting this one
    return total


def _whole_bands(data: Any) -> Any:
    """A dask array whose chunks hold every band (a pixel's nodata depends on all its bands)."""
    return data.rechunk({0: -1}) if len(data.chunks[0]) > 1 else data


def _block_range(block: np.ndarray, nodata: BandNodata) -> tuple[float, float]:
    flat = block.reshape(block.shape[0], -1).astype(np.float64)
    mask = nodata_mask(flat, nodata, axis=0)
    valid = flat[:, ~mask] if mask is not None else flat
    valid = valid[np.isfinite(valid)]
    return (float(valid.min()), float(valid.max())) if valid.size else (math.inf, -math.inf)


def data_range(arrays: Sequence[Any], nodata: BandNodata) -> tuple[float, float]:
    """The joint min and max of the valid pixels of ``(bands, y, x)`` arrays (numpy or dask), streamed.

    Raises:
        DatasetError: No valid value at all (every pixel nodata or not finite).
    """
    from mlwf_nb.data.chunks import chunk_slices, stream

    lo, hi = math.inf, -math.inf
    for item in arrays:
        data = item.data if isinstance(item, xr.DataArray) else item
        if getattr(data, "chunks", None) is not None and hasattr(data, "compute"):
            data = _whole_bands(data)
            parts = [r for _, r in stream(data, chunk_slices(data), lambda b: _block_range(b, nodata))]
        else:
            parts = [_block_range(np.asarray(data), nodata)]
        lo = min([lo, *(p[0] for p in parts)])
        hi = max([hi, *(p[1] for p in parts)])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise DatasetError("cannot fit a stretch: the data hold no valid values (all nodata or NaN)")
    return (lo, hi if hi > lo else lo + 1.0)


# -- fitting -----------------------------------------------------------------------------

def value_at_percent(hist: np.ndarray, percent: float,
                     value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Per band, the value at ``percent`` % of the cumulative histogram (module docstring)."""
    h = np.atleast_2d(np.asarray(hist, dtype=np.int64))
    cum = np.cumsum(h, axis=1)
    out = np.empty(h.shape[0], dtype=np.float64)
    for i, c in enumerate(cum):
        n = int(c[-1])
        if n == 0:
            raise DatasetError(f"cannot fit a stretch: band {i} has no valid pixels (all nodata)")
        target = max(math.ceil(percent / 100.0 * n), 1)
        out[i] = float(np.searchsorted(c, target, side="left"))
    if value_range is not None:
        lo, hi = value_range
        out = lo + out * (hi - lo) / NBINS
    return out


def fit_percentile(hist: np.ndarray, low: float = 2.0, high: float = 98.0,
                   value_range: tuple[float, float] | None = None) -> StretchParams:
    """Black and white at the ``low`` and ``high`` percent values (``c = a``, ``d = b``)."""
    a = value_at_percent(hist, low, value_range)
    b = value_at_percent(hist, high, value_range)
    return StretchParams("percentile", a.tolist(), b.tolist(), low, high)


def fit_optimized_linear(hist: np.ndarray, low: float = 2.5, high: float = 99.0,
                         value_range: tuple[float, float] | None = None) -> StretchParams:
    """ENVI optimized linear: ``c = a - 0.1 (b - a)``, ``d = b + 0.5 (b - a)``."""
    a = value_at_percent(hist, low, value_range)
    b = value_at_percent(hist, high, value_range)
    return StretchParams("optimized_linear", (a - 0.1 * (b - a)).tolist(),
                         (b + 0.5 * (b - a)).tolist(), low, high)


def fit_stretch(arrays_or_paths: Sequence[Any] | Any, method: str = "optimized_linear",
                low: float = 2.5, high: float = 99.0, nodata: Nodata = 0,
                value_range: tuple[float, float] | None = None) -> StretchParams:
    """Fit one stretch over several scenes (their histograms summed).

    Args:
        arrays_or_paths: ``(bands, y, x)`` arrays/DataArrays or GeoTIFF paths
            (opened lazily), or a single one of them.
        method: ``"optimized_linear"`` or ``"percentile"``.
        low: Lower cumulative percent.
        high: Upper cumulative percent.
        nodata: nodata value(s), one or one per band (:mod:`mlwf_nb.data.nodata`); recorded
            in the parameters so that :func:`apply_stretch` masks the same pixels.
        value_range: Binning range for float data; None: the joint min and max of the
            scenes' valid pixels (one extra streamed pass).

    Raises:
        DatasetError: Unknown method, no scenes, scenes with different band counts, or
            integer and float scenes mixed.
    """
    if method not in METHODS:
        raise DatasetError(f"unknown stretch method {method!r}; use one of {list(METHODS)}")
    items = [arrays_or_paths] if isinstance(arrays_or_paths, (str, os.PathLike, np.ndarray,
                                                               xr.DataArray)) else list(arrays_or_paths)
    if not items:
        raise DatasetError("fit_stretch needs at least one scene; check the training split")
    from mlwf_nb.data.raster import open_raster

    arrays = [open_raster(i) if isinstance(i, (str, os.PathLike)) else i for i in items]
    bands = {int(a.shape[0]) for a in arrays}
    if len(bands) > 1:
        raise DatasetError(f"scenes have different band counts ({sorted(bands)})")
    nd = band_nodata(nodata, bands.pop())
    exact = {counts_exactly(np.dtype(a.dtype)) for a in arrays}
    if len(exact) > 1:
        raise DatasetError(f"scenes mix integer and float dtypes ({sorted({str(a.dtype) for a in arrays})}); "
                           "one stretch needs one binning: convert the scenes to one dtype")
    if not exact.pop() and value_range is None:
        value_range = data_range(arrays, nd)
    counts = [band_histograms(a, nodata=nd, value_range=value_range) for a in arrays]
    return fit_histograms(counts, method, low, high, nd, value_range)


def fit_histograms(counts: Sequence[np.ndarray], method: str = "optimized_linear", low: float = 2.5,
                   high: float = 99.0, nodata: Nodata = 0,
                   value_range: tuple[float, float] | None = None) -> StretchParams:
    """Fit one stretch from several scenes' :func:`band_histograms` (summed): the fit of :func:`fit_stretch`.

    The land-cover pipeline counts each training scene in its own job and fits from their
    histogram files; the parameters are those of :func:`fit_stretch` over the same scenes
    (the same ``nodata``, and for float data the same ``value_range``: every scene binned alike).

    Raises:
        DatasetError: Unknown method, no histograms, or scenes with different band counts.
    """
    if method not in METHODS:
        raise DatasetError(f"unknown stretch method {method!r}; use one of {list(METHODS)}")
    if not counts:
        raise DatasetError("a stretch fit needs at least one scene's histograms; check the training split")
    shapes = {np.shape(c) for c in counts}
    if len(shapes) != 1:
        raise DatasetError(f"scenes have different band counts: histograms of shapes {sorted(shapes)}")
    total = np.sum(np.stack([np.asarray(c, dtype=np.int64) for c in counts]), axis=0)
    nd = band_nodata(nodata, int(total.shape[0]))
    fit = fit_optimized_linear if method == "optimized_linear" else fit_percentile
    params = fit(total, low, high, value_range)
    if has_nodata(nd):
        params.extra["nodata"] = list(nd)
    if value_range is not None:
        params.extra["value_range"] = [float(v) for v in value_range]
    return params


# -- applying ----------------------------------------------------------------------------

def _floor(nodata: BandNodata) -> float:
    """The lowest output of a valid pixel: 1 when 0 marks nodata, else 0."""
    return 1.0 if has_nodata(nodata) else 0.0


def _stretch_np(x: np.ndarray, black: np.ndarray, white: np.ndarray, nodata: BandNodata, axis: int,
                table: np.ndarray | None = None) -> np.ndarray:
    """Stretch one numpy block with bands on ``axis`` (through ``table`` when given or worth building)."""
    if table is None and _has_table(x.dtype) and x.size >= _LUT_MIN:
        table = _table(x.dtype, black, white, _floor(nodata))
    if table is not None:
        out = _lookup(x, table, axis)
    else:
        scale = 255.0 / np.maximum(white - black, 1e-12)
        out = np.rint(np.clip((x.astype(np.float64) - black) * scale, _floor(nodata), 255.0)).astype(np.uint8)
        if x.dtype.kind == "f":
            out[~np.isfinite(x)] = 0
    mask = nodata_mask(x, nodata, axis)
    if mask is not None and mask.any():
        np.moveaxis(out, axis, 0)[:, mask] = 0
    return out


_LUT_MIN = 1 << 16  # below this many values the float formula is as cheap as building the table


def _has_table(dtype: np.dtype[Any]) -> bool:
    """Unsigned integers of at most 16 bits: the stretch goes through a table of every value."""
    return counts_exactly(dtype) and dtype.kind == "u"


def _table(dtype: np.dtype[Any], black: np.ndarray, white: np.ndarray, floor: float) -> np.ndarray:
    """``(bands, 2**bits)`` uint8: the formula of :func:`_stretch_np` at every value of the unsigned ``dtype``.

    ``table[band][x]`` is identical to the float64 formula, without float64
    temporaries the size of ``x`` (about 4x faster).
    """
    values = np.arange(np.iinfo(dtype).max + 1, dtype=np.float64)
    b, w = black.ravel(), white.ravel()
    scale = 255.0 / np.maximum(w - b, 1e-12)
    return np.rint(np.clip((values[None, :] - b[:, None]) * scale[:, None], floor, 255.0)).astype(np.uint8)


def _lookup(x: np.ndarray, lut: np.ndarray, axis: int) -> np.ndarray:
    """``lut[band][x]`` band by band (bands on ``axis``), into one new uint8 array.

    The table covers every value of ``x``'s dtype, so ``mode="clip"`` never clips: it
    only skips the bounds-checked buffer that ``np.take(..., out=)`` uses by default
    (2x faster than ``lut[i][x]`` fancy indexing on uint16).
    """
    out = np.empty(x.shape, dtype=np.uint8)
    for i in range(lut.shape[0]):
        index = (slice(None),) * axis + (i,)
        np.take(lut[i], x[index], out=out[index], mode="clip")
    return out


_FROM_PARAMS: Any = object()


def apply_stretch(x: np.ndarray | xr.DataArray, params: StretchParams, axis: int = 0,
                  nodata: Nodata = _FROM_PARAMS) -> Any:
    """Stretch to uint8: ``clip(255 (x - c) / (d - c), lo, 255)``, rounded; nodata pixels 0.

    Args:
        x: numpy array with bands on ``axis`` (0: bands first, -1: channels
            last), or a DataArray with a ``band`` dimension (then the result is
            lazy when ``x`` is: dask ``map_blocks``).
        params: Fitted parameters, one black/white per band.
        axis: Band axis of a numpy array.
        nodata: nodata value(s) whose pixels become 0 (valid pixels then start at
            ``lo`` = 1); by default the nodata the parameters were fitted with.

    Returns:
        uint8 array (numpy or DataArray) of ``x``'s shape.
    """
    black = np.asarray(params.black, dtype=np.float64)
    white = np.asarray(params.white, dtype=np.float64)
    nd = params.nodata if nodata is _FROM_PARAMS else band_nodata(nodata, black.size)
    if isinstance(x, xr.DataArray):
        return _apply_da(x, black, white, nd)
    arr = np.asarray(x)
    if arr.shape[axis] != black.size:
        raise DatasetError(f"stretch has {black.size} bands but the array has {arr.shape[axis]} on "
                           f"axis {axis}; fit the stretch on images with the same bands")
    shape = [1] * arr.ndim
    shape[axis] = black.size
    return _stretch_np(arr, black.reshape(shape), white.reshape(shape), nd, axis % arr.ndim)


def _apply_da(x: xr.DataArray, black: np.ndarray, white: np.ndarray, nodata: BandNodata) -> xr.DataArray:
    if "band" not in x.dims or x.sizes["band"] != black.size:
        raise DatasetError(f"stretch has {black.size} bands but the DataArray has dims {dict(x.sizes)}; "
                           "it needs a 'band' dimension of that size")
    axis = x.dims.index("band")
    shape = [1] * x.ndim
    shape[axis] = black.size
    b, w = black.reshape(shape), white.reshape(shape)
    data = x.data
    if hasattr(data, "map_blocks"):
        import dask.array as dsa

        whole = data.rechunk({axis: -1}) if len(data.chunks[axis]) > 1 else data
        # one table for every chunk, not one per chunk
        table = _table(whole.dtype, b, w, _floor(nodata)) if _has_table(whole.dtype) else None
        out = dsa.map_blocks(_stretch_np, whole, b, w, nodata, axis, table, dtype=np.uint8)
    else:
        out = _stretch_np(np.asarray(data), b, w, nodata, axis)
    return xr.DataArray(out, dims=x.dims, coords=x.coords, attrs={**x.attrs, "stretch": "applied"})


# -- files -------------------------------------------------------------------------------

def save_stretch(path: str | os.PathLike[str], params_by_source: dict[str, StretchParams]) -> Path:
    """Write ``{"version": 1, "sources": {source: params}}`` as JSON, atomically."""
    return write_json(path, {"version": 1,
                             "sources": {k: p.to_dict() for k, p in params_by_source.items()}})


def load_stretch(path: str | os.PathLike[str]) -> dict[str, StretchParams]:
    """Read a file written by :func:`save_stretch`.

    Raises:
        DatasetError: The file is missing or malformed; the message names it.
    """
    try:
        data = read_json(path)
        return {k: StretchParams.from_dict(v) for k, v in data["sources"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetError(f"cannot read stretch file {str(path)!r}: {err}; run the fit-stretch "
                           "step again") from err
