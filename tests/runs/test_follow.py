"""The one follower: incremental bounded reads, the end of a run, and following from a thread."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mlwf_nb.runs import Follower


def _write(path, events, start=1):
    with open(path, "a") as fh:
        for i, ev in enumerate(events, start):
            fh.write(json.dumps({"v": 1, "seq": i, **ev}) + "\n")


def test_poll_reads_at_most_read_bytes_and_never_rereads(tmp_path):
    _write(tmp_path / "events.jsonl", [{"type": "log", "message": "x" * 50}] * 200)
    f = Follower(tmp_path, read_bytes=1024)
    sizes = []
    while batch := f.poll()[0]:
        sizes.append(len(batch))
    assert sum(sizes) == 200 and max(sizes) <= 1024 // 80 + 1 and len(sizes) > 10
    assert list(f.state.seqs) == list(range(1, 201))
    _write(tmp_path / "events.jsonl", [{"type": "log", "message": "late"}], start=201)
    assert [e["seq"] for e in f.poll()[0]] == [201]


def test_follow_ends_at_run_finished(tmp_path):
    path = tmp_path / "events.jsonl"
    _write(path, [{"type": "run_started", "total": 1}])

    def later():
        time.sleep(0.3)
        _write(path, [{"type": "run_finished", "state": "Success"}], start=2)

    threading.Thread(target=later).start()
    f = Follower(tmp_path, live=lambda: "Running", poll_interval=0.02)
    assert [e["type"] for e in f.follow(timeout=10)] == ["run_started", "run_finished"]
    assert f.state.state == "Success" and f.state.finished


def test_follow_ends_when_the_backend_says_the_run_is_lost(tmp_path):
    _write(tmp_path / "events.jsonl", [{"type": "run_started", "total": 2}])
    asked = []

    def live():
        asked.append(time.monotonic())
        return "Lost"

    f = Follower(tmp_path, live=live, poll_interval=0.02, live_every=0.1)
    assert [e["type"] for e in f.follow(timeout=10)] == ["run_started"]
    assert f.state.state == "Lost" and f.state.ended and not f.state.finished and len(asked) == 1


def test_follow_times_out_on_a_run_that_goes_on(tmp_path):
    _write(tmp_path / "events.jsonl", [{"type": "run_started", "total": 2}])
    f = Follower(tmp_path, live=lambda: "Running", poll_interval=0.02, live_every=0.05)
    with pytest.raises(TimeoutError, match="still Running"):
        list(f.follow(timeout=0.3))


_FAILED_TRY = [{"type": "run_started", "total": 1}, {"type": "run_finished", "state": "Failure"}]


def test_a_resumed_run_is_followed_past_its_earlier_end(tmp_path):
    """`mlwf resume RUN --wait`: the earlier try's run_finished (still last in the file) does not end it."""
    path = tmp_path / "events.jsonl"
    _write(path, _FAILED_TRY)
    f = Follower(tmp_path, live=lambda: "Running", poll_interval=0.02, live_every=0.05, restart_after=2)
    with pytest.raises(TimeoutError, match="still Failure"):  # the old end is read, and is not this run's end
        list(f.follow(timeout=0.3))
    _write(path, [{"type": "run_started", "total": 1, "resumed": True},
                  {"type": "run_finished", "state": "Success"}], start=3)
    assert [e["seq"] for e in f.follow(timeout=10)] == [3, 4]
    assert f.state.state == "Success" and f.state.ended
    again = Follower(tmp_path, restart_after=2)  # a replay of the whole file ends at the new end
    assert [e["seq"] for e in again.follow(timeout=10)] == [1, 2, 3, 4] and again.state.state == "Success"


@pytest.mark.parametrize(("live", "grace", "state"), [("Lost", 60.0, "Lost"), ("Failure", 0.0, "Failure")])
def test_a_resume_that_never_begins_ends_on_the_backends_word(tmp_path, live, grace, state):
    """The restart died (Lost: at once) or never came (another final state: after restart_grace)."""
    _write(tmp_path / "events.jsonl", _FAILED_TRY)
    f = Follower(tmp_path, live=lambda: live, poll_interval=0.02, live_every=0.05, restart_after=2,
                 restart_grace=grace)
    assert [e["seq"] for e in f.follow(timeout=10)] == [1, 2] and f.state.state == state and f.state.ended


def test_a_final_state_within_the_grace_is_the_earlier_try(tmp_path):
    _write(tmp_path / "events.jsonl", _FAILED_TRY)
    f = Follower(tmp_path, live=lambda: "Failure", poll_interval=0.02, live_every=0.05, restart_after=2)
    with pytest.raises(TimeoutError):
        list(f.follow(timeout=0.3))


def test_thread_calls_back_at_a_bounded_rate_and_stops_at_the_end(tmp_path):
    path = tmp_path / "events.jsonl"
    calls = []
    f = Follower(tmp_path, poll_interval=0.01).start(lambda changed: calls.append(set(changed)), min_interval=0.2)
    t0 = time.monotonic()
    for i in range(1, 41):
        _write(path, [{"type": "epoch", "epoch": i, "metrics": {"loss": 1 / i}}], start=i)
        time.sleep(0.01)
    _write(path, [{"type": "run_finished", "state": "Success"}], start=41)
    assert f.join(10) and f.error is None
    assert len(calls) <= (time.monotonic() - t0) / 0.2 + 2 and {"history", "state"} <= set().union(*calls)
    assert f.state.history["loss"][-1] == 1 / 40 and f.finished.is_set()
