"""Shared test configuration: quiet TensorFlow, Keras on TensorFlow, seeded randomness."""

from __future__ import annotations

import os
import random

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed Python's and numpy's global generators before every test."""
    random.seed(0)
    np.random.seed(0)


try:  # property tests: no per-example deadline (a loaded CI machine is slow), same examples every run
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("mlwf", deadline=None, derandomize=True, print_blob=True)
    _hyp_settings.load_profile("mlwf")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass
