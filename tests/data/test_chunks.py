"""mlwf_nb.data.chunks: streamed chunk passes keep order, match a serial pass, and bound what is in flight."""

from __future__ import annotations

import threading
import time

import dask.array as da
import numpy as np
import pytest

from mlwf_nb.data.chunks import chunk_slices, stream


def _array():
    x = np.arange(3 * 50 * 70, dtype=np.uint16).reshape(3, 50, 70)
    return x, da.from_array(x, chunks=(3, 16, 20))


def test_slices_cover_every_element_once():
    x, d = _array()
    seen = np.zeros(x.shape, dtype=int)
    for sl in chunk_slices(d):
        seen[sl] += 1
    assert (seen == 1).all()
    assert all(sl[0] == slice(0, 3) for sl in chunk_slices(d, axes=(1, 2)))
    assert len(chunk_slices(d, axes=(1, 2))) == 4 * 4


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_in_order_and_same_as_a_serial_pass(workers):
    x, d = _array()
    slices = chunk_slices(d)
    got = list(stream(d, slices, lambda b: int(b.sum()), workers=workers))
    assert [sl for sl, _ in got] == slices
    assert [v for _, v in got] == [int(x[sl].sum()) for sl in slices]


def test_at_most_workers_chunks_in_flight():
    _, d = _array()
    lock, live, peak = threading.Lock(), [0], [0]

    def slow(block):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.01)
        with lock:
            live[0] -= 1
        return block.shape

    started, consumed, ahead = [0], 0, 0
    count = slow

    def slow_counted(block):
        with lock:
            started[0] += 1
        return count(block)

    for _ in stream(d, chunk_slices(d), slow_counted, workers=2):
        consumed += 1
        time.sleep(0.02)  # a slow consumer: the producers must not run ahead of it
        with lock:
            ahead = max(ahead, started[0] - consumed)
    assert consumed == 16 and peak[0] <= 2
    assert ahead <= 2  # chunks computed but not yet handed over: bounded (memory), not the whole raster


def test_an_error_in_a_chunk_reaches_the_caller():
    _, d = _array()

    def boom(block):
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        list(stream(d, chunk_slices(d), boom, workers=2))
