"""`mlwf resume RUN --wait` follows the resumed run to its own end, not to the earlier try's end.

The earlier try's ``run_finished`` stays the last event until the restarted executor writes its
``run_started``; a watch that began in between used to read it and return at once with Failure.
"""

from __future__ import annotations

import os
import signal
import threading

from mlwf_nb import cli
from mlwf_nb.backends import local
from mlwf_nb.backends.local import LocalBackend
from mlwf_nb.pipelines import Graph
from mlwf_nb.rundir.events import read_events
from mlwf_nb.runs import Run
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import write_run_dir
from tests.reliability import rel_steps  # noqa: F401 - registers the rel-* steps


def _failed_run(tmp_path):
    """A one-job run that failed because ``marker`` was missing: (run dir, marker)."""
    marker = tmp_path / "fixed"
    spec = RunSpec.from_preset("tiny").with_overrides(["name=resume-wait", "execution.retries=0"])
    g = Graph()
    g.add("rel-fails-until", "gate", out="outputs/gate.json", marker=str(marker))
    run_dir = write_run_dir(spec, tmp_path / "run", graph=g)
    LocalBackend().submit(run_dir, jobs=1, wait=True)
    assert Run.attach(run_dir).state == "Failure"
    return run_dir, marker


def test_resume_wait_follows_the_resumed_run(tmp_path, repo_on_path, capsys, monkeypatch):
    run_dir, marker = _failed_run(tmp_path)
    marker.touch()  # the user fixed the fault
    spawn = local._spawn

    def spawn_then_pause(run, jobs):  # the restarted executor is held for 1 s before its run_started
        proc = spawn(run, jobs)
        os.killpg(proc.pid, signal.SIGSTOP)
        threading.Timer(1.0, os.killpg, (proc.pid, signal.SIGCONT)).start()
        return proc

    monkeypatch.setattr(local, "_spawn", spawn_then_pause)
    code = cli.main(["resume", str(run_dir), "--wait"])
    out = capsys.readouterr().out
    assert code == 0 and "Success" in out, out
    ends = [e["state"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_finished"]
    assert ends == ["Failure", "Success"]


def test_run_wait_after_resume_waits_for_the_resumed_run(tmp_path, repo_on_path):
    run_dir, marker = _failed_run(tmp_path)
    run = Run.attach(run_dir)
    assert run.state == "Failure"  # the handle has read the earlier end
    marker.touch()
    assert run.resume().wait(timeout=120) == "Success" and run.state == "Success"
