"""Fixtures of the bad-input corpus: one small valid dataset per session, copied per case."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def good_dataset(tmp_path_factory) -> Path:
    """A valid 2-scene 64x64 dataset with its manifest (never modified; copy it)."""
    from mlwf_nb.data.integrity import write_manifest
    from mlwf_nb.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("bad-inputs") / "good"
    generate_dataset(root, scenes=2, height=64, width=64, sources=("GF-2",), seed=3)
    write_manifest(root)
    return root


@pytest.fixture
def dataset_copy(good_dataset, tmp_path) -> Path:
    """A fresh copy of the good dataset that a case may break."""
    dst = tmp_path / "ds"
    shutil.copytree(good_dataset, dst)
    return dst
