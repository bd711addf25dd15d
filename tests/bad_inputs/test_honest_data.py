"""Careless inputs are refused before any job runs, with a typed error that names them (issue 16).

A mistyped or empty ``dataset.path``, a folder that is not a dataset, synthetic data asked into
someone's files, ``mlwf data manifest`` on a folder that is not a dataset, a ``--run-dir`` that
holds other files; and a deterministic data error inside a job is not retried (exit 65) and its
reason is printed even with ``--quiet``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlwf_nb.cli import main
from mlwf_nb.data.raster import open_raster, write_geotiff

MLWF = str(Path(sys.executable).parent / "mlwf")
SPLIT = ["split.train=0.5", "split.val=0.5", "split.test=0"]


def _sets(*overrides: str) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("where", "overrides", "needle"), [
    ("typo", [], r"gid-synth-tny' does not exist"),
    ("empty", ["dataset.path="], r"dataset.path is empty"),
    ("other-files", [], r"is not a dataset folder: it has no dataset.yaml and no GID image folder"),
    ("other-files", ["dataset.synthetic=true"], r"never among other files"),
])
def test_a_path_that_is_no_dataset_fails_at_plan(tmp_path, capsys, where, overrides, needle):
    paths = {"typo": tmp_path / "gid-synth-tny", "other-files": tmp_path / "mine", "empty": None}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own files")
    target = paths[where]
    sets = ([f"dataset.path={target}"] if target else []) + overrides
    assert main(["plan", "--preset", "tiny", "--out", str(tmp_path / "run"), *_sets(*sets)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlwf: error: ") and "Traceback" not in err
    assert __import__("re").search(needle, err), err
    assert "image_NirRGB/" in err and "dataset.synthetic: true" in err  # the ways out: GID and synthetic data
    assert _listing(tmp_path / "mine") == ["notes.txt"]  # nothing generated among the user's files
    assert not (tmp_path / "run").exists() and not (tmp_path / "gid-synth-tny").exists()


def test_manifest_of_a_folder_that_is_no_dataset(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["data", "manifest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a dataset folder" in err and not (tmp_path / "manifest.json").exists()


def test_a_run_dir_holding_other_files_is_refused(tmp_path, capsys, good_dataset):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "thesis.tex").write_text("x")
    argv = ["plan", "--out", str(run_dir), *_sets(f"dataset.path={good_dataset}", *SPLIT)]
    assert main(argv) == 2
    assert "is not a run directory but holds other files" in capsys.readouterr().err
    assert _listing(run_dir) == ["thesis.tex"]


@pytest.mark.slow
def test_bad_data_in_a_job_is_not_retried_and_quiet_still_says_why(dataset_copy, tmp_path):
    """A file changed after its manifest: the integrity job exits 65 once (retries=2), --quiet shows why."""
    img = dataset_copy / "images" / "GF-2_000.tif"
    da = open_raster(img, chunks=False)
    arr = np.asarray(da).copy()
    arr[0, 0, 0] += 1  # still a valid GeoTIFF (the plan's header check passes), another digest
    write_geotiff(img, arr, da.rio.crs, da.rio.transform(), blocksize=16)
    run_dir = tmp_path / "run"
    proc = subprocess.run([MLWF, "run", "--wait", "--quiet", "--run-dir", str(run_dir),
                           *_sets(f"dataset.path={dataset_copy}", *SPLIT, "execution.retries=2")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAILED integrity_" in proc.stderr and "sha256" in proc.stderr and "GF-2_000.tif" in proc.stderr
    stderr_files = sorted((run_dir / "jobs").glob("integrity_*/stderr.*"))
    assert len(stderr_files) == 1, stderr_files  # one try: exit 65 is not retried
    assert "mlwf step integrity: error:" in stderr_files[0].read_text()
    from mlwf_nb.runs import Run

    job = next(j for n, j in Run(run_dir).status()["mlwf"]["jobs"].items() if n.startswith("integrity_"))
    assert job["exit_code"] == 65 and job["tries"] == 1
