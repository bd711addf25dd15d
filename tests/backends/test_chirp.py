"""Live progress over HTCondor chirp, job side and relay side.

HTCondor's daemons cannot run on this machine: ``condor_chirp`` and ``condor_q`` are
mocked by small scripts on PATH that record their arguments / print a ClassAd as
``condor_q -json`` would. What is tested is our side of the protocol.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from mlwf_nb import chirp
from mlwf_nb.rundir.events import emit, read_events


def _script(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def fake_condor(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "chirp.log"
    _script(bin_dir, "condor_chirp", f'printf "%s\\n" "$@" >> {log}\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(chirp, "_last_sent", 0.0)
    return bin_dir, log


def test_classad_string_escapes_quotes_and_backslashes():
    assert chirp.classad_string('a"b\\c') == '"a\\"b\\\\c"'


def test_progress_events_are_published_as_a_job_attribute(fake_condor, monkeypatch):
    _, log = fake_condor
    monkeypatch.setenv("_CONDOR_CHIRP_CONFIG", "/scratch/.chirp.config")
    monkeypatch.delenv("MLWF_EVENTS", raising=False)
    emit("log", level="info", message="not progress")
    emit("epoch", epoch=3, metrics={"loss": 0.5})
    args = log.read_text().splitlines()
    assert args[:2] == ["set_job_attr", chirp.ATTRIBUTE]
    value = args[2]
    assert value.startswith('"') and value.endswith('"')
    event = json.loads(json.loads(value))  # a ClassAd string holding the event's JSON
    assert event["type"] == "epoch" and event["epoch"] == 3
    assert len(args) == 3  # the log event was not sent


def test_nothing_is_sent_outside_htcondor(fake_condor, monkeypatch):
    _, log = fake_condor
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    emit("epoch", epoch=1, metrics={})
    assert not log.exists()


def test_relay_reads_published_progress_of_running_jobs(fake_condor, tmp_path):
    from mlwf_nb.backends.pegasus import PegasusRelay

    bin_dir, _ = fake_condor
    ad = [{"ClusterId": 12, chirp.ATTRIBUTE: json.dumps({"type": "epoch", "epoch": 2, "ts": 5.0,
                                                         "metrics": {"loss": 0.4}})}]
    _script(bin_dir, "condor_q", f"cat <<'EOF'\n{json.dumps(ad)}\nEOF\n")
    run, submit = tmp_path / "run", tmp_path / "submit"
    run.mkdir()
    submit.mkdir()
    (submit / "jobstate.log").write_text(
        "1700000000 INTERNAL *** DAGMAN_STARTED 1.0 ***\n"
        "1700000001 train_ID0000001 SUBMIT 12.0 condorpool - 1\n"
        "1700000002 train_ID0000001 EXECUTE 12.0 condorpool - 1\n")
    relay = PegasusRelay(run, submit, interval=0.1)
    relay.poll()
    events = list(read_events(run / "events.jsonl"))
    via = [e for e in events if e.get("via") == "chirp"]
    assert len(via) == 1
    assert via[0]["type"] == "epoch" and via[0]["epoch"] == 2 and via[0]["name"] == "train_ID0000001"
    relay._chirp_at = -1e9
    relay.poll()  # the same attribute again: not relayed twice
    assert len([e for e in read_events(run / "events.jsonl") if e.get("via") == "chirp"]) == 1
