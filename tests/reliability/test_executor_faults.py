"""The local executor dies mid-run (SIGKILL): status says Lost; resume finishes without re-running
finished jobs and without duplicating events. No TensorFlow: the rel-ticks pipeline."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

from mlwf_nb.backends.local import _read_pid, executor_alive, local_status
from mlwf_nb.rundir.events import EventReader, read_events
from mlwf_nb.rundir.jobstate import parse_jobstate
from mlwf_nb.runs import Run
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import write_run_dir
from tests.reliability import rel_steps
from tests.reliability.conftest import wait_for


def _tries(run) -> dict[str, int]:
    return {n: sum(1 for r in parse_jobstate(run / "jobstate.log") if r.job == n and r.state == "SUBMIT")
            for n in {r.job for r in parse_jobstate(run / "jobstate.log") if r.job}}


def _succeeded(run) -> set[str]:
    return {r.job for r in parse_jobstate(run / "jobstate.log") if r.state == "JOB_SUCCESS"}


def test_executor_killed_then_resumed(tmp_path, repo_on_path):
    spec = RunSpec.from_preset("tiny").with_overrides(["name=lost", "execution.jobs=4"])
    run_dir = write_run_dir(spec, tmp_path / "run", graph=rel_steps.graph(spec, jobs=3, ticks=5, seconds=0.2))
    run = Run.attach(run_dir)
    run.backend.submit(run_dir, jobs=4)
    # kill the executor once the first (shortest) tick succeeded and the others still run
    assert wait_for(lambda: any(n.startswith("rel_tick") for n in _succeeded(run_dir)), timeout=60), run.status()
    before = _succeeded(run_dir)
    os.kill(_read_pid(run_dir), signal.SIGKILL)
    assert wait_for(lambda: not executor_alive(run_dir), timeout=60)
    st = local_status(run_dir, stale_after=0.0)
    assert st["mlwf"]["state"] == "Lost" and st["dags"]["root"]["state"] == "Failure"
    tries_before = _tries(run_dir)

    run.resume(wait=True)
    assert run.state == "Success", run.status()
    assert json.loads((run_dir / "outputs/total.json").read_text())["total"] == 0 + 1 + 2
    tries_after = _tries(run_dir)
    for name in before:  # finished before the kill: never run again
        assert tries_after[name] == tries_before[name] == 1, (name, tries_before, tries_after)
    events = list(read_events(run_dir / "events.jsonl"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    relays = [e["relay"] for e in events if "relay" in e]
    assert len(relays) == len(set(relays)), Counter(relays).most_common(3)
    # tick jobs that finished before the kill ran once: each of their events was relayed exactly once
    done_ticks = [int(n[-7:]) - 1 for n in before if n.startswith("rel_tick")]  # rel_tick_ID000000<i+1>
    assert done_ticks
    for i in done_ticks:
        ticks = Counter(e["message"] for e in events
                        if e.get("type") == "log" and e["message"].startswith(f"tick {i}."))
        assert sorted(ticks) == [f"tick {i}.{k}" for k in range(5 * (i + 1))] and set(ticks.values()) == {1}, ticks
    finished = [e for e in events if e["type"] == "run_finished"]
    assert [f["state"] for f in finished] == ["Success"]
    assert sum(1 for e in events if e["type"] == "run_started") == 2


def test_new_reader_after_kernel_restart_sees_full_history(tmp_path, repo_on_path):
    """A reader created mid-run (a restarted kernel) replays everything, then follows: no gap, no repeat."""
    spec = RunSpec.from_preset("tiny").with_overrides(["name=restart"])
    run_dir = write_run_dir(spec, tmp_path / "run", graph=rel_steps.graph(spec, jobs=2, ticks=4, seconds=0.15))
    Run.attach(run_dir).backend.submit(run_dir, jobs=2)
    first = EventReader(run_dir / "events.jsonl")
    assert wait_for(lambda: len(first.poll()) > 0, timeout=30)
    first = None  # the old kernel is gone
    run = Run.attach(run_dir)  # the new kernel
    monitor = None
    try:
        from mlwf_nb.widgets import RunMonitor

        monitor = RunMonitor(run_dir, poll_interval=0.05)
    except ImportError:  # pragma: no cover - widgets not installed
        pass
    seen = list(run.events(follow=True, timeout=120))
    assert run.state == "Success"
    full = list(read_events(run_dir / "events.jsonl"))
    assert seen == full
    assert [e["seq"] for e in seen] == list(range(1, len(full) + 1))
    if monitor is not None:
        assert wait_for(lambda: monitor.event_seqs == [e["seq"] for e in full], timeout=30), monitor.event_seqs
        monitor.stop()
