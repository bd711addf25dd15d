"""Several runs started at the same moment from different processes: all complete, apart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from mlwf_nb.rundir.events import read_events
from mlwf_nb.runs import Run

N_RUNS = 4
CHILD = """
import sys, time
from mlwf_nb.runs import default_run_dir
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import write_run_dir
from mlwf_nb.backends import get_backend
from tests.reliability import rel_steps
base, index, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
spec = RunSpec.from_preset("tiny").with_overrides(["name=same"])  # same name: default dirs must differ
time.sleep(max(0.0, start - time.time()))
run = write_run_dir(spec, default_run_dir(spec, base), graph=rel_steps.graph(spec, jobs=2, ticks=2, seconds=0.05))
get_backend("local").submit(run, jobs=2, wait=True)
print(run)
"""


def test_runs_started_together_stay_apart(tmp_path, repo_on_path):
    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "runs"), str(i), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo_on_path)
             for i in range(N_RUNS)]
    dirs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        dirs.append(Path(out.strip().splitlines()[-1]))
    assert len(set(dirs)) == N_RUNS and all(d.parent == (tmp_path / "runs").resolve() for d in dirs)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(d.name for d in dirs)
    for d in dirs:
        run = Run.attach(d)
        assert run.state == "Success", run.status()
        jobs = set(run.status()["mlwf"]["jobs"])
        events = list(read_events(d / "events.jsonl"))
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        for e in events:  # no crossed events: each names only this run's jobs
            if e["type"] == "job_state":
                assert e["name"] in jobs, (d, e)
            if "relay" in e:
                assert e["relay"].rsplit(":", 1)[0] in jobs, (d, e)
        assert json.loads((d / "outputs/total.json").read_text()) == {"total": 1, "name": "same"}


def test_three_concurrent_runs_show_only_known_states_and_progress_that_never_goes_back(tmp_path):
    """Three real local runs at once, each watched by a RunMonitor and by Run.status() polls."""
    from mlwf_nb.backends.local import LocalBackend
    from mlwf_nb.rundir.states import JOB_STATES
    from mlwf_nb.widgets import RunMonitor
    from tests.backends.conftest import RunBuilder

    runs, monitors, seen = [], [], {}
    for k in range(3):
        b = RunBuilder(tmp_path / f"run{k}")
        for i in range(12):
            b.sh("work", f"sleep 0.0{i % 5}; echo {i} > work/{i}", outputs=[f"work/{i}"])
        b.sh("join", "cat work/* > work/all", inputs=[f"work/{i}" for i in range(12)])
        run = Run.attach(b.write())
        seen[run.dir] = {"states": set(), "monitor": [], "status": []}

        def on_jobs(change, rec=seen[run.dir]):
            rec["states"].update(j["state"] for j in change["new"].values())
            rec["monitor"].append(change["owner"].run_state.percent_done)

        monitor = RunMonitor(run, autostart=False, poll_interval=0.02)
        monitor.observe(on_jobs, names=["jobs"])
        runs.append(run)
        monitors.append(monitor)
    for run, monitor in zip(runs, monitors, strict=True):
        LocalBackend().submit(run.dir, jobs=2)
        monitor.attach(run)
    deadline = time.monotonic() + 120
    while any(not m.finished for m in monitors) and time.monotonic() < deadline:
        for run in runs:
            st = run.status()
            seen[run.dir]["states"].update(j["state"] for j in st["mlwf"]["jobs"].values())
            seen[run.dir]["status"].append(st["totals"]["percent_done"])
        time.sleep(0.05)
    for run, monitor in zip(runs, monitors, strict=True):
        assert monitor.wait(timeout=60, show=False) == "Success"
        rec = seen[run.dir]
        assert rec["states"] <= set(JOB_STATES), rec["states"]
        for series in (rec["monitor"], rec["status"]):
            assert series == sorted(series), series
        assert rec["monitor"][-1] == 100.0 and run.status()["totals"]["percent_done"] == 100.0
        assert len(rec["status"]) > 1 and len(set(rec["monitor"])) > 1  # it was watched while it ran
