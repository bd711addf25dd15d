"""Fixtures for tests/ml: a tiny separable patch problem and an events file."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from mlwf_nb.rundir.events import ENV_EVENTS, read_events


def _make_patches(n: int, num_classes: int = 3, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 patches (n, size, size, 4) whose class k has band k bright: trivially separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    rng.shuffle(y)
    x = rng.integers(0, 60, size=(n, size, size, 4)).astype(np.uint8)
    for k in range(num_classes):
        x[y == k, :, :, k] += 150
    return x, y.astype(np.int64)


@pytest.fixture
def patches() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Train (192 samples) and validation (96 samples) sets of make_patches."""
    return _make_patches(192, seed=1), _make_patches(96, seed=2)


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MLWF_EVENTS at a temporary file; return its path."""
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV_EVENTS, str(path))
    return path


@pytest.fixture
def events_of(events_file: Path):
    """A function returning the events of one type written so far to ``events_file``."""

    def select(type_: str) -> list[dict]:
        return [e for e in read_events(events_file) if e["type"] == type_] if events_file.exists() else []

    return select
