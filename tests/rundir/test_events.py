"""events.jsonl: one writer numbering events, readers following from an offset."""

from __future__ import annotations

import json

import pytest

from mlwf_nb._io import read_appended
from mlwf_nb.rundir.events import EventReader, EventWriter, emit, read_events


def test_writer_numbers_events_and_continues_after_reopen(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        assert w.write({"type": "run_started"})["seq"] == 1
        w.write({"type": "log", "message": "x"})
    with EventWriter(path) as w:
        assert w.write({"type": "run_finished", "state": "Success"})["seq"] == 3
    assert [e["seq"] for e in read_events(path)] == [1, 2, 3]


def test_a_torn_last_line_is_cut_before_appending(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.write({"type": "run_started"})
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"seq":2,"ty')  # a writer killed mid-line
    with EventWriter(path) as w:
        assert w.write({"type": "log", "message": "after"})["seq"] == 2
    assert [e["type"] for e in read_events(path)] == ["run_started", "log"]


def test_reader_keeps_a_partial_line_for_later(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2')
    reader = EventReader(path)
    assert [e["seq"] for e in reader.poll()] == [1]
    assert reader.poll() == []
    with open(path, "ab") as fh:
        fh.write(b"}\n")
    assert [e["seq"] for e in reader.poll()] == [2]
    assert EventReader(tmp_path / "missing.jsonl").poll() == []


def test_read_appended_returns_whole_lines_and_the_new_offset(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a\nb\nc")
    chunk, offset = read_appended(path, 0)
    assert (chunk, offset) == (b"a\nb\n", 4)
    assert read_appended(path, offset) == (b"", 4)
    assert read_appended(path, 0, max_bytes=3) == (b"a\n", 2)
    path.write_bytes(b"long line\nx\npartial")
    assert read_appended(path, 0, max_bytes=4) == (b"long line\n", 10)  # a line longer than max_bytes: whole
    assert read_appended(path, 12, max_bytes=4) == (b"", 12)  # still being written


def test_emit_appends_to_the_job_file_named_by_the_environment(tmp_path, monkeypatch):
    target = tmp_path / "job.jsonl"
    monkeypatch.setenv("MLWF_EVENTS", str(target))
    monkeypatch.setenv("MLWF_JOB", "ID0000007")
    emit("epoch", epoch=1, metrics={"loss": 0.5})
    (event,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert event["job"] == "ID0000007" and event["type"] == "epoch" and "seq" not in event
    with pytest.raises(ValueError, match="unknown event type"):
        emit("not-a-type")
