"""A dataset folder rebuilt from a job's staged files, for the steps that check a whole dataset.

A job gets its files as arguments, under names unique in its sandbox
(``dataset/GF-2_002.image.tif``), never in the dataset's own folder layout. The
integrity steps compare those files with the dataset's manifest, whose keys *are*
that layout (``images/GF-2_002.tif``); :func:`dataset_view` gives them a temporary
folder of symlinks ``<key> -> <staged file>``, so the dataset readers work unchanged
and the job's sandbox gets no new files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlwf_nb.errors import StepError

__all__ = ["dataset_view"]


@contextmanager
def dataset_view(files: Sequence[Path], keys: Sequence[str]) -> Iterator[Path]:
    """A temporary dataset folder where ``keys[i]`` is a symlink to ``files[i]``.

    Raises:
        StepError: the lists differ in length, or a key would leave the folder.
    """
    if len(files) != len(keys):
        raise StepError(f"{len(files)} dataset files but {len(keys)} keys: give one manifest key per file, "
                        "in the same order")
    root = Path(tempfile.mkdtemp(prefix="mlwf-dataset-view-"))
    try:
        for path, key in zip(files, keys, strict=True):
            rel = Path(key)
            if rel.is_absolute() or ".." in rel.parts or not key:
                raise StepError(f"dataset key {key!r} must be a path inside the dataset folder")
            link = root / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(path).resolve(), link)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
