"""Streaming passes over chunked (dask) rasters: a few chunks computed ahead on threads, in order.

A streamed pass (the stretch's histograms, the stretched write) reads one chunk,
works on it, and goes on. Reading (GDAL), ``np.bincount`` and the lookup table
all release the GIL, so two threads overlap the read of one chunk with the work
on the one before. At most ``workers`` chunks are in flight, which bounds the
memory to a few chunks (docs/benchmarks.md, rows "stretch").
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["chunk_slices", "stream", "DEFAULT_WORKERS"]

DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


def chunk_slices(data: Any, axes: Sequence[int] | None = None) -> list[tuple[slice, ...]]:
    """One index tuple per chunk of ``data`` (a dask array), split along ``axes`` (default: all)."""
    split = range(data.ndim) if axes is None else axes
    edges = [np.cumsum((0, *c)) if i in split else np.array([0, n])
             for i, (c, n) in enumerate(zip(data.chunks, data.shape, strict=True))]
    return [tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, cell, strict=True))
            for cell in itertools.product(*(range(len(e) - 1) for e in edges))]


def stream(data: Any, slices: Sequence[tuple[slice, ...]], fn: Callable[[np.ndarray], Any] = np.asarray,
           workers: int | None = None) -> Iterator[tuple[tuple[slice, ...], Any]]:
    """Yield ``(index, fn(data[index] computed))`` for each index, in order, ``workers`` at a time.

    Each chunk is computed with dask's synchronous scheduler inside its thread (no
    nested thread pools). ``workers=1`` computes in the calling thread.
    """
    n = DEFAULT_WORKERS if workers is None else max(1, workers)

    def task(index: tuple[slice, ...]) -> Any:
        block = data[index]
        if hasattr(block, "compute"):
            block = block.compute(scheduler="synchronous")
        return fn(np.asarray(block))

    if n == 1:
        for index in slices:
            yield index, task(index)
        return
    todo = iter(slices)
    with ThreadPoolExecutor(n, thread_name_prefix="mlwf-chunks") as pool:
        pending: deque[tuple[tuple[slice, ...], Future[Any]]] = deque(
            (index, pool.submit(task, index)) for index in itertools.islice(todo, n))
        while pending:
            index, future = pending.popleft()
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(task, nxt)))
            yield index, result
