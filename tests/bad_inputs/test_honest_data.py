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
    """A file changed after its manifest: its scene's check job exits 65 once (retries=2), --quiet shows why."""
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
    assert "FAILED check_" in proc.stderr and "sha256" in proc.stderr and "GF-2_000.tif" in proc.stderr
    from mlwf_nb.runs import Run

    st = Run(run_dir).status()["mlwf"]
    (name,) = st["failed_jobs"]  # the changed scene's own check job; the other scenes' checks passed
    job = st["jobs"][name]
    assert name.startswith("check_") and job["exit_code"] == 65 and job["tries"] == 1
    stderr_files = sorted((run_dir / "jobs" / name).glob("stderr.*"))
    assert len(stderr_files) == 1, stderr_files  # one try: exit 65 is not retried
    assert "mlwf step check: error:" in stderr_files[0].read_text()


def test_planning_alone_generates_nothing_and_names_the_command(tmp_path, monkeypatch, capsys):
    """Inside no_generation (mlwf plan / validate) a synthetic dataset not made yet is refused with the command
    that makes the very dataset a run would generate; an existing dataset, a GID download included, is accepted."""
    import re
    import shlex

    from mlwf_nb.data.integrity import sha256_file
    from mlwf_nb.errors import DatasetError
    from mlwf_nb.pipelines import galaxy, landcover
    from mlwf_nb.pipelines._prepare import no_generation
    from mlwf_nb.spec import RunSpec
    from tests.gid_download import write_gid_download

    monkeypatch.setenv("MLWF_CACHE", str(tmp_path / "cache"))
    spec = RunSpec.from_preset("tiny").with_overrides({"dataset.path": str(tmp_path / "a"), "dataset.synthetic": True})
    with no_generation(), pytest.raises(DatasetError, match=r"planning writes no data.*`mlwf run` generates it") as err:
        landcover.prepare(spec)
    assert not (tmp_path / "a").exists()
    command = re.search(r"`mlwf synth ([^`]+)`", str(err.value))
    assert command, err.value
    assert main(["synth", *shlex.split(command.group(1))]) == 0
    with no_generation():
        landcover.prepare(spec)  # now there: accepted
    landcover.prepare(spec.with_overrides({"dataset.path": str(tmp_path / "b"), "dataset.synthetic": True}))
    files = _listing(tmp_path / "a")  # what the command made is what a run generates
    assert "manifest.json" in files and _listing(tmp_path / "b") == files
    for rel in files:
        if (tmp_path / "a" / rel).is_file():
            assert sha256_file(tmp_path / "a" / rel) == sha256_file(tmp_path / "b" / rel), rel

    gid = write_gid_download(tmp_path / "gid")
    before = _listing(gid)
    with no_generation():  # as downloaded: no dataset.yaml, no manifest (made in the cache), nothing written here
        landcover.prepare(RunSpec.from_preset("tiny").with_overrides({"dataset.path": str(gid)}))
    assert _listing(gid) == before

    samples = RunSpec.from_preset("galaxy:tiny").with_overrides({"dataset.path": str(tmp_path / "g"),
                                                                 "dataset.synthetic": True})
    with no_generation(), pytest.raises(DatasetError, match=r"planning writes no data.*`mlwf run` generates it$"):
        galaxy.prepare(samples)
    assert not (tmp_path / "g").exists()
    capsys.readouterr()
