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
