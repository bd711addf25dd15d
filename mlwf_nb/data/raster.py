"""Raster I/O at the edge of the data layer: open and write GeoTIFFs.

Everything else in :mod:`mlwf_nb.data` works on ``xarray.DataArray`` and numpy
arrays; this module is where files come in and go out. Reading is lazy (dask
chunks through rioxarray), and every file is checked before it is trusted: a
file that is not a TIFF, or whose strips/tiles point past the end of the file
(a truncated copy), raises :class:`~mlwf_nb.errors.RasterError` naming it.
Writing goes through a temporary name and an atomic rename.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mlwf_nb._io import atomic_path
from mlwf_nb.errors import RasterError

__all__ = ["DEFAULT_CHUNK", "STREAM_CACHE_MB", "check_tiff", "open_raster", "write_geotiff", "write_like",
           "capped_block_cache"]

DEFAULT_CHUNK = 1024
"""Side of the dask chunks used when ``chunks=True`` (pixels)."""

STREAM_CACHE_MB = 64
"""GDAL block cache (MB) while a scene is streamed chunk by chunk (:func:`capped_block_cache`)."""

_TAG_OFFSETS = (273, 324)  # StripOffsets, TileOffsets
_TAG_COUNTS = (279, 325)  # StripByteCounts, TileByteCounts
_TYPE_SIZES = {1: 1, 3: 2, 4: 4, 13: 4, 16: 8, 18: 8}
_TYPE_CODES = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}
_MAX_IFDS = 256


def check_tiff(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a complete TIFF file, without decoding pixels.

    Parses the TIFF header and every image file directory (classic TIFF and
    BigTIFF), and checks that every strip or tile (offset + byte count) lies
    inside the file. This catches a truncated copy even when the header and
    the first blocks are intact.

    Args:
        path: The file to check.

    Raises:
        RasterError: The file is missing, not a TIFF, or truncated; the message
            names the file and says how to fix it.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            _check_ifds(fh, size, p)
    except FileNotFoundError as err:
        raise RasterError(f"raster file {str(p)!r} does not exist; check the dataset's images/ "
                          "and labels/ folders") from err
    except RasterError:
        raise
    except (struct.error, ValueError) as err:
        raise RasterError(f"{str(p)!r} is not a readable TIFF ({err}); re-export it as a GeoTIFF "
                          "or copy it again") from err


def _check_ifds(fh: Any, size: int, p: Path) -> None:
    head = fh.read(16)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        raise RasterError(f"{str(p)!r} is not a TIFF file (bad header {head[:4]!r}); "
                          "write it as a GeoTIFF (e.g. with mlwf_nb.data.raster.write_geotiff)")
    bo = "<" if head[:2] == b"II" else ">"
    magic = struct.unpack(bo + "H", head[2:4])[0]
    if magic == 42:
        big, offset = False, struct.unpack(bo + "I", head[4:8])[0]
    elif magic == 43:
        big, offset = True, struct.unpack(bo + "Q", head[8:16])[0]
    else:
        raise RasterError(f"{str(p)!r} is not a TIFF file (magic number {magic}); "
                          "write it as a GeoTIFF")
    seen = 0
    while offset and seen < _MAX_IFDS:
        if offset >= size:
            raise RasterError(f"{str(p)!r} is truncated: directory at byte {offset} is past the end "
                              f"of the {size}-byte file; copy or download it again")
        offset = _check_ifd(fh, bo, big, offset, size, p)
        seen += 1


def _check_ifd(fh: Any, bo: str, big: bool, offset: int, size: int, p: Path) -> int:
    fh.seek(offset)
    n_fmt, entry_len, n_len = (bo + "Q", 20, 8) if big else (bo + "H", 12, 2)
    n = struct.unpack(n_fmt, fh.read(n_len))[0]
    raw = fh.read(n * entry_len + (8 if big else 4))
    if len(raw) < n * entry_len + (8 if big else 4):
        raise RasterError(f"{str(p)!r} is truncated inside a TIFF directory; copy it again")
    tags: dict[int, list[int]] = {}
    for i in range(n):
        entry = raw[i * entry_len:(i + 1) * entry_len]
        tag, typ = struct.unpack(bo + "HH", entry[:4])
        if tag in _TAG_OFFSETS + _TAG_COUNTS:
            tags[tag] = _read_values(fh, bo, big, entry, typ)
    offsets = tags.get(273) or tags.get(324) or []
    counts = tags.get(279) or tags.get(325) or []
    ends = [o + c for o, c in zip(offsets, counts, strict=False) if c]
    if ends and max(ends) > size:
        raise RasterError(f"{str(p)!r} is truncated: image data runs to byte {max(ends)} but the file "
                          f"has {size} bytes; copy or download it again")
    next_fmt = bo + ("Q" if big else "I")
    return int(struct.unpack(next_fmt, raw[n * entry_len:])[0])


def _read_values(fh: Any, bo: str, big: bool, entry: bytes, typ: int) -> list[int]:
    if typ not in _TYPE_SIZES:
        raise ValueError(f"unexpected TIFF field type {typ} for strip/tile offsets")
    count = struct.unpack(bo + ("Q" if big else "I"), entry[4:12] if big else entry[4:8])[0]
    inline = entry[12:20] if big else entry[8:12]
    nbytes = count * _TYPE_SIZES[typ]
    if nbytes <= len(inline):
        data = inline[:nbytes]
    else:
        where = struct.unpack(bo + ("Q" if big else "I"), inline)[0]
        here = fh.tell()
        fh.seek(where)
        data = fh.read(nbytes)
        fh.seek(here)
        if len(data) < nbytes:
            raise ValueError("strip/tile offset table runs past the end of the file")
    return [int(v) for v in struct.unpack(f"{bo}{count}{_TYPE_CODES[typ]}", data)]


@contextlib.contextmanager
def capped_block_cache(mb: int = STREAM_CACHE_MB) -> Iterator[None]:
    """Cap GDAL's block cache while streaming a scene (restored on exit).

    GDAL's default cache (5 % of RAM) keeps every tile a streamed pass reads,
    so a chunk-by-chunk pass over a scene still peaks near the scene's size;
    64 MB cut the streamed stretch's peak from about 515 to 186 MB on a
    6800 x 7200 x 4 uint16 scene (``benchmarks/bench_data.py``), at no cost in time.
    """
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=int(mb)):
        yield


def open_raster(path: str | os.PathLike[str], chunks: bool | int | dict[str, int] | None = True,
                check: bool = True) -> xr.DataArray:
    """Open a GeoTIFF lazily as a ``(band, y, x)`` DataArray.

    Args:
        path: The GeoTIFF.
        chunks: ``True`` for dask chunks of ``DEFAULT_CHUNK`` square pixels (all
            bands in one chunk), an int for another square size, a dict passed
            to rioxarray as is, or ``False``/``None`` for rioxarray's own lazy
            (non-dask) loading.
        check: Check the file structure first (:func:`check_tiff`).

    Returns:
        The raster; ``rio.crs``, ``rio.transform()`` and ``rio.nodata`` carry
        its georeference. Nothing is read until values are used.

    Raises:
        RasterError: The file is missing, not a TIFF or truncated, or GDAL
            cannot open it.
    """
    import rioxarray

    p = Path(path)
    if check:
        check_tiff(p)
    if chunks is True:
        chunk_arg: Any = {"band": -1, "y": DEFAULT_CHUNK, "x": DEFAULT_CHUNK}
    elif isinstance(chunks, int) and not isinstance(chunks, bool):
        chunk_arg = {"band": -1, "y": chunks, "x": chunks}
    else:
        chunk_arg = chunks or None
    try:
        da = rioxarray.open_rasterio(p, chunks=chunk_arg, masked=False)
    except Exception as err:  # rasterio raises its own RasterioIOError and friends
        raise RasterError(f"cannot open raster {str(p)!r}: {err}; check that it is a GeoTIFF") from err
    if isinstance(da, list):
        raise RasterError(f"{str(p)!r} holds several subdatasets; give one GeoTIFF per scene")
    return da  # type: ignore[return-value]


def write_geotiff(path: str | os.PathLike[str], array: Any, crs: Any, transform: Any,
                  nodata: float | None = None, tiled: bool = True,
                  compress: str | None = "deflate", blocksize: int = 256, interleave: str = "band") -> Path:
    """Write a ``(bands, H, W)`` or ``(H, W)`` array as a GeoTIFF, atomically.

    Dask-backed arrays (and DataArrays over dask) are written chunk by chunk,
    so a large lazy result is never held in memory at once.

    Args:
        path: Destination; it appears only when complete.
        array: numpy array, dask array or DataArray.
        crs: Anything rasterio accepts as a CRS (``"EPSG:32650"``, a CRS object).
        transform: An ``affine.Affine`` geotransform.
        nodata: The nodata value to record, if any.
        tiled: Write internal tiles (``blocksize`` square) instead of strips.
        compress: GDAL compression (``"deflate"``, ``"lzw"``) or ``None``.
        blocksize: Tile side in pixels (multiple of 16).
        interleave: ``"band"`` (each band's tiles apart; the default) or ``"pixel"``.
            Band interleaving writes ``(bands, H, W)`` blocks without GDAL
            interleaving them pixel by pixel: the stretched 4-band uint8 GID scene
            took 0.14 s instead of 0.25 s, and reading it back into ``(bands, H, W)``
            needs no de-interleaving either.

    Returns:
        The written path.

    Raises:
        RasterError: The array does not have 2 or 3 dimensions.
    """
    import rasterio

    data = array.data if isinstance(array, xr.DataArray) else array
    if data.ndim == 2:
        data = data[None, :, :]
    if data.ndim != 3:
        raise RasterError(f"cannot write {str(path)!r}: expected a (bands, H, W) or (H, W) array, "
                          f"got shape {tuple(data.shape)}")
    if interleave not in ("band", "pixel"):
        raise RasterError(f"cannot write {str(path)!r}: interleave must be 'band' or 'pixel', got {interleave!r}")
    bands, height, width = (int(s) for s in data.shape)
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": width, "height": height, "count": bands,
        "dtype": np.dtype(data.dtype).name, "crs": crs, "transform": transform, "nodata": nodata,
        "interleave": interleave,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if compress:
        profile.update(compress=compress)
        if np.dtype(data.dtype).kind in "iu":
            profile.update(predictor=2)
    with atomic_path(path, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for window, block in _blocks(data):
            dst.write(block, window=window)
    return Path(path)


def _blocks(data: Any) -> Any:
    """Yield (rasterio Window, numpy block) pairs, one per dask chunk (or one for numpy), in order."""
    from rasterio.windows import Window

    chunks = getattr(data, "chunks", None)
    if chunks is None or not hasattr(data, "compute"):
        arr = np.asarray(data)
        yield Window(0, 0, arr.shape[2], arr.shape[1]), arr
        return
    from mlwf_nb.data.chunks import chunk_slices, stream

    for (_, ys, xs), block in stream(data, chunk_slices(data, axes=(1, 2))):  # next chunks computed ahead
        yield Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start), block


def write_like(path: str | os.PathLike[str], array: Any, like: xr.DataArray, **kwargs: Any) -> Path:
    """Write ``array`` with the CRS and transform of another raster.

    Args:
        path: Destination GeoTIFF.
        array: ``(bands, H, W)`` or ``(H, W)`` data with the same H and W as ``like``.
        like: A raster opened with :func:`open_raster` (or any rioxarray DataArray).
        **kwargs: Passed to :func:`write_geotiff` (``nodata``, ``tiled``, ...).

    Returns:
        The written path.

    Raises:
        RasterError: The shapes differ.
    """
    shape = tuple(int(s) for s in np.shape(array))[-2:]
    like_shape = (int(like.sizes["y"]), int(like.sizes["x"]))
    if shape != like_shape:
        raise RasterError(f"cannot write {str(path)!r} like {like.encoding.get('source', 'raster')!r}: "
                          f"array is {shape[0]}x{shape[1]} but the reference is "
                          f"{like_shape[0]}x{like_shape[1]}; pass an array of the reference's size")
    return write_geotiff(path, array, like.rio.crs, like.rio.transform(), **kwargs)
