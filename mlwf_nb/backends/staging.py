"""Stage-in for the local backend: replicas.yml -> files in the run directory.

Every input LFN of the workflow that no job produces is looked up in the
replica catalog (``replicas.yml`` and an inline ``replicaCatalog`` of
``workflow.yml``). As Pegasus does with symlinking enabled, a ``file://`` PFN
(or a bare absolute path) becomes a symlink ``<run>/<lfn> -> path``; an
``http(s)://`` PFN is downloaded to a temporary name, its sha256 compared with
the replica's ``checksum: {sha256: ...}`` and only then renamed into place.

The executor runs this module as the pseudo job ``stage_in_local_local_0``::

    python -m mlwf_nb.backends.staging RUN_DIR LFN [LFN ...]
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb._io import atomic_path, ensure_dir
from mlwf_nb.errors import BackendError, IntegrityError

__all__ = ["STAGE_IN_JOB", "Replica", "read_yaml", "load_replicas", "needs_stage_in", "stage_file", "stage_in", "main"]

STAGE_IN_JOB = "stage_in_local_local_0"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Replica:
    """The PFNs of one LFN, as ``(site, pfn)`` pairs, and its expected sha256 (if any)."""

    lfn: str
    pfns: list[tuple[str, str]] = field(default_factory=list)
    sha256: str | None = None

    def best_pfn(self) -> str:
        """The PFN to use: site ``local`` first, then ``file://``, then the first listed."""
        for site, pfn in self.pfns:
            if site == "local":
                return pfn
        for _, pfn in self.pfns:
            if pfn.startswith("file://") or pfn.startswith("/"):
                return pfn
        if not self.pfns:
            raise BackendError(f"replica {self.lfn!r} has no pfns in replicas.yml; add one")
        return self.pfns[0][1]


def read_yaml(path: Path) -> Any:
    """Load a YAML file with the safe loader (C version when available); missing file: None."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        return None
    except yaml.YAMLError as err:
        raise BackendError(f"{path}: not valid YAML ({err}); rewrite it with Pegasus.api") from err


def load_replicas(run_dir: str | os.PathLike[str],
                  workflow: Mapping[str, Any] | None = None) -> dict[str, Replica]:
    """Read ``replicas.yml`` (and ``workflow["replicaCatalog"]``) into ``{lfn: Replica}``.

    Regex replicas are not supported locally and are skipped.
    """
    docs = [read_yaml(Path(run_dir) / "replicas.yml")]
    if workflow is not None:
        docs.append(workflow.get("replicaCatalog"))
    out: dict[str, Replica] = {}
    for doc in docs:
        for entry in (doc or {}).get("replicas", []) or []:
            if entry.get("regex"):
                continue
            rep = out.setdefault(entry["lfn"], Replica(entry["lfn"]))
            rep.pfns.extend((p.get("site", "local"), p["pfn"]) for p in entry.get("pfns", []))
            sha = (entry.get("checksum") or {}).get("sha256")
            rep.sha256 = sha or rep.sha256
    return out


def needs_stage_in(run_dir: str | os.PathLike[str], lfns: Iterable[str],
                   replicas: Mapping[str, Replica]) -> list[str]:
    """The LFNs a stage-in job must handle: those with a replica, or missing from the run dir."""
    root = Path(run_dir)
    return [lfn for lfn in lfns if lfn in replicas or not os.path.lexists(root / lfn)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _link(dest: Path, target: str) -> str:
    if os.path.islink(dest) and os.readlink(dest) == target:
        return f"symlink {dest.name} -> {target} (already in place)"
    if not os.path.islink(dest) and os.path.exists(dest) and os.path.samefile(dest, target):
        return f"{dest.name} is already the replica itself (nothing to stage)"
    tmp = dest.with_name(f".{dest.name}.link.tmp")
    if os.path.lexists(tmp):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, dest)
    return f"symlink {dest} -> {target}"


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in _LOOPBACK:  # never send loopback traffic through a proxy
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _download(dest: Path, lfn: str, url: str, sha256: str | None) -> str:
    if sha256 and dest.is_file() and not dest.is_symlink() and _sha256(dest) == sha256:
        return f"{lfn}: already present with sha256 {sha256}"
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with _opener(url).open(url, timeout=120) as resp, open(tmp, "wb") as out:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        actual = h.hexdigest()
        if sha256 and actual != sha256.lower():
            raise IntegrityError(
                f"stage-in of lfn {lfn!r} from {url}: sha256 mismatch, expected {sha256}, actual {actual}; "
                "fix the checksum in replicas.yml or the file at the url",
                path=lfn, expected=sha256, actual=actual)
    return f"download {url} -> {dest} (sha256 {actual})"


def stage_file(run_dir: str | os.PathLike[str], lfn: str, replica: Replica | None) -> str:
    """Stage one LFN into ``run_dir`` and return a one-line description of what was done.

    Raises:
        BackendError: no replica and the file is not in the run directory, or an unknown scheme.
        IntegrityError: a downloaded file's sha256 differs from the replica's checksum.
    """
    dest = Path(run_dir) / lfn
    if replica is None:
        if os.path.lexists(dest):
            return f"{lfn}: present in the run directory"
        raise BackendError(f"input lfn {lfn!r} is produced by no job, has no entry in replicas.yml and is not "
                           f"in the run directory {run_dir}; add a replica for it")
    ensure_dir(dest.parent)
    pfn = replica.best_pfn()
    scheme = urllib.parse.urlsplit(pfn).scheme
    if scheme in ("", "file"):
        return _link(dest, urllib.parse.unquote(urllib.parse.urlsplit(pfn).path) if scheme else pfn)
    if scheme in ("http", "https"):
        return _download(dest, lfn, pfn, replica.sha256)
    raise BackendError(f"replica {lfn!r}: pfn {pfn!r} has scheme {scheme!r}; the local backend stages "
                       "file://, http:// and https:// only")


def stage_in(run_dir: str | os.PathLike[str], lfns: Sequence[str],
             replicas: Mapping[str, Replica] | None = None) -> list[str]:
    """Stage every LFN of ``lfns``; returns the descriptions. Raises at the first error."""
    reps = load_replicas(run_dir, read_yaml(Path(run_dir) / "workflow.yml")) if replicas is None else replicas
    return [stage_file(run_dir, lfn, reps.get(lfn)) for lfn in lfns]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the stage-in pseudo job; exit 0 on success, 1 if any LFN failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m mlwf_nb.backends.staging RUN_DIR [LFN ...]", file=sys.stderr)
        return 2
    run_dir, lfns = args[0], args[1:]
    try:
        reps = load_replicas(run_dir, read_yaml(Path(run_dir) / "workflow.yml"))
    except BackendError as err:
        print(f"stage-in failed: {err}", file=sys.stderr, flush=True)
        return 1
    failed = 0
    for lfn in lfns:  # stage everything possible, then report every failure
        try:
            print(stage_file(run_dir, lfn, reps.get(lfn)), flush=True)
        except (BackendError, IntegrityError, OSError) as err:
            failed += 1
            print(f"stage-in failed: {err}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
