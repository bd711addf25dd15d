from __future__ import annotations

import json
import sys

import pytest
from Pegasus.api import Job

from mlwf_nb.backends import available_backends, get_backend, register_backend
from mlwf_nb.backends.local import LocalBackend, local_status, read_plan
from mlwf_nb.errors import BackendError, WorkflowError
from mlwf_nb.rundir.events import read_events
from mlwf_nb.rundir.jobstate import parse_jobstate, parse_line

EMIT = (f"{sys.executable} -c \"from mlwf_nb.rundir.events import emit; "
        "[emit('log', level='info', message=f'm{i}') for i in range(3)]\"")
TIMES = 'echo "$(date +%s.%N) start" > work/t/$MLWF_JOB; sleep 0.4; echo "$(date +%s.%N) end" >> work/t/$MLWF_JOB'
# A middle job ends only once two middle jobs have started (or after 30 s): two at once is then a fact of
# the executor, not of how fast the machine spawned the second while the first slept.
PAIRED = ('echo "$(date +%s.%N) start" > work/t/$MLWF_JOB; touch work/t/started.$MLWF_JOB; i=0; '
          'while [ "$(ls work/t | grep -c ^started)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; '
          'echo "$(date +%s.%N) end" >> work/t/$MLWF_JOB')


def _times(run, job_id):
    lines = (run / "work" / "t" / job_id).read_text().split("\n")
    return float(lines[0].split()[0]), float(lines[1].split()[0])


def test_registry_lists_and_loads():
    assert {"local", "pegasus"} <= set(available_backends())
    b = get_backend("local")
    assert isinstance(b, LocalBackend) and b.name == "local"
    with pytest.raises(BackendError, match=r"available backends: .*local.*pegasus"):
        get_backend("nope")
    register_backend("local2", "mlwf_nb.backends.local:LocalBackend")
    assert isinstance(get_backend("local2"), LocalBackend)
    register_backend("broken", "mlwf_nb.backends.no_such_module:X")
    with pytest.raises(BackendError, match="no_such_module"):
        get_backend("broken")
    with pytest.raises(BackendError, match=r"package\.module:attr"):
        register_backend("bad", "no-colon")


