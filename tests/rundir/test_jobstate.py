from __future__ import annotations

from pathlib import Path

import pytest

from mlwf_nb.rundir.jobstate import (
    JobStateReader,
    JobStateWriter,
    dagman_exit,
    parse_jobstate,
    parse_line,
    status_dict,
    summarize,
)

SAMPLES = Path("/work/shared/pegasus/samples")
needs_samples = pytest.mark.skipif(not SAMPLES.exists(), reason="Pegasus samples not present")


@needs_samples
def test_failure_sample_states_and_exit_codes():
    records = parse_jobstate(SAMPLES / "process_wf_failure" / "jobstate.log")
    assert len(records) == 25
    s = summarize(records, ["create_dir_process_0_local", "ls_ID0000001", "stage_out_local_local_0_0"])
    assert s["ls_ID0000001"].state == "failed"
    assert s["ls_ID0000001"].exit_code == 2
    assert s["ls_ID0000001"].tries == 2
    assert s["ls_ID0000001"].site == "condorpool"
    assert s["create_dir_process_0_local"].state == "succeeded"
    assert s["create_dir_process_0_local"].exit_code == 0
    assert s["stage_out_local_local_0_0"].state == "unready"
    assert dagman_exit(records) == 1
    st = status_dict(s, exit_code=dagman_exit(records), dagname="process-0.dag")
    assert st["dags"]["root"]["state"] == "Failure"
    assert st["totals"]["failed"] == 1 and st["totals"]["succeeded"] == 1 and st["totals"]["total"] == 3


@needs_samples
def test_success_sample_all_succeeded():
    records = parse_jobstate(SAMPLES / "process_wf_success" / "jobstate.log")
    s = summarize(records)
    assert set(s) == {"create_dir_process_0_local", "ls_ID0000001", "stage_out_local_local_0_0",
                      "cleanup_process_0_local", "register_local_0_0"}
    assert all(v.state == "succeeded" and v.exit_code == 0 and v.tries == 1 for v in s.values())
    st = status_dict(s, exit_code=dagman_exit(records))
    assert st["dags"]["root"]["state"] == "Success"
    assert st["totals"]["percent_done"] == 100.0


@needs_samples
@pytest.mark.parametrize("sample", ["process_wf_success", "process_wf_failure"])
def test_format_round_trips_sample_lines(sample):
    lines = (SAMPLES / sample / "jobstate.log").read_text().splitlines()
    for line in lines:
        rec = parse_line(line)
        assert rec is not None
        assert rec.format() == line


def test_parse_line_fields():
    rec = parse_line("1677913864 ls_ID0000001 JOB_FAILURE 2 condorpool - 2")
    assert (rec.ts, rec.job, rec.state, rec.exit_code, rec.site, rec.seq) == (
        1677913864, "ls_ID0000001", "JOB_FAILURE", 2, "condorpool", 2)
    assert rec.condor_id is None
    rec = parse_line("1677913809 ls_ID0000001 SUBMIT 9.0 condorpool - 2")
    assert rec.condor_id == "9.0" and rec.exit_code is None
    rec = parse_line("1677913884 INTERNAL *** DAGMAN_FINISHED 1 ***")
    assert rec.is_internal and rec.state == "DAGMAN_FINISHED" and rec.exit_code == 1
    assert parse_line("") is None and parse_line("garbage line here") is None


def test_writer_and_reader_follow_from_offset(tmp_path):
    path = tmp_path / "jobstate.log"
    reader = JobStateReader(path)
    assert reader.poll() == []
    with JobStateWriter(path) as w:
        w.internal("DAGMAN_STARTED", "1.0", ts=10)
        w.job("a_ID1", "SUBMIT", "2.0", "local", 1, ts=11)
        w.flush()
        got = reader.poll()
        assert [r.state for r in got] == ["DAGMAN_STARTED", "SUBMIT"]
        w.job("a_ID1", "EXECUTE", "2.0", "local", 1, ts=12)
    with open(path, "a") as fh:
        fh.write("13 a_ID1 JOB_TERM")  # torn line is held back
    assert [r.state for r in reader.poll()] == ["EXECUTE"]
    with open(path, "a") as fh:
        fh.write("INATED 2.0 local - 1\n")
    assert [r.state for r in reader.poll()] == ["JOB_TERMINATED"]
    assert path.read_text().splitlines()[0] == "10 INTERNAL *** DAGMAN_STARTED 1.0 ***"
    s = summarize(parse_jobstate(path))
    assert s["a_ID1"].state == "running" and s["a_ID1"].tries == 1


def test_100k_lines_parse(tmp_path):
    path = tmp_path / "jobstate.log"
    states = ["SUBMIT", "EXECUTE", "JOB_TERMINATED", "JOB_SUCCESS", "POST_SCRIPT_STARTED",
              "POST_SCRIPT_TERMINATED", "POST_SCRIPT_SUCCESS"]
    lines = []
    n = 0
    while len(lines) < 100_000:
        n += 1
        for st in states:
            info = "0" if st.endswith("SUCCESS") else f"{n + 1}.0"
            lines.append(f"1700000000 t_ID{n:07d} {st} {info} local - {n}")
    path.write_text("\n".join(lines) + "\n")
    # How fast: benchmarks (row "growth", mlwf status at 100,000 lines), not here, where load moves it
    s = summarize(parse_jobstate(path))
    assert len(s) == n and all(v.state == "succeeded" for v in s.values())
