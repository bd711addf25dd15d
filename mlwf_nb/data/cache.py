"""What a run needs besides a dataset's own files, kept out of the dataset folder (read-only datasets work).

A run reads a dataset through two small files: its description (``dataset.yaml``) and the
manifest its integrity job checks every file against (``manifest.json``). A dataset that
ships both is used as it is and nothing is written anywhere. Otherwise the missing ones
are made in the user cache (``$MLWF_CACHE``, default ``~/.cache/mlwf``), never in the
dataset folder:

* a GID folder as downloaded gets the built-in description (:func:`mlwf_nb.data.gid.describe`);
* a dataset without a published manifest gets one built now. Digests of files whose size
  and modification time did not change since the last run are reused, so a large dataset
  is hashed once. Such a manifest can only show that files changed after planning, not
  that they differ from what their publisher released: a :class:`DatasetWarning` says so,
  and ``mlwf data manifest DIR`` (the dataset's owner, once) writes a real one.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb import _io
from mlwf_nb.data.dataset import DATASET_FILE, Dataset, not_a_dataset
from mlwf_nb.data.integrity import MANIFEST_FILE, dataset_files, read_manifest, sha256_file
from mlwf_nb.errors import DatasetWarning

__all__ = ["RunInputs", "cache_dir", "dataset_cache", "run_inputs"]

_STAT_FILE = "stat.json"


def cache_dir() -> Path:
    """The user cache of the toolkit: ``$MLWF_CACHE`` or ``~/.cache/mlwf``."""
    return Path(os.environ.get("MLWF_CACHE", Path.home() / ".cache" / "mlwf")).expanduser()


def dataset_cache(root: str | os.PathLike[str]) -> Path:
    """The cache folder of one dataset folder (by its absolute path)."""
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "datasets" / key


@dataclass(frozen=True)
class RunInputs:
    """The description and manifest a run uses for a dataset, and whether each is the dataset's own."""

    root: Path
    description: Path
    manifest: Path
    own_description: bool
    own_manifest: bool


def run_inputs(root: str | os.PathLike[str], *, notify: bool = True) -> RunInputs:
    """The dataset's own description and manifest, or ones made in the user cache (module docstring).

    Args:
        root: The dataset folder.
        notify: Warn (:class:`DatasetWarning`) when the manifest is not the dataset's own.

    Raises:
        DatasetError: ``root`` is not a dataset folder.
    """
    base = Path(root).resolve()
    own_yaml, own_manifest = (base / DATASET_FILE).is_file(), (base / MANIFEST_FILE).is_file()
    if own_yaml and own_manifest:
        return RunInputs(base, base / DATASET_FILE, base / MANIFEST_FILE, True, True)
    cache = _io.ensure_dir(dataset_cache(base))
    description = base / DATASET_FILE
    extra: dict[str, Path] = {}
    if not own_yaml:
        ds = Dataset.open(base)  # a GID folder as downloaded, or a DatasetError with the ways out
        description = _io.write_text(cache / DATASET_FILE, "# built-in description of the GID folder "
                                     f"{base}\n" + yaml.safe_dump(_description(ds), sort_keys=False))
        extra[DATASET_FILE] = description
    if own_manifest:
        files = dict(read_manifest(base / MANIFEST_FILE)["files"])
    else:
        files = _digests(base, cache)
        if notify:
            warnings.warn(DatasetWarning(
                f"{base} has no {MANIFEST_FILE}: the run checks its {len(files)} files against digests taken "
                f"now ({cache / MANIFEST_FILE}), which shows changes after planning only; the dataset's "
                f"owner can publish one with `mlwf data manifest {base}`"), stacklevel=2)
    for rel, path in extra.items():
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    manifest = _io.write_json(cache / MANIFEST_FILE, {"version": 1, "algorithm": "sha256", "files": files})
    return RunInputs(base, description, manifest, own_yaml, own_manifest)


def _description(ds: Dataset) -> dict[str, Any]:
    """The description of a GID folder without a scenes list (a run discovers them as :meth:`Dataset.open` does)."""
    meta = ds.to_dict()
    meta.pop("scenes")
    from mlwf_nb.data import gid

    meta.update({k: v for k, v in (gid.describe(ds.root) or {}).items() if k in ("image_dir", "label_dir")})
    return meta


def _digests(base: Path, cache: Path) -> dict[str, Any]:
    """sha256 and size of every dataset file, reusing the cached digest of a file whose size and mtime held."""
    try:
        old = _io.read_json(cache / _STAT_FILE)
    except (OSError, ValueError):
        old = {}
    files, stats = {}, {}
    for rel in dataset_files(base):
        st = (base / rel).stat()
        stat = [st.st_size, st.st_mtime_ns]
        prev = old.get(rel)
        digest = prev["sha256"] if isinstance(prev, dict) and prev.get("stat") == stat else sha256_file(base / rel)
        files[rel] = {"sha256": digest, "size": st.st_size}
        stats[rel] = {"sha256": digest, "stat": stat}
    _io.write_json(cache / _STAT_FILE, stats)
    if not files:
        raise not_a_dataset(base)
    return files