def test_dependency_order_and_parallelism_bound(builder):
    b = builder()
    first = b.sh("prep", f"mkdir -p work/t; {TIMES}", _id="p", outputs=["work/p.txt"])
    mids = [b.sh("mid", PAIRED, _id=f"m{i}", inputs=["work/p.txt"], outputs=[f"work/m{i}.txt"])
            for i in range(4)]
    b.sh("join", TIMES, _id="j", inputs=[f"work/m{i}.txt" for i in range(4)])
    assert first and mids
    run = b.write()
    st = LocalBackend().submit(run, jobs=2, wait=True)
    assert st["mlwf"]["state"] == "Success", st["mlwf"]
    assert st["dags"]["root"]["state"] == "Success" and st["totals"]["succeeded"] == 6
    p = _times(run, "p")
    m = [_times(run, f"m{i}") for i in range(4)]
    j = _times(run, "j")
    assert all(s >= p[1] for s, _ in m)
    assert j[0] >= max(e for _, e in m)
    # at most 2 at once, and the bound was reached
    points = sorted([(s, 1) for s, _ in m] + [(e, -1) for _, e in m], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, d in points:
        level += d
        peak = max(peak, level)
    assert peak == 2


def test_jobstate_lines_follow_pegasus_layout(builder):
    b = builder()
    b.sh("a", "true", outputs=["work/a"])
    b.sh("b", "true", inputs=["work/a"])
    run = b.write()
    LocalBackend().submit(run, wait=True)
    lines = (run / "jobstate.log").read_text().splitlines()
    assert lines[0].split()[1:] == ["INTERNAL", "***", "DAGMAN_STARTED", "1.0", "***"]
    assert lines[-1].split()[1:] == ["INTERNAL", "***", "DAGMAN_FINISHED", "0", "***"]
    sample = ["1677911044", "ls_ID0000001", "SUBMIT", "3.0", "condorpool", "-", "2"]
    body = [line.split() for line in lines[1:-1]]
    assert all(len(f) == len(sample) and f[5] == "-" and f[4] == "local" for f in body)
    assert [f[2] for f in body if f[1] == "a_ID0000001"] == [
        "SUBMIT", "EXECUTE", "JOB_TERMINATED", "JOB_SUCCESS", "POST_SCRIPT_STARTED",
        "POST_SCRIPT_TERMINATED", "POST_SCRIPT_SUCCESS"]
    recs = [parse_line(x) for x in lines]
    ids = [r.condor_id for r in recs if r.state == "SUBMIT"]
    assert ids == ["2.0", "3.0"]
    assert [r.seq for r in recs if r.state == "SUBMIT"] == [1, 2]
    assert parse_jobstate(run / "jobstate.log") == recs


def test_failing_job_with_retries(builder):
    b = builder()
    b.sh("bad", 'echo "try $MLWF_TRY"; echo "boom on try $MLWF_TRY" >&2; exit 3', retry=2)
    b.sh("after", "true", inputs=["work/x"])
    b.sh("make", "exit 0", outputs=["work/x"])
    run = b.write()
    st = LocalBackend().submit(run, wait=True)
    job = st["mlwf"]["jobs"]["bad_ID0000001"]
    assert st["mlwf"]["state"] == "Failure" and st["dags"]["root"]["state"] == "Failure"
    assert (job["state"], job["exit_code"], job["tries"], job["step"]) == ("failed", 3, 3, "bad")
    assert "boom on try 2" in job["stderr_tail"]
    assert [(run / "jobs" / "bad_ID0000001" / f"stdout.{i:03d}").read_text() for i in range(3)] == [
        "try 0\n", "try 1\n", "try 2\n"]
    assert st["mlwf"]["failed_jobs"] == ["bad_ID0000001"]
    assert st["mlwf"]["jobs"]["after_ID0000002"]["state"] == "succeeded"  # independent jobs still run
    fails = [r for r in parse_jobstate(run / "jobstate.log") if r.state == "JOB_FAILURE"]
    assert [r.exit_code for r in fails] == [3, 3, 3]


def test_retry_from_properties(builder):
    b = builder()
    b.props["dagman.retry"] = "1"
    b.sh("bad", "exit 4")
    run = b.write()
    st = LocalBackend().submit(run, wait=True)
    assert st["mlwf"]["jobs"]["bad_ID0000001"]["tries"] == 2


def test_env_and_profiles_reach_the_job(builder):
    b = builder()
    b.transformation("show", FROM_TR="tr")
    b.sh("show", 'echo "$MLWF_JOB|$MLWF_TRY|$MLWF_RUN_DIR|$FROM_TR|$FROM_JOB|$MLWF_EVENTS|$(pwd)" > out.txt',
         env={"FROM_JOB": "job"})
    run = b.write()
    LocalBackend().submit(run, wait=True)
    fields = (run / "out.txt").read_text().strip().split("|")
    real = str(run.resolve())
    assert fields == ["ID0000001", "0", real, "tr", "job", f"{real}/jobs/show_ID0000001/events.jsonl", real]


def test_events_relayed_with_contiguous_seq(builder):
    b = builder()
    b.sh("emit", EMIT, outputs=["work/e"])
    b.sh("emit", EMIT, inputs=["work/e"])
    run = b.write()
    LocalBackend().submit(run, wait=True)
    events = list(read_events(run / "events.jsonl"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run_started" and events[-1] == {**events[-1], "type": "run_finished",
                                                                  "state": "Success"}
    logs = [e for e in events if e["type"] == "log"]
    assert [(e["job"], e["message"]) for e in logs] == [
        ("ID0000001", "m0"), ("ID0000001", "m1"), ("ID0000001", "m2"),
        ("ID0000002", "m0"), ("ID0000002", "m1"), ("ID0000002", "m2")]
    states = [(e["name"], e["state"]) for e in events if e["type"] == "job_state"]
    assert states[:3] == [("emit_ID0000001", "queued"), ("emit_ID0000001", "running"),
                          ("emit_ID0000001", "succeeded")]
    # the job's own events come before its final state
    idx = {(e["type"], e.get("job"), e.get("state"), e.get("message")): i for i, e in enumerate(events)}
    assert idx[("log", "ID0000001", None, "m2")] < idx[("job_state", "ID0000001", "succeeded", None)]


def test_output_dirs_created_and_status_before_submit(builder):
    b = builder()
    b.sh("w", "echo hi > outputs/deep/er/file.txt", outputs=["outputs/deep/er/file.txt"])
    run = b.write()
    st = local_status(run)
    assert st["mlwf"]["state"] == "Planned" and st["totals"]["ready"] == 1 and st["totals"]["total"] == 1
    LocalBackend().submit(run, wait=True)
    assert (run / "outputs/deep/er/file.txt").read_text() == "hi\n"
    with pytest.raises(BackendError, match="already submitted"):
        LocalBackend().submit(run)


def test_missing_transformation_and_cycle(builder, tmp_path):
    b = builder()
    b.sh("a", "true", outputs=["x"], inputs=["y"])
    b.sh("b", "true", outputs=["y"], inputs=["x"])
    run = b.write()
    with pytest.raises(WorkflowError, match="cycle"):
        read_plan(run)
    wf = (run / "workflow.yml").read_text()
    (run / "transformations.yml").write_text("pegasus: '5.0'\ntransformations: []\n")
    assert "name: a" in wf
    with pytest.raises(WorkflowError, match="transformation 'a'"):
        read_plan(run)


def test_status_job_list_from_workflow(builder):
    b = builder()
    b.sh("a", "true")
    run = b.write()
    st = local_status(run)
    assert json.loads(json.dumps(st))["mlwf"]["jobs"]["a_ID0000001"]["state"] == "unready"


def test_submit_reports_plan_errors_in_process(builder):
    b = builder()
    b.sh("a", "true")
    run = b.write()
    (run / "transformations.yml").write_text("pegasus: '5.0'\ntransformations: []\n")
    with pytest.raises(WorkflowError, match="not in transformations"):
        LocalBackend().submit(run)
    assert not (run / "executor.pid").exists()


@pytest.mark.parametrize("lfn", ["../escape.txt", "/etc/passwd", "work/../../x"])
def test_files_outside_the_run_directory_are_refused(tmp_path, lfn):
    from Pegasus.api import File, Job, Transformation, TransformationCatalog, Workflow

    from mlwf_nb.backends.local import read_plan
    from mlwf_nb.errors import WorkflowError

    run = tmp_path / "run"
    run.mkdir()
    tc = TransformationCatalog().add_transformations(Transformation("sh", site="local", pfn="/bin/sh",
                                                                    is_stageable=False))
    tc.write(str(run / "transformations.yml"))
    wf = Workflow("w").add_jobs(Job("sh").add_args("-c", "true").add_outputs(File(lfn)))
    wf.write(str(run / "workflow.yml"))
    with pytest.raises(WorkflowError, match="outside the run directory"):
        read_plan(run, with_stage_in=False)


def test_job_process_starts_clean(builder):
    """posix_spawn children: default SIGPIPE (Python ignores it in the executor), a new session,
    only fds 0-2 open, stdin from /dev/null."""
    b = builder()
    b.sh("probe", "grep SigIgn /proc/self/status > probe.txt; ls /proc/self/fd | sort -n | tr '\\n' ' ' >> probe.txt;"
                  " echo >> probe.txt; ps -o sid= -p $$ >> probe.txt; echo $$ >> probe.txt; cat > stdin.txt")
    run = b.write()
    st = LocalBackend().submit(run, wait=True)
    assert st["mlwf"]["state"] == "Success", st["mlwf"]
    sigign, fds, sid, pid = (run / "probe.txt").read_text().splitlines()
    assert not int(sigign.split()[1], 16) & (1 << (13 - 1)), f"SIGPIPE ignored in the job: {sigign}"
    assert fds.split()[:3] == ["0", "1", "2"] and len(fds.split()) <= 4  # 0-2 and ls's own directory fd
    assert sid.strip() == pid.strip()  # session leader: cancel kills its process group
    assert (run / "stdin.txt").read_bytes() == b""


def test_unknown_program_fails_the_job_with_a_reason(builder):
    b = builder()
    b.transformation("ghost", pfn="no-such-program-mlwf")
    b.wf.add_jobs(Job(b.tr["ghost"], _id="g"))
    b.sh("fine", "true")
    run = b.write()
    st = LocalBackend().submit(run, wait=True)
    job = st["mlwf"]["jobs"]["ghost_g"]
    assert (job["state"], job["exit_code"]) == ("failed", 127)
    assert "cannot start job ghost_g (no-such-program-mlwf)" in (run / "jobs" / "ghost_g" / "stderr.000").read_text()
    assert [j["state"] for n, j in st["mlwf"]["jobs"].items() if n.startswith("fine_")] == ["succeeded"]


def test_program_found_on_the_jobs_path(builder, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mlwf-test-tool"
    tool.write_text("#!/bin/sh\necho found > found.txt\n")
    tool.chmod(0o755)
    b = builder()
    b.transformation("tool", pfn="mlwf-test-tool", PATH=f"{bindir}:/usr/bin:/bin")
    b.wf.add_jobs(Job(b.tr["tool"], _id="t"))
    run = b.write()
    st = LocalBackend().submit(run, wait=True)
    assert st["mlwf"]["state"] == "Success", st["mlwf"]
    assert (run / "found.txt").read_text() == "found\n"


def test_executor_without_pidfds_and_outside_its_run_directory(builder, monkeypatch):
    from mlwf_nb.backends import _executor

    b = builder()
    b.sh("a", "echo a > a.txt", outputs=["work/a"])
    b.sh("b", "exit 5", retry=1)
    run = b.write()
    with pytest.raises(BackendError, match="must run in its run directory"):
        _executor.Executor(run, jobs=2).execute()
    monkeypatch.setattr(_executor, "_pidfd", lambda pid: None)  # a kernel or OS without pidfd_open
    monkeypatch.chdir(run)
    assert _executor.Executor(run, jobs=2).execute() == 1
    st = local_status(run)
    assert st["mlwf"]["jobs"]["a_ID0000001"]["state"] == "succeeded"
    assert (st["mlwf"]["jobs"]["b_ID0000002"]["exit_code"], st["mlwf"]["jobs"]["b_ID0000002"]["tries"]) == (5, 2)
