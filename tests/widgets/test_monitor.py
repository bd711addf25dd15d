"""RunMonitor fed a run directory that grows while it watches (events.jsonl and jobstate.log)."""

from __future__ import annotations

import json
import threading
import time

from mlwf_nb.runs import RunState
from mlwf_nb.runs.state import RunLengthList
from mlwf_nb.widgets import RunMonitor


def _events(n_epochs: int = 4) -> list[dict]:
    evs = [{"type": "run_started"}]
    evs += [{"type": "job_state", "job": "train_ID1", "state": "running", "try": 1}]
    for e in range(1, n_epochs + 1):
        evs.append({"type": "epoch", "job": "train_ID1", "epoch": e,
                    "metrics": {"loss": 1.0 / e, "accuracy": 0.5 + e / 20, "val_loss": 1.1 / e,
                                "val_accuracy": 0.45 + e / 20}})
        evs.append({"type": "checkpoint_saved", "job": "train_ID1", "path": f"ckpt/e{e}.keras", "epoch": e})
    evs += [{"type": "trial_proposed", "round": 0, "trial": 1, "hp": {"train.learning_rate": 0.01}},
            {"type": "trial_finished", "round": 0, "trial": 1, "status": "COMPLETED", "objective": 0.7},
            {"type": "trial_proposed", "round": 0, "trial": 2, "hp": {"train.learning_rate": 0.001}},
            {"type": "trial_finished", "round": 0, "trial": 2, "status": "COMPLETED", "objective": 0.8},
            {"type": "artifact", "kind": "confusion_matrix", "path": "outputs/confusion_matrix.json",
             "matrix": [[5, 1], [2, 7]], "classes": ["built-up", "water"], "colors": [[255, 0, 0], [0, 0, 255]]},
            {"type": "job_state", "job": "train_ID1", "state": "succeeded", "exit_code": 0, "try": 1},
            {"type": "run_finished", "state": "Success"}]
    return [{"v": 1, "seq": i + 1, "ts": time.time(), **e} for i, e in enumerate(evs)]


_JOBSTATE = [
    "1677911023 INTERNAL *** DAGMAN_STARTED 1.0 ***",
    "1677911024 preprocess_ID1 SUBMIT 2.0 local - 1",
    "1677911028 preprocess_ID1 EXECUTE 2.0 local - 1",
    "1677911031 preprocess_ID1 JOB_TERMINATED 2.0 local - 1",
    "1677911031 preprocess_ID1 JOB_SUCCESS 0 local - 1",
    "1677911040 evaluate_ID2 SUBMIT 3.0 local - 2",
    "1677911041 evaluate_ID2 JOB_FAILURE 1 local - 2",
]


def _write_growing(run_dir, events, delay=0.02, torn=True):
    """Append events (some torn in two writes) and jobstate lines while the monitor watches."""
    ev_path, js_path = run_dir / "events.jsonl", run_dir / "jobstate.log"
    for i, ev in enumerate(events):
        line = json.dumps(ev) + "\n"
        with open(ev_path, "a") as fh:
            if torn and i % 3 == 0:
                fh.write(line[:10])
                fh.flush()
                time.sleep(delay)
            fh.write(line[10:] if torn and i % 3 == 0 else line)
        if i < len(_JOBSTATE):
            with open(js_path, "a") as fh:
                fh.write(_JOBSTATE[i] + "\n")
        time.sleep(delay)


def test_monitor_follows_growing_dir_once_in_order_and_stops(tmp_path):
    events = _events()
    monitor = RunMonitor(tmp_path, max_rate=4.0, poll_interval=0.05)
    writer = threading.Thread(target=_write_growing, args=(tmp_path, events))
    t0 = time.monotonic()
    writer.start()
    writer.join()
    assert monitor.wait(timeout=60, show=False) == "Success"
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
    assert monitor.jobs["preprocess_ID1"]["state"] == "succeeded"
    assert monitor.jobs["evaluate_ID2"]["state"] == "failed" and monitor.jobs["evaluate_ID2"]["exit_code"] == 1
    assert [f["job"] for f in monitor.failures] == ["evaluate_ID2"]
    assert "evaluate_ID2" in monitor._failures.value
    assert monitor._cm.value[:4] == b"\x89PNG" and monitor._curves.value[:4] == b"\x89PNG"
    assert "built-up" not in monitor._jobs.value and "train_ID1" in monitor._jobs.value

    # "kernel restart": a new monitor on the same directory replays the full history once
    again = RunMonitor(tmp_path)
    assert again.wait(timeout=60, show=False) == "Success"
    assert again.event_seqs == monitor.event_seqs
    assert again.history == monitor.history and again.jobs == monitor.jobs
    assert again.run_state.jobstate_lines == len(_JOBSTATE)


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


