"""Data acquisition through the replica catalog: a dataset served over HTTP (loopback only)."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
import yaml

from mlwf_nb.data.integrity import write_manifest
from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.errors import IntegrityError
from mlwf_nb.runs import submit
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import write_run_dir

SMALL = ["dataset.scenes=4", "dataset.height=64", "dataset.width=64", "patches.per_scene=16",
         "train.epochs=1", "evaluate.window_sizes=[16]", "execution.jobs=2", "execution.retries=0"]


@pytest.fixture
def served(tmp_path, monkeypatch):
    root = tmp_path / "served"
    generate_dataset(root, scenes=4, height=64, width=64, sources=("GF-2", "GF-1"), seed=3)
    write_manifest(root)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MLWF_CACHE", str(tmp_path / "cache"))
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_remote_files_are_registered_with_url_and_digest(served, tmp_path):
    _, url = served
    spec = RunSpec.from_preset("tiny").with_overrides([*SMALL, f"dataset.path={url}"])
    run = write_run_dir(spec, tmp_path / "run")
    rc = yaml.safe_load((run / "replicas.yml").read_text())
    images = [r for r in rc["replicas"] if r["lfn"].endswith(".image.tif")]
    assert len(images) == 4
    for r in images:
        assert r["pfns"][0]["pfn"].startswith(url)
        assert len(r["checksum"]["sha256"]) == 64


@pytest.mark.slow
def test_remote_dataset_is_staged_checked_and_trained_on(served, tmp_path):
    _, url = served
    run = submit("tiny", run_dir=tmp_path / "run", wait=True, overrides=[*SMALL, f"dataset.path={url}"])
    assert run.state == "Success", run.status()["mlwf"]
    staged = sorted((run.dir / "dataset").glob("*.image.tif"))
    assert len(staged) == 4 and all(p.is_file() and not p.is_symlink() for p in staged)
    assert (run.dir / "outputs" / "confusion_matrix.json").exists()


def test_a_tampered_remote_scene_fails_stage_in(served, tmp_path):
    root, url = served
    scene = sorted((root / "images").glob("*.tif"))[0]
    data = bytearray(scene.read_bytes())
    data[-10] ^= 0xFF
    scene.write_bytes(bytes(data))
    run = submit("tiny", run_dir=tmp_path / "run", wait=True, overrides=[*SMALL, f"dataset.path={url}"])
    assert run.state == "Failure"
    st = run.status()["mlwf"]
    assert any(name.startswith("stage_in") for name in st["failed_jobs"])
    tail = st["jobs"][next(n for n in st["failed_jobs"] if n.startswith("stage_in"))]["stderr_tail"]
    assert scene.name in tail and "sha256" in tail.lower()
    assert not any(name.startswith("train_") and j["tries"] for name, j in st["jobs"].items())


def test_remote_dataset_yaml_digest_is_checked(served, tmp_path):
    root, url = served
    (root / "dataset.yaml").write_text((root / "dataset.yaml").read_text() + "\n# edited\n")
    spec = RunSpec.from_preset("tiny").with_overrides([*SMALL, f"dataset.path={url}"])
    with pytest.raises(IntegrityError, match=r"dataset\.yaml"):
        write_run_dir(spec, tmp_path / "run")
