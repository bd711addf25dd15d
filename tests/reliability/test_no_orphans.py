"""No process outlives its run: the executor killed mid-run, then cancel or resume; no zombie in the kernel.

The jobs are rel-ticks (tests/reliability/rel_steps.py): steps that emit an event a tick, as a
training emits one an epoch, without TensorFlow; one of them is forked from the warm worker,
whose children outlive it when the executor dies.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from mlwf_nb.backends._leftovers import group_members, leftovers, start_records
from mlwf_nb.backends.local import LocalBackend, _read_pid, executor_alive, local_status
from mlwf_nb.pipelines import Graph
from mlwf_nb.rundir.events import read_events
from mlwf_nb.runs import Run
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import write_run_dir
from tests.reliability import rel_steps
from tests.reliability.conftest import wait_for


def _lost_run(tmp_path, name):
    """A run whose executor is SIGKILLed while three jobs (one forked warm) are mid-way: (run, their groups)."""
    spec = RunSpec.from_preset("tiny").with_overrides([f"name={name}", "execution.jobs=3"])
    g = Graph()  # three jobs that tick for 10 minutes (a moment when retried), one of them forked warm
    for i, step in enumerate(("rel-tick", "rel-tick", "rel-tick-warm")):
        g.add(step, f"tick[{i}]", out=f"work/tick-{i}.json", index=i, ticks=2400, seconds=0.25, retry_ticks=1)
    g.add("rel-gather", parts=[f"work/tick-{i}.json" for i in range(3)], total="outputs/total.json")
    run_dir = write_run_dir(spec, tmp_path / name, graph=g)
    LocalBackend().submit(run_dir, jobs=3)
    ticking = wait_for(lambda: len({e.get("relay", ":").split(":")[0] for e in read_events(run_dir / "events.jsonl")
                                    if e.get("type") == "log"}) == 3, timeout=120)
    assert ticking, local_status(run_dir)["mlwf"]
    os.kill(_read_pid(run_dir), signal.SIGKILL)  # the executor alone: its jobs go on
    assert wait_for(lambda: not executor_alive(run_dir), timeout=60)
    groups = {name: pgid for name, _, pgid in start_records(run_dir / "executor.log") if name.startswith("rel_tick")}
    assert len(groups) == 3 and leftovers(run_dir) == groups  # all three still run, orphaned
    assert local_status(run_dir, stale_after=0.0)["mlwf"]["state"] == "Lost"
    return Run.attach(run_dir), groups


def test_cancel_of_a_lost_run_kills_its_jobs(tmp_path, repo_on_path):
    run, groups = _lost_run(tmp_path, "lost-cancel")
    run.cancel()
    assert {g: group_members(g) for g in groups.values()} == {g: [] for g in groups.values()}
    assert run.state == "Cancelled" and local_status(run.dir)["mlwf"]["state"] == "Cancelled"
    failed = {e["name"] for e in read_events(run.events_path) if e["type"] == "job_state" and e["state"] == "failed"}
    assert set(groups) <= failed  # and any other job the dead executor never saw end
    assert not any((run.dir / f"work/tick-{i}.json").exists() for i in range(3))  # no job went on to finish


def test_resume_kills_the_leftovers_before_it_starts_anything(tmp_path, repo_on_path):
    run, groups = _lost_run(tmp_path, "lost-resume")
    run.resume(wait=True)
    assert run.state == "Success", run.status()["mlwf"]
    assert all(not group_members(g) for g in groups.values())
    log = (run.dir / "executor.log").read_text().splitlines()
    killed = next(i for i, line in enumerate(log) if line.startswith("killed 3 leftover job(s)"))
    restarts = [i for i, line in enumerate(log) if line.startswith("start rel_tick")][len(groups):]
    assert restarts and killed < min(restarts)  # no new try before the old ones were gone


def _zombies() -> list[int]:
    """Children of this process that have exited and were never reaped."""
    out = []
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_bytes().decode()
            except OSError:
                continue
            state, ppid = text[text.rfind(")") + 2:].split()[:2]
            if ppid == me and state == "Z":
                out.append(int(entry))
    return out


def test_a_run_started_from_a_kernel_leaves_no_zombie(tmp_path, repo_on_path):
    spec = RunSpec.from_preset("tiny").with_overrides(["name=reaped"])
    run_dir = write_run_dir(spec, tmp_path / "run", graph=rel_steps.graph(spec, jobs=1, ticks=2, seconds=0.05))
    LocalBackend().submit(run_dir, jobs=1)  # returns at once, as in a notebook cell
    pid = _read_pid(run_dir)
    assert Run.attach(run_dir).wait(timeout=120) == "Success"
    pause = threading.Event()
    deadline = time.monotonic() + 60
    # gone means reaped: no /proc entry left (a zombie keeps one until its parent waits for it); checking
    # "not a zombie and not alive" raced with an executor that was exiting but not yet a zombie (under load)
    while pid in _zombies() or executor_alive(run_dir) or os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, f"executor {pid} still <defunct> under this process"
        pause.wait(0.05)
    assert pid not in _zombies()
