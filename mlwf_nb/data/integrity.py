"""sha256 manifests of a dataset folder, and verification against them.

``manifest.json`` (version 1)::

    {"version": 1, "algorithm": "sha256",
     "files": {"images/GF-2_000.tif": {"sha256": "...", "size": 123}, ...}}

Paths are relative to the dataset root with ``/`` separators. The manifest
itself and hidden files (any path part starting with ``.``, e.g. temporary
files of an atomic write) are left out.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json, write_json
from mlwf_nb.errors import IntegrityError

__all__ = ["MANIFEST_FILE", "IntegrityReport", "sha256_file", "build_manifest", "write_manifest",
           "read_manifest", "verify", "dataset_files"]

MANIFEST_FILE = "manifest.json"
_FIX = "copy the file again from its source, or rebuild the manifest with write_manifest(root)"


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte pieces (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dataset_files(root: Path) -> list[str]:
    """The files a manifest of ``root`` covers: every file but the manifest and hidden ones, sorted."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or rel.as_posix() == MANIFEST_FILE:
            continue
        if p.is_file():
            out.append(rel.as_posix())
    return sorted(out)


def build_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Digest and size of every file under ``root`` (see the module docstring)."""
    base = Path(root)
    files = {rel: {"sha256": sha256_file(base / rel), "size": (base / rel).stat().st_size}
             for rel in dataset_files(base)}
    return {"version": 1, "algorithm": "sha256", "files": files}


def write_manifest(root: str | os.PathLike[str]) -> Path:
    """Build the manifest and write it atomically to ``root/manifest.json``.

    This writes into the dataset folder: what its owner does once, when publishing it
    (``mlwf data manifest DIR``). Runs never call it (:mod:`mlwf_nb.data.cache`).

    Raises:
        DatasetError: ``root`` is not a dataset folder (no dataset.yaml, not a GID folder).
        IntegrityError: ``root`` cannot be written (a read-only dataset).
    """
    from mlwf_nb.data.dataset import is_dataset, not_a_dataset

    if not is_dataset(root):
        raise not_a_dataset(root)
    target = Path(root) / MANIFEST_FILE
    if not os.access(root, os.W_OK):  # before hashing every file (EROFS and missing write bits alike)
        raise _read_only(target, "the folder is not writable")
    try:
        return write_json(target, build_manifest(root))
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _read_only(target, err.strerror or str(err)) from err
        raise


def _read_only(target: Path, why: str) -> IntegrityError:
    return IntegrityError(f"cannot write {str(target)!r}: {why}; the dataset folder is read-only: its owner "
                          "publishes the manifest (runs work without one: they take digests into the user "
                          "cache)", path=str(target))


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a manifest file.

    Raises:
        IntegrityError: The file is missing or not a version-1 sha256 manifest.
    """
    p = Path(path)
    if not p.is_file():
        raise IntegrityError(f"manifest {str(p)!r} not found; write one with write_manifest(root) "
                             "(mlwf data manifest)", path=str(p))
    try:
        data = read_json(p)
    except ValueError as err:
        raise IntegrityError(f"manifest {str(p)!r} is not valid JSON ({err}); rebuild it with "
                             "write_manifest(root)", path=str(p)) from err
    if not isinstance(data, dict) or data.get("algorithm") != "sha256" or not isinstance(
            data.get("files"), dict):
        raise IntegrityError(f"manifest {str(p)!r} is not a sha256 manifest (version 1); rebuild it "
                             "with write_manifest(root)", path=str(p))
    return data


@dataclass
class IntegrityReport:
    """What :func:`verify` found: files missing, unexpected, or with another digest."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mismatched."""
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe)."""
        return {"ok": self.ok, "checked": self.checked, "missing": self.missing,
                "unexpected": self.unexpected, "mismatched": [list(m) for m in self.mismatched]}


def verify(root: str | os.PathLike[str], manifest: dict[str, Any] | str | os.PathLike[str] | None = None,
           raise_on_error: bool = True) -> IntegrityReport:
    """Check every file under ``root`` against a manifest.

    Args:
        root: The dataset folder.
        manifest: The manifest (dict), its path, or None for ``root/manifest.json``.
        raise_on_error: Raise on the first problem instead of only reporting it.

    Returns:
        The report (``report.ok`` when everything matches).

    Raises:
        IntegrityError: With ``raise_on_error``: a digest differs (``path``,
            ``expected`` and ``actual`` set), a file is missing (``actual`` None)
            or unexpected (``expected`` None). Also when the manifest is unreadable.
    """
    base = Path(root)
    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest if manifest is not None else base / MANIFEST_FILE)
    expected: dict[str, Any] = manifest["files"]
    present = set(dataset_files(base))
    report = IntegrityReport(missing=sorted(set(expected) - present),
                             unexpected=sorted(present - set(expected)))
    for rel in sorted(set(expected) & present):
        actual = sha256_file(base / rel)
        report.checked += 1
        if actual != expected[rel]["sha256"]:
            report.mismatched.append((rel, expected[rel]["sha256"], actual))
            if raise_on_error:
                break
    if raise_on_error:
        _raise(base, report)
    return report


def _raise(base: Path, report: IntegrityReport) -> None:
    if report.mismatched:
        rel, exp, act = report.mismatched[0]
        path = str(base / rel)
        raise IntegrityError(f"{path!r}: sha256 is {act} but the manifest expects {exp}; the file is "
                             f"corrupt or was changed; {_FIX}", path=path, expected=exp, actual=act)
    if report.missing:
        path = str(base / report.missing[0])
        more = f" (and {len(report.missing) - 1} more)" if len(report.missing) > 1 else ""
        raise IntegrityError(f"{path!r} is listed in the manifest but missing{more}; {_FIX}",
                             path=path)
    if report.unexpected:
        path = str(base / report.unexpected[0])
        more = f" (and {len(report.unexpected) - 1} more)" if len(report.unexpected) > 1 else ""
        raise IntegrityError(f"{path!r} is not in the manifest{more}; remove it or rebuild the manifest "
                             "with write_manifest(root)", path=path)
