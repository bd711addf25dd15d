"""The one job-state vocabulary: maps, totals, and the events both backends write."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlwf_nb.rundir.events import job_state_event
from mlwf_nb.rundir.jobstate import parse_jobstate, status_dict, summarize
from mlwf_nb.rundir.states import (
    FINAL_STATES,
    JOB_STATES,
    PEGASUS_STATES,
    RUN_STATES,
    TOTALS_KEYS,
    check_job_state,
    job_state,
    totals,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "pegasus" / "samples"


def test_every_pegasus_word_maps_into_the_vocabulary():
    assert set(PEGASUS_STATES.values()) <= set(JOB_STATES)
    assert job_state("PRE_SCRIPT_TERMINATED") == "pre"  # the two old maps disagreed here
    assert job_state("POST_SCRIPT_SUCCESS") == "succeeded" and job_state("JOB_EVICTED") == "queued"
    assert job_state("DAGMAN_STARTED") is None


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Pegasus samples not found at {SAMPLES}")
@pytest.mark.parametrize("sample", ["process_wf_success", "process_wf_failure"])
def test_every_job_word_of_the_real_samples_is_mapped(sample):
    words = {r.state for r in parse_jobstate(SAMPLES / sample / "jobstate.log") if not r.is_internal}
    assert words and words <= set(PEGASUS_STATES), words - set(PEGASUS_STATES)


def test_final_states_are_run_states_and_include_plan_failed():
    assert set(RUN_STATES) >= FINAL_STATES
    assert "PlanFailed" in FINAL_STATES and "Lost" in FINAL_STATES and "Running" not in FINAL_STATES


def test_totals_counts_running_as_queued_and_unlisted_jobs_as_unready():
    t = totals(["running", "queued", "succeeded", "failed", "post"], total=8, ready=2)
    assert {k: t[k] for k in TOTALS_KEYS} == {"unready": 1, "ready": 2, "pre": 0, "queued": 2, "post": 1,
                                              "succeeded": 1, "failed": 1}
    assert t["total"] == 8 and t["percent_done"] == 12.5
    assert totals([])["percent_done"] == 0.0 and totals([], total=3)["unready"] == 3


def test_totals_refuses_a_word_outside_the_vocabulary():
    with pytest.raises(KeyError):
        totals(["success"])


def test_job_state_event_refuses_other_vocabularies():
    ev = job_state_event(job="ID1", name="a_ID1", step="a", state="queued", try_=1)
    assert ev["type"] == "job_state" and ev["state"] == "queued" and ev["try"] == 1
    for word in ("SUBMIT", "success", "SUCCESS", ""):
        with pytest.raises(ValueError, match="not one of"):
            check_job_state(word)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Pegasus samples not found at {SAMPLES}")
def test_status_dict_of_the_failure_sample():
    records = parse_jobstate(SAMPLES / "process_wf_failure" / "jobstate.log")
    st = status_dict(summarize(records), exit_code=1)
    assert st["dags"]["root"]["state"] == "Failure"
    assert st["totals"]["failed"] == 1 and st["totals"]["succeeded"] == 1 and st["totals"]["total"] == 2
