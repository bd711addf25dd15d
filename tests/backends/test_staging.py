"""Stage-in: file:// symlinks and http downloads with sha256 checks, against a loopback server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading

import pytest

from mlwf_nb.backends.local import LocalBackend, read_plan
from mlwf_nb.backends.staging import STAGE_IN_JOB, Replica, load_replicas, stage_file
from mlwf_nb.errors import BackendError, IntegrityError
from mlwf_nb.rundir.jobstate import parse_jobstate

PAYLOAD = b"remote scene bytes\n" * 100


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "scene.bin").write_bytes(PAYLOAD)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _workflow(builder, tmp_path, url, digest):
    local = tmp_path / "local.txt"
    local.write_text("local data\n")
    b = builder()
    b.rc.add_replica("local", "data/local.txt", f"file://{local}")
    b.rc.add_replica("web", "data/scene.bin", f"{url}/scene.bin", checksum={"sha256": digest})
    b.sh("use", "cat data/local.txt > outputs/out.txt; wc -c < data/scene.bin >> outputs/out.txt",
         inputs=["data/local.txt", "data/scene.bin"], outputs=["outputs/out.txt"])
    return b.write(), local


def test_http_and_file_stage_in_good_digest(builder, tmp_path, server):
    run, local = _workflow(builder, tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    plan = read_plan(run)
    assert plan.parents["use_ID0000001"] == [STAGE_IN_JOB]
    st = LocalBackend().submit(run, wait=True)
    assert st["mlwf"]["state"] == "Success", st["mlwf"]
    assert os.readlink(run / "data/local.txt") == str(local)
    assert (run / "data/scene.bin").read_bytes() == PAYLOAD and not (run / "data/scene.bin").is_symlink()
    assert (run / "outputs/out.txt").read_text().split() == ["local", "data", str(len(PAYLOAD))]
    recs = parse_jobstate(run / "jobstate.log")
    assert [r.state for r in recs if r.job == STAGE_IN_JOB] == [
        "SUBMIT", "EXECUTE", "JOB_TERMINATED", "JOB_SUCCESS", "POST_SCRIPT_STARTED",
        "POST_SCRIPT_TERMINATED", "POST_SCRIPT_SUCCESS"]
    order = [r.job for r in recs if r.state == "SUBMIT"]
    assert order == [STAGE_IN_JOB, "use_ID0000001"]
    assert st["mlwf"]["jobs"][STAGE_IN_JOB]["step"] == "stage_in"


def test_http_stage_in_bad_digest_fails_naming_everything(builder, tmp_path, server):
    run, _ = _workflow(builder, tmp_path, server, "0" * 64)
    st = LocalBackend().submit(run, wait=True)
    assert st["mlwf"]["state"] == "Failure"
    assert st["mlwf"]["failed_jobs"] == [STAGE_IN_JOB]
    tail = st["mlwf"]["jobs"][STAGE_IN_JOB]["stderr_tail"]
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    for part in ("data/scene.bin", f"{server}/scene.bin", "0" * 64, actual):
        assert part in tail
    assert not os.path.lexists(run / "data/scene.bin")  # nothing half-downloaded left in place
    assert [p.name for p in (run / "data").iterdir()] == ["local.txt"]
    assert st["mlwf"]["jobs"]["use_ID0000001"]["state"] == "unready"


def test_stage_file_units(tmp_path, server):
    rep = Replica("a.bin", [("web", f"{server}/scene.bin")], hashlib.sha256(PAYLOAD).hexdigest())
    assert "download" in stage_file(tmp_path, "a.bin", rep)
    assert "already present" in stage_file(tmp_path, "a.bin", rep)
    with pytest.raises(IntegrityError) as info:
        stage_file(tmp_path, "b.bin", Replica("b.bin", [("web", f"{server}/scene.bin")], "ab" * 32))
    assert info.value.actual == hashlib.sha256(PAYLOAD).hexdigest() and info.value.path == "b.bin"
    with pytest.raises(BackendError, match=r"no entry in replicas\.yml"):
        stage_file(tmp_path, "missing.txt", None)
    with pytest.raises(BackendError, match="scheme 'gsiftp'"):
        stage_file(tmp_path, "g.txt", Replica("g.txt", [("x", "gsiftp://host/x")]))


def test_load_replicas_reads_pegasus_checksum_key(builder, tmp_path):
    b = builder()
    b.rc.add_replica("local", "x.txt", "file:///etc/hostname", checksum={"sha256": "ff" * 32})
    b.sh("a", "true", inputs=["x.txt"])
    run = b.write()
    reps = load_replicas(run)
    assert reps["x.txt"].sha256 == "ff" * 32 and reps["x.txt"].pfns == [("local", "file:///etc/hostname")]


def test_inputs_already_in_run_dir_need_no_stage_in(builder):
    b = builder()
    b.sh("a", "cat given.txt", inputs=["given.txt"])
    run = b.write()
    (run / "given.txt").write_text("here\n")
    assert STAGE_IN_JOB not in read_plan(run).jobs
    assert LocalBackend().submit(run, wait=True)["mlwf"]["state"] == "Success"