def test_run_state_skips_repeated_seq():
    rs = RunState()
    rs.apply([{"seq": 1, "type": "run_started"}, {"seq": 2, "type": "epoch", "epoch": 1, "metrics": {"loss": 1}}])
    rs.apply([{"seq": 2, "type": "epoch", "epoch": 1, "metrics": {"loss": 1}}])
    assert rs.seqs == [1, 2] and rs.history == {"loss": [1.0]}


def test_run_length_list_reads_like_the_list_it_stands_for():
    seqs, types = RunLengthList(step=1), RunLengthList()
    ref_s, ref_t = [1, 2, 3, 7, 8, 2, 3], ["a", "a", "b", "a", "a", "a", "c"]
    for s, t in zip(ref_s, ref_t, strict=True):
        seqs.append(s)
        types.append(t)
    assert seqs == ref_s and list(seqs) == ref_s and types == ref_t and len(types) == 7
    assert [seqs[i] for i in range(-7, 7)] == ref_s * 2 and seqs[2:5] == [3, 7, 8]
    assert (len(seqs._firsts), len(types._firsts)) == (3, 4)  # runs, not items
    assert RunLengthList(range(1, 100_001), step=1)._firsts == [1] and not RunLengthList()


class _FakeRun:
    """The parts of a Run the monitor uses; counts the (costly) status() calls."""

    def __init__(self, path):
        self.dir, self.events_path, self.status_calls = path, path / "events.jsonl", 0

    def status(self):
        self.status_calls += 1
        return {"mlwf": {"state": "Success", "jobs": {}, "failed_jobs": []}}

    @property
    def state(self):
        return "Success"


def test_long_replay_folds_every_event_at_the_update_rate_and_a_success_asks_no_status(tmp_path):
    n_jobs = 3000  # 21,000 lines a file: many bounded reads, few updates
    states = ("SUBMIT", "EXECUTE", "JOB_TERMINATED", "JOB_SUCCESS", "POST_SCRIPT_STARTED",
              "POST_SCRIPT_TERMINATED", "POST_SCRIPT_SUCCESS")
    with open(tmp_path / "jobstate.log", "w") as js, open(tmp_path / "events.jsonl", "w") as ev:
        seq = 0
        for i in range(n_jobs):
            for state in states:
                js.write(f"1677911024 train_ID{i} {state} 0 local - {i}\n")
                seq += 1
                ev.write(json.dumps({"v": 1, "seq": seq, "job": f"ID{i}", "type": "job_state", "state": state,
                                     "exit_code": 0, "try": 0}) + "\n")
        ev.write(json.dumps({"v": 1, "seq": seq + 1, "type": "run_finished", "state": "Success"}) + "\n")
    run = _FakeRun(tmp_path)
    t0 = time.monotonic()
    monitor = RunMonitor(run)
    assert monitor.wait(timeout=60, show=False) == "Success"
    elapsed = time.monotonic() - t0
    assert monitor.event_seqs == list(range(1, seq + 2)) and monitor.events_seen == seq + 1
    assert len(monitor.jobs) == n_jobs and monitor.run_state.totals()["succeeded"] == n_jobs
    assert monitor.run_state.jobstate_lines == n_jobs * len(states)
    assert monitor.updates <= 4 * elapsed + 2 and monitor.failures == []
    assert run.status_calls == 0  # nothing failed: no parse of the whole jobstate.log at the end
    assert "more jobs not listed" in monitor._jobs.value
