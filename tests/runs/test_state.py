"""RunState: one fold of the events, whichever backend wrote them."""

from __future__ import annotations

import json

from mlwf_nb.backends.local import LocalBackend
from mlwf_nb.backends.pegasus import PegasusRelay
from mlwf_nb.rundir.events import job_state_event, read_events
from mlwf_nb.rundir.states import JOB_STATES
from mlwf_nb.runs import RunState
from mlwf_nb.runs.state import RunLengthList
from tests.backends.conftest import RunBuilder


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


def _job(name: str, state: str, try_: int = 1, exit_code: int | None = None) -> dict:
    return job_state_event(job=name.rsplit("_", 1)[1], name=name, step=name.rsplit("_", 1)[0], state=state,
                           try_=try_, exit_code=exit_code)


def test_a_word_outside_the_vocabulary_is_not_applied_and_says_so():
    rs = RunState()
    rs.apply([{"seq": 1, **_job("a_ID1", "queued")},
              {"seq": 2, "type": "job_state", "name": "a_ID1", "state": "SUCCESS", "try": 1}])
    assert rs.jobs["a_ID1"]["state"] == "queued"
    assert "job state 'SUCCESS' is not one of" in rs.logs[-1]


def test_percent_done_counts_against_the_workflow_total_so_it_never_goes_down():
    rs = RunState()
    seen = []
    events = [{"type": "run_started", "total": 4}]
    for i in range(4):  # jobs appear one by one: a count over the jobs seen would fall back each time
        events += [_job(f"a_ID{i}", "queued"), _job(f"a_ID{i}", "running"), _job(f"a_ID{i}", "succeeded", exit_code=0)]
    for seq, ev in enumerate(events, 1):
        rs.apply([{"seq": seq, **ev}])
        seen.append(rs.percent_done)
    assert seen == sorted(seen) and seen[-1] == 100.0 and rs.totals()["total"] == 4


def test_a_resumed_run_is_running_again():
    rs = RunState()
    rs.apply([{"seq": 1, "type": "run_started", "total": 1}, {"seq": 2, "type": "run_finished", "state": "Failure"}])
    assert rs.ended and rs.state == "Failure"
    rs.apply([{"seq": 3, "type": "run_started", "total": 1, "resumed": True}])
    assert not rs.ended and rs.state == "Running"


def _fold(path) -> RunState:
    rs = RunState()
    rs.apply(list(read_events(path)))
    return rs


def test_both_backends_events_of_one_job_sequence_fold_to_the_same_run_state(tmp_path):
    """A real local run, and the Pegasus relay reading the jobstate.log that run wrote: one RunState."""
    b = RunBuilder(tmp_path / "local")
    b.sh("prep", "echo x > work/a", outputs=["work/a"])
    b.sh("train", "if [ -e work/t ]; then cp work/a work/m; else touch work/t; exit 3; fi",
         inputs=["work/a"], outputs=["work/m"], retry=1)
    b.sh("bad", "exit 4", inputs=["work/m"], outputs=["work/b"], retry=1)
    b.sh("never", "true", inputs=["work/b"])  # its parent failed: never runs
    local = b.write()
    LocalBackend().submit(local, wait=True)
    relayed = tmp_path / "relayed"
    (relayed / "jobs").mkdir(parents=True)
    relay = PegasusRelay(relayed, local)  # the local run's directory read as a submit directory
    while relay.poll():
        pass
    ours, theirs = _fold(local / "events.jsonl"), _fold(relayed / "events.jsonl")
    assert ours.state == theirs.state == "Failure"

    def table(rs: RunState) -> dict:
        return {n: (j["state"], j["exit_code"], j["tries"], j["step"]) for n, j in rs.jobs.items()}

    assert table(ours) == table(theirs) == {
        "prep_ID0000001": ("succeeded", 0, 1, "prep"), "train_ID0000002": ("succeeded", 0, 2, "train"),
        "bad_ID0000003": ("failed", 4, 2, "bad")}
    # the local executor knows the plan (4 jobs); the relay without a DAG file knows the 3 jobs seen
    assert ours.totals() == {**theirs.totals(), "unready": 1, "total": 4, "percent_done": 50.0}
    assert all(e["state"] in JOB_STATES for path in (local, relayed)
               for e in read_events(path / "events.jsonl") if e["type"] == "job_state")


def test_status_has_pegasus_shape(tmp_path):
    rs = RunState()
    rs.apply([{"seq": 1, "type": "run_started", "total": 3}, {"seq": 2, **_job("a_ID1", "running")},
              {"seq": 3, **_job("b_ID2", "failed", exit_code=2)}])
    st = rs.status("wf.dag")
    assert set(st) == {"totals", "dags", "mlwf"}
    assert st["dags"]["root"]["state"] == "Running" and st["dags"]["root"]["dagname"] == "wf.dag"
    assert st["totals"]["queued"] == 1 and st["totals"]["failed"] == 1 and st["totals"]["unready"] == 1
    assert st["mlwf"]["failed_jobs"] == ["b_ID2"] and json.dumps(st)


def test_curves_are_kept_per_job_and_a_retrained_epoch_replaces_the_old_one():
    rs = RunState()
    ev = [{"type": "epoch", "job": "ID2", "epoch": 1, "metrics": {"loss": 0.9}},
          {"type": "epoch", "job": "ID2", "epoch": 2, "metrics": {"loss": 0.8}},
          {"type": "epoch", "job": "ID3", "epoch": 1, "metrics": {"loss": 5.0}},  # a parallel trial
          {"type": "epoch", "job": "ID2", "epoch": 2, "metrics": {"loss": 0.7}},  # retried from epoch 2
          {"type": "epoch", "job": "ID7", "epoch": 1, "metrics": {"loss": 0.5}}]  # the final training
    rs.apply([{"seq": i, **e} for i, e in enumerate(ev[:4], 1)])
    assert rs.histories["ID2"] == {"loss": [0.9, 0.7]} and rs.history == {"loss": [5.0]}
    assert rs.apply([{"seq": 5, **ev[4]}]) == {"history", "events"} and rs.history == {"loss": [0.5]}
