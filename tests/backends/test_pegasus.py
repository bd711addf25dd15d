"""pegasus backend: tool checks, job-name mapping, command lines, status and the event relay.

pegasus-plan, pegasus-run, pegasus-remove and HTCondor's condor_submit_dag cannot be installed
on this machine (the planner is on no reachable registry, Debian has no HTCondor). The tests
that submit/cancel/resume therefore put MOCK scripts of those tools on PATH: they record their
argv and, for pegasus-plan, copy a real Pegasus submit directory from ../shared/pegasus/samples
and print the planner's --json answer. What they check is the exact command line we run and how
we read the real submit directory afterwards, not Pegasus itself.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlwf_nb.backends import get_backend
from mlwf_nb.backends.pegasus import (
    PegasusBackend,
    PegasusRelay,
    check_pegasus,
    map_job_name,
    planner_command,
    require_pegasus,
)
from mlwf_nb.errors import PegasusNotFoundError
from mlwf_nb.rundir.events import read_events

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "pegasus" / "samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Pegasus samples not found at {SAMPLES}")


@pytest.mark.parametrize(("name", "expected"), [
    ("train_ID0000007", ("train", "ID0000007")),
    ("fit_stretch_ID0000003", ("fit_stretch", "ID0000003")),
    ("hpo_propose_ID0000010", ("hpo_propose", "ID0000010")),
    ("ls_ID0000001", ("ls", "ID0000001")),
    ("stage_in_local_local_0_0", ("stage_in_local", "local_0_0")),
    ("stage_in_remote_condorpool_1_0", ("stage_in_remote", "condorpool_1_0")),
    ("stage_out_local_local_0_0", ("stage_out_local", "local_0_0")),
    ("create_dir_process_0_local", ("create_dir", "process_0_local")),
    ("cleanup_process_0_local", ("cleanup", "process_0_local")),
    ("register_local_0_0", ("register", "local_0_0")),
    ("weird", ("weird", "")),
])
def test_map_job_name(name, expected):
    assert map_job_name(name) == expected


def test_registry_maps_pegasus():
    assert isinstance(get_backend("pegasus"), PegasusBackend)


def test_missing_pegasus_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    info = check_pegasus()
    assert info["missing"] == ["pegasus-plan", "condor_submit_dag"] and not info["ok"]
    with pytest.raises(PegasusNotFoundError) as err:
        require_pegasus()
    msg = str(err.value)
    for word in ("pegasus-plan", "condor_submit_dag", "tarball", "HTCondor", "pip", "local backend"):
        assert word in msg
    with pytest.raises(PegasusNotFoundError, match="pegasus-plan"):
        PegasusBackend().submit(tmp_path)


# --- mocks of tools that cannot exist here -------------------------------------------------------
MOCK = """#!{py}
# MOCK of {tool}: records argv; the real tool is not installable on this machine.
import json, os, shutil, sys
log = os.environ["MOCK_LOG"]
with open(log, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
if os.path.basename(sys.argv[0]) == "pegasus-plan":
    import time
    time.sleep(float(os.environ.get("MOCK_SLEEP", "0")))
    gate = os.environ.get("MOCK_GATE")  # plan only once the test removed this file (a barrier, not a timing)
    while gate and os.path.exists(gate):
        time.sleep(0.05)
    if os.environ.get("MOCK_OUTPUT"):  # what the real planner printed when it refused a workflow
        sys.stdout.write(open(os.environ["MOCK_OUTPUT"]).read())
        sys.exit(1)
    args = sys.argv[1:]
    d = args[args.index("--dir") + 1]
    sub = os.path.join(d, args[args.index("--relative-dir") + 1])
    shutil.copytree(os.environ["MOCK_SAMPLE"], sub)
    for root, dirs, files in os.walk(sub):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    print(json.dumps({{"submit_dir": sub, "message": "planned"}}))
sys.exit(int(os.environ.get("MOCK_RC", "0")))
"""


@pytest.fixture
def mock_tools(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("pegasus-plan", "pegasus-run", "pegasus-remove", "condor_submit_dag"):
        p = bindir / tool
        p.write_text(MOCK.format(py=sys.executable, tool=tool))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("MOCK_LOG", str(log))

    def calls():
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return calls


def _run_dir(tmp_path: Path, site: str = "condorpool") -> Path:
    from Pegasus.api import File, Job, ReplicaCatalog, Workflow

    from mlwf_nb import catalogs
    from mlwf_nb.spec import RunSpec

    run = tmp_path / "run"
    run.mkdir()
    spec = RunSpec.from_preset("tiny").with_overrides({"execution.backend": "pegasus", "execution.site": site})
    spec.save(run / "spec.yaml")
    wf = Workflow("landcover")
    job = Job("split", _id="ID0000001").add_args("step", "split")
    job.add_outputs(File("work/split.json"))
    wf.add_jobs(job)
    wf.write(str(run / "workflow.yml"))
    catalogs.build_site_catalog(spec.execution, run).write(str(run / "sites.yml"))
    catalogs.build_transformation_catalog(spec.execution, ["split"], "/usr/bin/mlwf").write(
        str(run / "transformations.yml"))
    ReplicaCatalog().write(str(run / "replicas.yml"))
    catalogs.build_properties(spec.execution, run).write(str(run / "pegasus.properties"))
    return run


def test_planner_command(tmp_path):
    run = _run_dir(tmp_path)
    cmd = planner_command(run, jobs=4)
    r = str(run.resolve())
    assert cmd == ["pegasus-plan", "-Ddagman.maxjobs=4", "--conf", f"{r}/pegasus.properties",
                   "--sites", "condorpool", "--output-sites", "local", "--dir", f"{r}/submit",
                   "--relative-dir", "pegasus", "--cleanup", "none", "--force", "--submit",
                   f"{r}/workflow.yml", "--json"]


@needs_samples
@pytest.mark.parametrize(("sample", "state"), [("process_wf_success", "Success"),
                                               ("process_wf_failure", "Failure")])
def test_submit_status_cancel_resume_with_mocks(tmp_path, monkeypatch, mock_tools, sample, state):
    """MOCK pegasus-plan/-remove/-run on PATH (see module docstring)."""
    monkeypatch.setenv("MOCK_SAMPLE", str(SAMPLES / sample))
    run = _run_dir(tmp_path)
    be = PegasusBackend(relay_interval=0.05)
    be.submit(run, jobs=2, wait=True)
    plan_call = mock_tools()[0]
    assert plan_call[0] == "pegasus-plan" and "--submit" in plan_call and plan_call[-1] == "--json"
    assert plan_call[plan_call.index("--sites") + 1] == "condorpool"
    recorded = json.loads((run / "pegasus.json").read_text())
    sub = str(run.resolve() / "submit" / "pegasus")
    assert recorded["submit_dir"] == sub and recorded["state"] == "Submitted"

    st = be.status(run)
    assert st["dags"]["root"]["state"] == state and st["mlwf"]["state"] == state
    ls = st["mlwf"]["jobs"]["ls_ID0000001"]
    assert (ls["step"], ls["id"], ls["site"]) == ("ls", "ID0000001", "condorpool")
    if state == "Failure":
        assert (ls["state"], ls["exit_code"], ls["tries"]) == ("failed", 2, 2)
        assert "invalid option" in ls["stderr_tail"]
        finding = st["mlwf"]["analyzer"]["failed"][0]
        assert (finding["job"], finding["exit_code"], finding["kickstart_exit_code"]) == ("ls_ID0000001", 2, 2)
    else:
        assert st["mlwf"]["failed_jobs"] == [] and "analyzer" not in st["mlwf"]

    events = list(read_events(run / "events.jsonl"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    assert events[-1]["state"] == state
    ls_states = [(e["state"], e["try"]) for e in events if e.get("name") == "ls_ID0000001"]
    if state == "Failure":
        assert ls_states == [("queued", 1), ("running", 1), ("post", 1), ("failed", 1),
                             ("queued", 2), ("running", 2), ("post", 2), ("failed", 2)]
        assert [e["exit_code"] for e in events if e.get("name") == "ls_ID0000001"][-1] == 2
    else:
        assert ls_states == [("queued", 1), ("running", 1), ("post", 1), ("succeeded", 1)]

    be.cancel(run)
    be.resume(run)
    assert [c[0] for c in mock_tools()[1:]] == ["pegasus-remove", "pegasus-run"]
    assert mock_tools()[1][1:] == [sub] and mock_tools()[2][1:] == [sub]


_RESCUE = """{t} INTERNAL *** DAGMAN_STARTED 12.0 ***
{t} ls_ID0000001 SUBMIT 13.0 condorpool - 4
{t} ls_ID0000001 EXECUTE 13.0 condorpool - 4
{t} ls_ID0000001 JOB_TERMINATED 13.0 condorpool - 4
{t} ls_ID0000001 JOB_SUCCESS 0 condorpool - 4
{t} ls_ID0000001 POST_SCRIPT_STARTED 13.0 condorpool - 4
{t} ls_ID0000001 POST_SCRIPT_TERMINATED 13.0 condorpool - 4
{t} ls_ID0000001 POST_SCRIPT_SUCCESS 0 condorpool - 4
{t} INTERNAL *** DAGMAN_FINISHED 0 ***
"""


@needs_samples
def test_resume_is_followed_to_the_rescue_dags_end(tmp_path, monkeypatch, mock_tools):
    """MOCK pegasus-plan/-run (see module docstring); DAGMan's rescue run is MOCKED by appending its
    records to the real sample's jobstate.log, as DAGMan would."""
    from mlwf_nb.runs import Run

    monkeypatch.setenv("MOCK_SAMPLE", str(SAMPLES / "process_wf_failure"))
    run_dir = _run_dir(tmp_path)
    be = PegasusBackend(relay_interval=0.05)
    be.submit(run_dir, jobs=2, wait=True)
    run = Run(run_dir)
    run._backend = be
    assert run.state == "Failure"
    run.resume()
    with pytest.raises(TimeoutError, match="still Failure"):  # DAGMan has not restarted: not the run's end
        run.wait(timeout=0.5)
    with open(be.submit_dir(run_dir) / "jobstate.log", "a") as fh:
        fh.write(_RESCUE.format(t=int(time.time())))
    assert run.wait(timeout=30) == "Success"
    events = list(read_events(run_dir / "events.jsonl"))
    assert [e["type"] for e in events].count("run_started") == 2
    assert [e["state"] for e in events if e["type"] == "run_finished"] == ["Failure", "Success"]


def test_planned_but_htcondor_refused(tmp_path, monkeypatch, mock_tools):
    """MOCK pegasus-plan that plans (a real submit directory) and exits 1 as when condor_submit fails."""
    monkeypatch.setenv("MOCK_RC", "1")
    monkeypatch.setenv("MOCK_SAMPLE", str(SAMPLES / "process_wf_success"))
    run = _run_dir(tmp_path)
    st = PegasusBackend().submit(run, wait=True)
    assert st["mlwf"]["state"] == "PlanFailed" and st["dags"]["root"]["state"] == "Failure"
    assert st["mlwf"]["plan"]["planned"] is True and "HTCondor" in st["mlwf"]["message"]
    assert "mlwf resume" in st["mlwf"]["message"] and (run / "pegasus-plan.log").is_file()
    monkeypatch.setenv("MOCK_RC", "0")  # HTCondor is up now: pegasus-run submits the planned workflow
    PegasusBackend().resume(run)
    assert json.loads((run / "pegasus.json").read_text())["state"] == "Submitted"
    assert mock_tools()[-1][0] == "pegasus-run"


# what the real pegasus-plan (6.0.0-dev, built from pegasus-isi/pegasus) printed for the old land-cover naming
REAL_REFUSAL = """2026.12.03 15:26:10.876 UTC:   Time taken to execute is 13.2 seconds
2026.12.03 15:26:10.877 UTC: [FATAL ERROR]
 [1] java.lang.RuntimeException: Unable to generate code at \
edu.isi.pegasus.planner.client.CPlanner.executeCommand(CPlanner.java:652)
 [2] java.lang.RuntimeException: Conflict for job integrity_ID0000001 detected. File dataset/labels/GF-2_002.tif \
and dataset/images/GF-2_002.tif conflict due to same basename, which is not allowed in CondorIO transfer mode. \
at edu.isi.pegasus.planner.transfer.sls.Condor.complainForWAWConflict(Condor.java:619)
""".replace("\\\n", "")


def test_planner_errors_are_the_planners_own_lines():
    from mlwf_nb.backends.pegasus_plan import planner_errors

    lines = planner_errors(REAL_REFUSAL)
    assert lines[0] == "[FATAL ERROR]" or lines[0].startswith("[1]")
    assert any("conflict due to same basename" in x for x in lines)
    assert not any("Time taken" in x or x.startswith("2026.") for x in lines)


def test_plan_failed_is_final_everywhere_with_the_planners_words(tmp_path, monkeypatch, mock_tools, capsys):
    """PlanFailed used to be no final state: --wait and watch never returned, status exited 0."""
    from mlwf_nb.cli import main
    from mlwf_nb.runs import Run

    (tmp_path / "refusal.txt").write_text(REAL_REFUSAL)
    monkeypatch.setenv("MOCK_OUTPUT", str(tmp_path / "refusal.txt"))
    run = _run_dir(tmp_path)
    (run / "run.json").write_text(json.dumps({"backend": "pegasus", "name": "landcover"}))
    PegasusBackend().submit(run, wait=True)
    assert Run(run).wait(timeout=60) == "PlanFailed"
    assert main(["watch", str(run)]) == 1
    assert main(["status", str(run)]) == 1
    out = capsys.readouterr().out
    assert "PlanFailed" in out and "conflict due to same basename" in out
    events = list(read_events(run / "events.jsonl"))
    assert events[-1]["type"] == "run_finished" and events[-1]["state"] == "PlanFailed"
    assert any(e["type"] == "log" and "CondorIO" in e["message"] for e in events)


def test_planning_outlives_the_caller(tmp_path, monkeypatch, mock_tools):
    """`mlwf run --backend pegasus` without --wait exits at once; the planning goes on without it."""
    monkeypatch.setenv("MOCK_SAMPLE", str(SAMPLES / "process_wf_success"))
    gate = tmp_path / "gate"
    gate.write_text("pegasus-plan waits while this file exists")
    monkeypatch.setenv("MOCK_GATE", str(gate))
    run = _run_dir(tmp_path)
    code = f"from mlwf_nb.backends.pegasus import PegasusBackend; PegasusBackend().submit({str(run)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)  # returns while pegasus-plan waits
    assert json.loads((run / "pegasus.json").read_text())["state"] == "Planning"
    gate.unlink()  # the caller is gone: planning goes on
    deadline = time.monotonic() + 120  # a guard against hangs
    while json.loads((run / "pegasus.json").read_text())["state"] == "Planning" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads((run / "pegasus.json").read_text())["state"] == "Submitted"
    deadline = time.monotonic() + 120
    while not (run / "events.jsonl").exists() or "run_finished" not in (run / "events.jsonl").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "pegasus-plan" in (run / "pegasus-plan.log").read_text()  # the planner's log is written


def test_a_dead_planner_is_plan_failed(tmp_path):
    from mlwf_nb.backends import pegasus_plan

    run = _run_dir(tmp_path)
    pegasus_plan.record(run, state="Planning", cmd=["pegasus-plan"], planner_pid=2 ** 22 + 7)
    assert PegasusBackend().state(run) == "PlanFailed"


@needs_samples
def test_relay_never_duplicates(tmp_path):
    """The relay follows jobstate.log and job event files from saved offsets."""
    run = tmp_path / "run"
    sub = tmp_path / "sub"
    (run / "jobs" / "ID0000001").mkdir(parents=True)
    sub.mkdir()
    lines = (SAMPLES / "process_wf_success" / "jobstate.log").read_text().splitlines(keepends=True)
    (sub / "jobstate.log").write_text("".join(lines[:12]))
    job_events = run / "jobs" / "ID0000001" / "events.jsonl"
    job_events.write_text(json.dumps({"v": 1, "ts": 1.0, "type": "epoch", "epoch": 1,
                                      "metrics": {"loss": 0.5}}) + "\n")
    relay = PegasusRelay(run, sub)
    n1 = relay.poll()
    assert relay.poll() == 0
    relay2 = PegasusRelay(run, sub)  # a restarted kernel: offsets come from pegasus-relay.json
    assert relay2.poll() == 0
    with open(sub / "jobstate.log", "a") as fh:
        fh.write("".join(lines[12:]))
    with open(job_events, "a") as fh:
        fh.write(json.dumps({"v": 1, "ts": 2.0, "type": "epoch", "epoch": 2, "metrics": {}}) + "\n")
    n2 = relay2.poll()
    events = list(read_events(run / "events.jsonl"))
    assert len(events) == n1 + n2
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert [e["type"] for e in events].count("run_started") == 1
    assert events[-1] == {**events[-1], "type": "run_finished", "state": "Success"}
    keys = [(e.get("name"), e.get("state"), e.get("try")) for e in events if e["type"] == "job_state"]
    assert len(keys) == len(set(keys))


@needs_samples
def test_relay_thread_stops_when_finished(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    sub = tmp_path / "sub"
    shutil.copytree(SAMPLES / "process_wf_failure", sub)
    relay = PegasusRelay(run, sub, interval=0.01).start()
    deadline = time.monotonic() + 60  # a guard against hangs
    while not relay.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    relay.join(5)
    assert relay.finished
    last = list(read_events(run / "events.jsonl"))[-1]
    assert last["type"] == "run_finished" and last["state"] == "Failure"
    assert last["failed_jobs"] == ["ls_ID0000001"]


@pytest.mark.requires_pegasus
@pytest.mark.skipif(shutil.which("pegasus-plan") is None or shutil.which("condor_submit_dag") is None,
                    reason="needs the real pegasus-plan (and HTCondor, or its condor_submit_dag) on PATH")
@pytest.mark.parametrize("site", ["local", "condorpool"])
def test_real_plan_of_a_staged_run(tmp_path, monkeypatch, site):
    """The backend's own submit path with the real planner: it plans (and stops at HTCondor where there is none).

    A run directory written by the workflow builder, with its dataset registered in
    replicas.yml (the old fixture had no inputs, so it could not catch the replica-catalog bug).
    """
    from mlwf_nb.runs import Run
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.workflow import write_run_dir

    spec = RunSpec.from_preset("tiny").with_overrides(
        [f"dataset.path={tmp_path / 'data'}", "dataset.synthetic=true", "dataset.scenes=4", "dataset.height=64",
         "dataset.width=64",
         "execution.backend=pegasus", f"execution.site={site}"])
    run = write_run_dir(spec, tmp_path / "run")
    st = PegasusBackend().submit(run, wait=True)
    plan = json.loads((run / "pegasus.json").read_text())
    assert plan["state"] == "Submitted" or plan.get("planned"), (run / "pegasus-plan.log").read_text()[-3000:]
    dag = next(Path(plan["submit_dir"]).glob("*.dag")).read_text().splitlines()
    # what the retry decision rests on (docs/cluster.md): every job of ours gets RETRY <retries> and
    # pegasus-exitcode as its POST script (exit 0/1), so an UNLESS-EXIT 65 clause could never match
    ours = [line.split()[1] for line in dag if line.startswith("JOB ") and "_ID" in line.split()[1]]
    assert ours
    for job in ours:
        assert f"RETRY {job} {spec.execution.retries}" in dag
        post = [line for line in dag if line.startswith(f"SCRIPT POST {job} ")]
        assert len(post) == 1 and "pegasus-exitcode" in post[0] and "-r $RETURN" in post[0]
    if plan["state"] == "PlanFailed":  # no HTCondor here: the run is final, says why and how to go on
        assert Run(run).wait(timeout=60) == "PlanFailed" and "HTCondor" in st["mlwf"]["message"]
