"""RunMonitor fed a growing events file, a real local run and the real Pegasus sample submit directories."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from mlwf_nb._io import write_json
from mlwf_nb.backends.local import LocalBackend
from mlwf_nb.rundir.events import job_state_event
from mlwf_nb.rundir.states import JOB_STATES
from mlwf_nb.runs import Follower, Run
from mlwf_nb.widgets import RunMonitor
from tests.backends.conftest import RunBuilder

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "pegasus" / "samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Pegasus samples not found at {SAMPLES}")


def _job(name: str, state: str, try_: int = 1, exit_code: int | None = None) -> dict:
    return job_state_event(job=name.rsplit("_", 1)[1], name=name, step=name.rsplit("_", 1)[0], state=state,
                           try_=try_, exit_code=exit_code)


def _events(n_epochs: int = 4) -> list[dict]:
    evs = [{"type": "run_started", "total": 3}, _job("preprocess_ID1", "queued"), _job("preprocess_ID1", "running"),
           _job("preprocess_ID1", "succeeded", exit_code=0), _job("train_ID2", "queued"), _job("train_ID2", "running")]
    for e in range(1, n_epochs + 1):
        evs.append({"type": "epoch", "job": "ID2", "epoch": e,
                    "metrics": {"loss": 1.0 / e, "accuracy": 0.5 + e / 20, "val_loss": 1.1 / e,
                                "val_accuracy": 0.45 + e / 20}})
        evs.append({"type": "checkpoint_saved", "job": "ID2", "path": f"ckpt/e{e}.keras", "epoch": e})
    evs += [{"type": "trial_proposed", "round": 0, "trial": 1, "hp": {"train.learning_rate": 0.01}},
            {"type": "trial_finished", "round": 0, "trial": 1, "status": "COMPLETED", "objective": 0.7},
            {"type": "trial_proposed", "round": 0, "trial": 2, "hp": {"train.learning_rate": 0.001}},
            {"type": "trial_finished", "round": 0, "trial": 2, "status": "COMPLETED", "objective": 0.8},
            {"type": "artifact", "kind": "confusion_matrix", "path": "outputs/confusion_matrix.json",
             "matrix": [[5, 1], [2, 7]], "classes": ["built-up", "water"], "colors": [[255, 0, 0], [0, 0, 255]]},
            _job("train_ID2", "succeeded", exit_code=0), _job("evaluate_ID3", "queued"),
            {**_job("evaluate_ID3", "failed", exit_code=1), "stderr": "jobs/evaluate_ID3/stderr.000"},
            {"type": "run_finished", "state": "Failure"}]
    return [{"v": 1, "seq": i + 1, "ts": time.time(), **e} for i, e in enumerate(evs)]


def _write_growing(run_dir, events, delay=0.02):
    """Append events, every third torn in two writes, while the monitor watches."""
    (run_dir / "jobs" / "evaluate_ID3").mkdir(parents=True)
    (run_dir / "jobs" / "evaluate_ID3" / "stderr.000").write_text("Traceback ...\nValueError: no scenes\n")
    for i, ev in enumerate(events):
        line = json.dumps(ev) + "\n"
        with open(run_dir / "events.jsonl", "a") as fh:
            if i % 3 == 0:
                fh.write(line[:10])
                fh.flush()
                time.sleep(delay)
            fh.write(line[10:] if i % 3 == 0 else line)
        time.sleep(delay)


def test_monitor_follows_growing_dir_once_in_order_and_stops(tmp_path):
    events = _events()
    monitor = RunMonitor(tmp_path, max_rate=4.0, poll_interval=0.05)
    writer = threading.Thread(target=_write_growing, args=(tmp_path, events))
    t0 = time.monotonic()
    writer.start()
    writer.join()
    assert monitor.wait(timeout=60, show=False) == "Failure"
    elapsed = time.monotonic() - t0
    assert monitor.event_seqs == list(range(1, len(events) + 1))
    assert monitor.events_seen == len(events) and monitor.last_seq == len(events)
    assert not monitor.following and monitor.finished
    # bounded update rate: at most ~4 UI updates per second (+1 for the final flush)
    assert monitor.updates <= 4 * elapsed + 2
    assert monitor.history["loss"] == [1.0, 0.5, 1.0 / 3, 0.25]
    assert [c["epoch"] for c in monitor.checkpoints] == [1, 2, 3, 4]
    assert [t["trial"] for t in monitor.leaderboard] == [2, 1]
    assert monitor.confusion["matrix"] == [[5, 1], [2, 7]]
    assert {n: j["state"] for n, j in monitor.jobs.items()} == {
        "preprocess_ID1": "succeeded", "train_ID2": "succeeded", "evaluate_ID3": "failed"}
    assert monitor.jobs["evaluate_ID3"]["exit_code"] == 1
    assert [f["job"] for f in monitor.failures] == ["evaluate_ID3"]
    assert "ValueError: no scenes" in monitor.failures[0]["stderr_tail"]
    assert "evaluate_ID3" in monitor._failures.value and "no scenes" in monitor._failures.value
    assert monitor._cm.value[:4] == b"\x89PNG" and monitor._curves.value[:4] == b"\x89PNG"
    assert "built-up" not in monitor._jobs.value and "train_ID2" in monitor._jobs.value

    # "kernel restart": a new monitor on the same directory replays the full history once
    again = RunMonitor(tmp_path)
    assert again.wait(timeout=60, show=False) == "Failure"
    assert again.event_seqs == monitor.event_seqs
    assert again.history == monitor.history and again.jobs == monitor.jobs


def test_monitor_shows_confusion_matrix_as_soon_as_artifact_arrives(tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "confusion_matrix.json").write_text(json.dumps(
        {"classes": ["a", "b"], "colors": [[1, 2, 3], [4, 5, 6]], "matrix": [[3, 0], [1, 4]]}))
    monitor = RunMonitor(tmp_path, poll_interval=0.02)
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"v": 1, "seq": 1, "type": "artifact", "kind": "confusion_matrix",
                             "path": "outputs/confusion_matrix.json"}) + "\n")
    deadline = time.monotonic() + 60
    while not monitor.confusion and time.monotonic() < deadline:
        time.sleep(0.02)
    assert monitor.confusion["matrix"] == [[3, 0], [1, 4]] and monitor.following
    monitor.stop()  # waits 2 s for the thread, which may still be drawing the matrix on a loaded machine
    deadline = time.monotonic() + 60
    while monitor.following and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not monitor.following


class _FakeRun:
    """The parts of a Run the monitor uses; counts the (costly) failure look-ups."""

    def __init__(self, path):
        self.dir, self.failure_calls = path, 0

    def follower(self, **kwargs):
        return Follower(self.dir, live=lambda: "Success", **kwargs)

    def status(self):  # the monitor must not need it
        raise AssertionError("status() asked")

    def failures(self, rs):
        self.failure_calls += 1
        return rs.failures()


def test_long_replay_folds_every_event_at_the_update_rate_and_a_success_reads_no_stderr(tmp_path):
    n_jobs = 3000  # 9,000 events: many bounded reads, few updates
    with open(tmp_path / "events.jsonl", "w") as ev:
        seq = 1
        ev.write(json.dumps({"v": 1, "seq": 1, "type": "run_started", "total": n_jobs}) + "\n")
        for i in range(n_jobs):
            for state in ("queued", "running", "succeeded"):
                seq += 1
                ev.write(json.dumps({"v": 1, "seq": seq, **_job(f"train_ID{i}", state, exit_code=0)}) + "\n")
        ev.write(json.dumps({"v": 1, "seq": seq + 1, "type": "run_finished", "state": "Success"}) + "\n")
    run = _FakeRun(tmp_path)
    t0 = time.monotonic()
    monitor = RunMonitor(run)
    assert monitor.wait(timeout=60, show=False) == "Success"
    elapsed = time.monotonic() - t0
    assert monitor.event_seqs == list(range(1, seq + 2)) and monitor.events_seen == seq + 1
    assert len(monitor.jobs) == n_jobs and monitor.run_state.totals()["succeeded"] == n_jobs
    assert monitor.updates <= 4 * elapsed + 2 and monitor.failures == []
    assert run.failure_calls == 1  # once, at the end, and it found nothing to read
    assert "more jobs not listed" in monitor._jobs.value


def test_monitor_of_a_real_local_run_agrees_with_the_executors_jobstate_log(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.sh("prep", "echo prepared > work/a", outputs=["work/a"])
    # fails on its first try, succeeds on its retry
    b.sh("train", 'if [ -e work/tried ]; then cat work/a > work/m; else touch work/tried; exit 3; fi; '
         'for e in 1 2; do echo "{\\"type\\":\\"epoch\\",\\"epoch\\":$e,\\"metrics\\":{\\"loss\\":0.$e}}" '
         '>> "$MLWF_EVENTS"; done', inputs=["work/a"], outputs=["work/m"], retry=1)
    b.sh("bad", "echo broken >&2; exit 4", inputs=["work/m"])
    run = Run.attach(b.write())
    LocalBackend().submit(run.dir, jobs=2)
    monitor = RunMonitor(run, poll_interval=0.05)
    assert monitor.wait(timeout=60, show=False) == "Failure"
    assert monitor.history == {"loss": [0.1, 0.2]}
    assert all(j["state"] in JOB_STATES for j in monitor.jobs.values())
    assert {n: (j["state"], j["exit_code"], j["tries"]) for n, j in monitor.jobs.items()} == {
        "prep_ID0000001": ("succeeded", 0, 1), "train_ID0000002": ("succeeded", 0, 2),
        "bad_ID0000003": ("failed", 4, 1)}
    assert [f["job"] for f in monitor.failures] == ["bad_ID0000003"]
    assert "broken" in monitor.failures[0]["stderr_tail"]
    # the executor's own record (jobstate.log) says the same as the events the monitor folded
    own = LocalBackend().status(run.dir)
    assert {n: (j["state"], j["exit_code"], j["tries"]) for n, j in own["mlwf"]["jobs"].items()} == {
        n: (j["state"], j["exit_code"], j["tries"]) for n, j in monitor.jobs.items()}
    assert run.status()["totals"] == own["totals"]


def _pegasus_run(tmp_path: Path, sample: str) -> Run:
    """A run directory whose pegasus.json points at a copy of a real Pegasus submit directory."""
    submit = tmp_path / "submit"
    shutil.copytree(SAMPLES / sample, submit)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(submit / "workflow.yml", run_dir / "workflow.yml")
    write_json(run_dir / "run.json", {"version": 1, "backend": "pegasus", "name": "process"})
    write_json(run_dir / "pegasus.json", {"state": "Submitted", "submit_dir": str(submit)})
    return Run.attach(run_dir)


@needs_samples
@pytest.mark.parametrize(("sample", "final", "jobs"), [
    ("process_wf_success", "Success", {"create_dir_process_0_local": ("succeeded", 0, 1),
                                       "ls_ID0000001": ("succeeded", 0, 1)}),
    ("process_wf_failure", "Failure", {"create_dir_process_0_local": ("succeeded", 0, 1),
                                       "ls_ID0000001": ("failed", 2, 2)}),
])
def test_monitor_of_the_real_pegasus_sample_directories(tmp_path, sample, final, jobs):
    run = _pegasus_run(tmp_path, sample)
    monitor = RunMonitor(run, poll_interval=0.05)
    assert monitor.wait(timeout=30, show=False) == final
    shown = {n: (j["state"], j["exit_code"], j["tries"]) for n, j in monitor.jobs.items()}
    assert {n: shown[n] for n in jobs} == jobs
    assert all(j["state"] in JOB_STATES for j in monitor.jobs.values())
    st = run.status()
    assert st["mlwf"]["state"] == final and st["totals"]["total"] >= len(monitor.jobs)
    if final == "Failure":
        assert [f["job"] for f in monitor.failures] == ["ls_ID0000001"]
        assert st["mlwf"]["jobs"]["ls_ID0000001"]["stderr_tail"] == monitor.failures[0]["stderr_tail"]
    # the relay wrote every event once: a second monitor replays the same history
    again = RunMonitor(Run.attach(run.dir))
    assert again.wait(timeout=30, show=False) == final and again.event_seqs == monitor.event_seqs


def test_monitor_shows_detection_scores_and_the_sweep_table(tmp_path):
    per_class = [{"class": "with_mask", "ap50": 0.97, "ap": 0.71, "precision": 0.9, "recall": 0.95, "objects": 40}]
    events = [{"type": "sweep_result", "index": 1, "parameters": {"lr": 0.01}, "status": "failed", "records": {},
               "error": "ValueError: boom"},
              {"type": "sweep_result", "index": 0, "parameters": {"lr": 0.001}, "status": "ok",
               "records": {"accuracy": 0.875}},
              {"type": "sweep_result", "index": 1, "parameters": {"lr": 0.01}, "status": "ok",  # resumed
               "records": {"accuracy": 0.5}},
              {"type": "artifact", "kind": "detection", "path": "outputs/metrics.json", "map50": 0.97, "map": 0.71,
               "per_class": per_class}]
    with open(tmp_path / "events.jsonl", "a") as fh:
        for i, ev in enumerate(events):
            fh.write(json.dumps({"v": 1, "seq": i + 1, **ev}) + "\n")
    monitor = RunMonitor(tmp_path, poll_interval=0.02)
    deadline = time.monotonic() + 60
    while not (monitor.detection and monitor._detection.value) and time.monotonic() < deadline:
        time.sleep(0.02)
    monitor.stop()
    assert [r["index"] for r in monitor.sweep] == [0, 1] and monitor.sweep[1]["status"] == "ok"
    assert "0.875" in monitor._sweep.value and "ValueError" not in monitor._sweep.value  # the latest result wins
    assert monitor.detection["map50"] == 0.97
    assert "mAP@0.5 0.970" in monitor._detection.value and "with_mask" in monitor._detection.value


def _wait_for(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_a_live_monitor_follows_a_resume_made_elsewhere(tmp_path):
    """The run ended (Failure); `mlwf resume` in a terminal appends the new try: the open monitor shows it."""
    first = _events()
    _write_growing(tmp_path, first, delay=0)
    monitor = RunMonitor(tmp_path, poll_interval=0.05, resume_poll=0.1, autostart=False)
    monitor.shown = True  # displayed live (a front end attached): what _ipython_display_ records
    monitor.attach(tmp_path)
    assert _wait_for(lambda: monitor.finished and monitor.state == "Failure")
    assert _wait_for(lambda: monitor._watcher is not None)
    seq = len(first)
    again = [{"type": "run_started", "total": 3}, _job("evaluate_ID3", "queued", try_=2),
             _job("evaluate_ID3", "running", try_=2), _job("evaluate_ID3", "succeeded", try_=2, exit_code=0),
             {"type": "run_finished", "state": "Success"}]
    with open(tmp_path / "events.jsonl", "a") as fh:
        for i, ev in enumerate(again):
            fh.write(json.dumps({"v": 1, "seq": seq + i + 1, "ts": time.time(), **ev}) + "\n")
    assert _wait_for(lambda: monitor.state == "Success" and monitor.finished), monitor.state
    assert monitor.jobs["evaluate_ID3"]["state"] == "succeeded"
    assert monitor.event_seqs == list(range(1, seq + len(again) + 1))  # replayed once, in order
    assert monitor.history["loss"] == [1.0, 0.5, 1.0 / 3, 0.25]  # the first try's curves are kept
    monitor.stop()
    assert monitor._watcher is None


def test_a_static_or_undisplayed_monitor_does_not_look_for_resumes(tmp_path):
    _write_growing(tmp_path, _events(), delay=0)
    quiet = RunMonitor(tmp_path, poll_interval=0.05, resume_poll=0.1)  # never displayed (a script)
    assert quiet.wait(timeout=60, show=False) == "Failure"
    static = RunMonitor(tmp_path, poll_interval=0.05, resume_poll=0.1, autostart=False)
    static.shown = True  # papermill's static form (a display handle): a record of the cell
    static._static_handle = type("Handle", (), {"update": lambda self, html: None})()
    static.attach(tmp_path)
    assert static.wait(timeout=60, show=False) == "Failure"
    assert quiet._watcher is None and static._watcher is None
