"""A GID folder as downloaded (no dataset.yaml, no manifest), read-only, trained and evaluated end to end.

The folder is written by code independent of the toolkit (``tests/gid_download.py``: numpy and
Pillow), made read-only for real (write bits removed, and a read-only bind mount when the tests
run as root: ``tests/readonly.py``), and ``mlwf run`` must succeed on it without writing a byte
into it: the built-in GID description and the manifest go to the user cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlwf_nb.data.classes import GID5_CLASSES
from tests.gid_download import SCENES, write_gid_download
from tests.readonly import run_read_only

pytestmark = pytest.mark.slow

MLWF = str(Path(sys.executable).parent / "mlwf")
TINY = ["patches.sizes=[16]", "patches.input_size=16", "patches.per_scene=24", "train.epochs=1",
        "evaluate.window_sizes=[16]", "execution.jobs=2"]


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def download(tmp_path):
    root = write_gid_download(tmp_path / "GID", size=48)
    yield root
    for path in [root, *root.rglob("*")]:  # let pytest clean up as a non-root user too
        path.chmod(path.stat().st_mode | 0o200)


def test_read_only_gid_download_runs_end_to_end(download, tmp_path):
    before = _listing(download)
    env = {"MLWF_CACHE": str(tmp_path / "cache"), "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    sets = [x for o in (*TINY, f"dataset.path={download}") for x in ("--set", o)]
    proc = run_read_only(download, [MLWF, "run", "--preset", "tiny", *sets, "--run-dir", str(tmp_path / "run"),
                                    "--wait", "--quiet"], env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "mlwf: warning:" in proc.stderr and "has no manifest.json" in proc.stderr  # the notice, one line
    out = tmp_path / "run" / "outputs"
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["per_class"]) == [c.name for c in GID5_CLASSES[1:]]
    assert metrics["support"] > 0
    test_maps = sorted(p.name for p in (out / "maps").glob("*.png"))
    assert test_maps and all(any(name.startswith(s) for s in SCENES) for name in test_maps)
    assert _listing(download) == before  # not a byte written into the dataset

    refused = run_read_only(download, [MLWF, "data", "manifest", str(download)], env)
    assert refused.returncode == 2 and "read-only" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
