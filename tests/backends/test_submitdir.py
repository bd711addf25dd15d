"""read_submit_dir against the real Pegasus 5 submit directories in ../shared/pegasus/samples.

The expected values below were read by hand from each sample's jobstate.log,
process-0.dag.dagman.out, process-0.stampede.db and 00/00/*.out.NNN.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlwf_nb.backends.submitdir import decode_exitcode, read_progress, read_submit_dir
from mlwf_nb.errors import RunError

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "pegasus" / "samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Pegasus samples not found at {SAMPLES}")

JOBS = ["create_dir_process_0_local", "ls_ID0000001", "stage_out_local_local_0_0",
        "cleanup_process_0_local", "register_local_0_0"]


def test_success_sample():
    s = read_submit_dir(SAMPLES / "process_wf_success")
    assert s.braindump["pegasus_wf_name"] == "process-0"
    assert list(s.jobs) == JOBS
    assert {n: (j.state, j.exit_code, j.tries, j.site) for n, j in s.jobs.items()} == {
        "create_dir_process_0_local": ("succeeded", 0, 1, "local"),
        "ls_ID0000001": ("succeeded", 0, 1, "condorpool"),
        "stage_out_local_local_0_0": ("succeeded", 0, 1, "local"),
        "cleanup_process_0_local": ("succeeded", 0, 1, "local"),
        "register_local_0_0": ("succeeded", 0, 1, "local"),
    }
    assert s.dagman_exit == 0 and s.state == "Success"
    p = s.progress
    assert p is not None
    assert (p.done, p.pre, p.queued, p.post, p.ready, p.unready, p.failed, p.futile, p.total) == (
        5, 0, 0, 0, 0, 0, 0, 0, 5)
    assert s.workflow_states == [("WORKFLOW_STARTED", None), ("WORKFLOW_TERMINATED", 0)]
    assert [(i.job, i.try_, i.exit_code, i.site) for i in s.instances if i.job == "ls_ID0000001"] == [
        ("ls_ID0000001", 1, 0, "condorpool")]
    ks = s.kickstart["ls_ID0000001"]
    assert [(r.exit_code, r.duration, r.transformation, r.derivation) for r in ks] == [
        (0, 0.099, "ls", "ID0000001")]
    st = s.status()
    assert st["dags"]["root"]["state"] == "Success"
    assert st["totals"]["succeeded"] == 5 and st["totals"]["percent_done"] == 100.0


def test_failure_sample():
    s = read_submit_dir(SAMPLES / "process_wf_failure")
    ls = s.jobs["ls_ID0000001"]
    # jobstate.log: two tries (seq 2 and 3), each JOB_FAILURE 2 then POST_SCRIPT_FAILURE 1
    assert (ls.state, ls.exit_code, ls.tries, ls.site) == ("failed", 2, 2, "condorpool")
    assert s.jobs["create_dir_process_0_local"].state == "succeeded"
    for name in JOBS[2:]:
        assert s.jobs[name].state == "unready" and s.jobs[name].tries == 0
    assert s.dagman_exit == 1 and s.state == "Failure"
    p = s.progress
    assert p is not None
    assert (p.done, p.failed, p.futile, p.unready, p.total, p.dag_status, p.exit_status) == (
        1, 1, 3, 0, 5, 2, 1)
    # stampede.db: two instances of ls; job_instance.exitcode is the post script's raw status 256 -> 1
    ls_inst = [i for i in s.instances if i.job == "ls_ID0000001"]
    assert [(i.try_, i.sched_id, i.raw_exitcode, i.exit_code) for i in ls_inst] == [
        (1, "9.0", 256, 1), (2, "10.0", 256, 1)]
    assert "invalid option -- 'z'" in ls_inst[-1].stdout_text
    assert ls_inst[-1].states[-1] == "POST_SCRIPT_FAILED"
    assert s.workflow_states == [("WORKFLOW_STARTED", None), ("WORKFLOW_TERMINATED", 1)]
    # kickstart records: the user task's real exit code (2) and stderr, one file per try
    ks = s.kickstart["ls_ID0000001"]
    assert [r.exit_code for r in ks] == [2, 2]
    assert [r.path.name for r in ks] == ["ls_ID0000001.out.000", "ls_ID0000001.out.001"]
    assert ks[-1].stderr.startswith("/bin/ls: invalid option -- 'z'")
    st = s.status()
    # the same numbers pegasus-status shows (futile nodes are in no column)
    assert st["dags"]["root"]["state"] == "Failure"
    assert {k: st["totals"][k] for k in ("succeeded", "failed", "unready", "total", "percent_done")} == {
        "succeeded": 1, "failed": 1, "unready": 0, "total": 5, "percent_done": 20.0}


@pytest.mark.parametrize("name", ["process_wf_success", "process_wf_failure"])
def test_status_matches_pegasus_client(name):
    """Our status dict equals what Pegasus.client.status computes from the same dagman.out."""
    from Pegasus.client.status import Status

    path = str(SAMPLES / name)
    ref = Status()
    ref.get_braindump(path)
    expected = ref.get_progress(path)
    ours = read_submit_dir(path).status()
    assert ours["totals"] == expected["totals"]
    assert ours["dags"]["root"] == expected["dags"]["root"]


def test_stampede_opened_read_only(tmp_path):
    copy = tmp_path / "wf"
    shutil.copytree(SAMPLES / "process_wf_success", copy)
    for f in copy.rglob("*"):
        f.chmod(0o444 if f.is_file() else 0o555)
    try:
        s = read_submit_dir(copy)
        assert len(s.instances) == 5
        assert not list(copy.glob("*.db-journal")) and not list(copy.glob("*.db-wal"))
    finally:
        for f in [copy, *copy.rglob("*")]:
            f.chmod(0o755 if f.is_dir() else 0o644)


def test_running_progress(tmp_path):
    out = tmp_path / "x.dag.dagman.out"
    out.write_text("03/03/23 23:11:14 Of 4 nodes total:\n"
                   "03/03/23 23:11:14  Done     Pre   Queued    Post   Ready   Un-Ready   Failed\n"
                   "03/03/23 23:11:14   ===     ===      ===     ===     ===        ===      ===\n"
                   "03/03/23 23:11:14     1       0        1       0       1          1        0\n")
    p = read_progress(out)
    assert p is not None
    assert (p.done, p.queued, p.ready, p.unready, p.futile, p.total, p.exit_status) == (1, 1, 1, 1, 0, 4, None)


def test_not_a_submit_dir(tmp_path):
    with pytest.raises(RunError, match="braindump"):
        read_submit_dir(tmp_path)


@pytest.mark.parametrize(("raw", "code"), [(0, 0), (256, 1), (512, 2), (9, -9), (None, None)])
def test_decode_exitcode(raw, code):
    assert decode_exitcode(raw) == code
