"""Checkpoints, walltime, cancel, Lost and resume: real detached executors and signals."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from mlwf_nb.backends.local import LocalBackend, _read_pid, executor_alive
from mlwf_nb.errors import BackendError
from mlwf_nb.rundir.events import read_events
from mlwf_nb.rundir.jobstate import parse_jobstate

EMIT1 = f"{sys.executable} -c \"from mlwf_nb.rundir.events import emit; emit('log', level='info', message='once')\""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(pred, timeout=60.0):  # a guard against hangs: returns as soon as pred() holds
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_checkpoint_time_sends_sigterm_and_retry_resumes(builder):
    b = builder()
    script = ("if [ -f outputs/ck.txt ]; then echo resumed-from-$(cat outputs/ck.txt) > work/done.txt; exit 0; fi; "
              "trap 'echo $MLWF_TRY > outputs/ck.txt; exit 143' TERM; sleep 30 & wait $!")
    b.sh("train", script, checkpoints=["outputs/ck.txt"], outputs=["work/done.txt"],
         checkpoint_time=0.01, retry=1)
    run = b.write()
    st = LocalBackend().submit(run, wait=True)  # exit 143 below: SIGTERM cut the 30 s sleep short
    job = st["mlwf"]["jobs"]["train_ID0000001"]
    assert st["mlwf"]["state"] == "Success", job
    assert job["tries"] == 2
    assert (run / "work/done.txt").read_text() == "resumed-from-0\n"
    codes = [r.exit_code for r in parse_jobstate(run / "jobstate.log") if r.state.startswith("JOB_")
             and r.exit_code is not None]
    assert codes == [143, 0]


def test_maxwalltime_kills_the_process_group(builder):
    b = builder()
    b.sh("slow", "sleep 30 & echo $! > work/child.pid; wait", outputs=["work/child.pid"], maxwalltime=0.01)
    run = b.write()
    st = LocalBackend().submit(run, wait=True)  # exit -9 below: killed, not the 30 s sleep's end
    job = st["mlwf"]["jobs"]["slow_ID0000001"]
    assert (job["state"], job["exit_code"]) == ("failed", -9)
    child = int((run / "work/child.pid").read_text())
    assert _wait_for(lambda: not _alive(child), 5)  # the whole group died, not only the shell


def test_detached_submit_returns_immediately_then_cancel(builder):
    b = builder()
    b.sh("slow", "echo $$ > work/pid; sleep 30", outputs=["work/pid"])
    b.sh("never", "true", inputs=["work/pid"])
    run = b.write()
    backend = LocalBackend()
    st = backend.submit(run)
    # returned while its first job (sleep 30) runs: no wall-clock bound, which load could break
    assert (run / "executor.pid").exists() and executor_alive(run)
    assert st["mlwf"]["state"] == "Running"
    assert _wait_for(lambda: (run / "work/pid").exists() and (run / "work/pid").read_text().strip())
    job_pid = int((run / "work/pid").read_text())
    with pytest.raises(BackendError, match="still running"):
        backend.resume(run)
    backend.cancel(run)
    assert not executor_alive(run)
    assert _wait_for(lambda: not _alive(job_pid), 5)
    st = backend.status(run)
    assert st["mlwf"]["state"] == "Cancelled" and st["dags"]["root"]["state"] == "Failure"
    job = st["mlwf"]["jobs"]["slow_ID0000001"]
    assert (job["state"], job["exit_code"]) == ("failed", -9)
    assert st["mlwf"]["jobs"]["never_ID0000002"]["state"] == "unready"
    states = [r.state for r in parse_jobstate(run / "jobstate.log") if r.job == "slow_ID0000001"]
    assert states == ["SUBMIT", "EXECUTE", "JOB_ABORTED", "JOB_FAILURE"]
    events = list(read_events(run / "events.jsonl"))
    assert events[-1]["type"] == "run_finished" and events[-1]["state"] == "Cancelled"
    with pytest.raises(BackendError, match="nothing to cancel"):
        backend.cancel(run)


def test_lost_executor_then_resume(builder):
    b = builder()
    b.sh("first", EMIT1, outputs=["work/first"], _id="first")
    b.sh("hang", f"{EMIT1}; if [ -f work/again ]; then exit 0; fi; touch work/again; echo $$ > work/pid; sleep 30",
         inputs=["work/first"], _id="hang")
    run = b.write()
    backend = LocalBackend()
    backend.submit(run)
    assert _wait_for(lambda: (run / "work/pid").exists() and (run / "work/pid").read_text().strip())
    orphan = int((run / "work/pid").read_text())
    # the relay has picked up the hang job's first event (a wait on the fact, not a sleep that load can outrun)
    assert _wait_for(lambda: any(e["type"] == "log" and e.get("job") == "hang"
                                 for e in read_events(run / "events.jsonl")))
    os.kill(_read_pid(run), signal.SIGKILL)
    assert _wait_for(lambda: not executor_alive(run))
    assert backend.status(run, stale_after=3600)["mlwf"]["state"] == "Running"  # heartbeat still fresh
    st = backend.status(run, stale_after=0.0)
    assert st["mlwf"]["state"] == "Lost" and st["dags"]["root"]["state"] == "Failure"
    st = backend.resume(run, wait=True)
    assert st["mlwf"]["state"] == "Success", st["mlwf"]
    assert _wait_for(lambda: not _alive(orphan))  # the orphaned job was killed on resume
    assert st["mlwf"]["jobs"]["first_first"]["tries"] == 1  # not run again
    assert st["mlwf"]["jobs"]["hang_hang"]["tries"] == 2
    events = list(read_events(run / "events.jsonl"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    logs = [e["job"] for e in events if e["type"] == "log"]
    assert logs == ["first", "hang", "hang"]  # one per try, none duplicated
    recs = parse_jobstate(run / "jobstate.log")
    starts = [r.info for r in recs if r.state == "DAGMAN_STARTED"]
    assert len(starts) == 2 and float(starts[1]) > float(starts[0])
    submits = [r.seq for r in recs if r.state == "SUBMIT"]
    assert submits == sorted(submits) and len(set(submits)) == len(submits)


def test_resume_after_failure_skips_finished_jobs(builder):
    b = builder()
    b.sh("ok", f"echo x >> work/ok-runs; {EMIT1}", outputs=["work/ok-runs"], _id="ok")
    b.sh("flaky", f"{EMIT1}; test -f work/fixed || exit 5", inputs=["work/ok-runs"], _id="flaky")
    run = b.write()
    backend = LocalBackend()
    st = backend.submit(run, wait=True)
    assert st["mlwf"]["state"] == "Failure" and st["mlwf"]["failed_jobs"] == ["flaky_flaky"]
    n_before = len(list(read_events(run / "events.jsonl")))
    (run / "work/fixed").touch()
    st = backend.resume(run, wait=True)
    assert st["mlwf"]["state"] == "Success"
    assert (run / "work/ok-runs").read_text() == "x\n"
    events = list(read_events(run / "events.jsonl"))
    assert len(events) > n_before
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["job"] for e in events if e["type"] == "log"] == ["ok", "flaky", "flaky"]
    assert events[n_before]["type"] == "run_started" and events[n_before]["resumed"] is True
    job = st["mlwf"]["jobs"]["flaky_flaky"]
    assert (job["tries"], job["exit_code"]) == (2, 0)
    assert (run / "jobs/flaky_flaky/stderr.001").exists()  # try numbering continues across runs


def test_cancel_aborts_queued_jobs_that_never_started(builder):
    b = builder()
    for i in range(3):
        b.sh("slow", f"echo $$ > work/pid{i}; sleep 30", outputs=[f"work/pid{i}"], _id=f"s{i}")
    run = b.write()
    backend = LocalBackend()
    backend.submit(run, jobs=1)
    assert _wait_for(lambda: any((run / f"work/pid{i}").exists() for i in range(3)))
    backend.cancel(run)
    st = backend.status(run)
    assert st["mlwf"]["state"] == "Cancelled"
    by_job = {}
    for r in parse_jobstate(run / "jobstate.log"):
        by_job.setdefault(r.job, []).append(r.state)
    runs = [j for j, s in by_job.items() if "EXECUTE" in s]
    queued = [j for j, s in by_job.items() if j != "INTERNAL" and "EXECUTE" not in s]
    assert len(runs) == 1 and by_job[runs[0]] == ["SUBMIT", "EXECUTE", "JOB_ABORTED", "JOB_FAILURE"]
    assert len(queued) == 1 and by_job[queued[0]] == ["SUBMIT", "JOB_ABORTED", "JOB_FAILURE"]
    assert sorted(s["state"] for s in st["mlwf"]["jobs"].values()) == ["failed", "failed", "unready"]
    assert st["totals"]["failed"] == 2 and st["totals"]["ready"] == 1
