"""The train job is killed at seeded random moments; the run completes through retries, resumes from
the last good checkpoint, loses at most one checkpoint interval, and ends where an uninterrupted run
with the same seed ends. Also: the uninterrupted run leaves no temp file, keeps its files private and
writes no secret from the environment; a flipped input byte stops the run before training.

Kills come from outside, as the OOM killer or a lost node would: the train job's process group is
found in /proc (its cmdline holds ``step train``, its environment the run directory).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlwf_nb.backends.local import read_plan
from mlwf_nb.rundir.events import read_events
from mlwf_nb.rundir.jobstate import parse_jobstate
from mlwf_nb.runs import submit
from tests.reliability.conftest import job_pids, tiny_overrides, wait_for

SECRET = "fake-secret-d41d8cd98f00b204e9800998ecf8427e"
TOLERANCE = {"accuracy": 0.02, "val_accuracy": 0.02, "loss": 0.02, "val_loss": 0.02}  # absolute, final epoch


@dataclass
class Moment:
    kind: str                 # "sigterm", "sigkill" (after `after` epochs of the try + delay), "ckpt-write"
    after: int = 1
    delay: float = 0.0


def _train_name(run: Path) -> str:
    return next(n for n, j in read_plan(run).jobs.items() if j.step == "train")


def _epochs(evs: list[dict], kind: str = "epoch") -> list[int]:
    return [e["epoch"] for e in evs if e["type"] == kind]


def _drive(run: Path, moments: list[Moment], timeout: float = 240) -> list[dict]:
    """Deliver each moment to try i of the train job; return what had happened before each kill."""
    jev = run / "jobs" / _train_name(run) / "events.jsonl"
    ckdir = run / "work" / "checkpoints"
    done = []
    for i, m in enumerate(moments):
        pid = wait_for(lambda i=i: job_pids(run, "train").get(i), timeout=timeout)
        assert pid, f"try {i} of the train job never started"
        n0 = len(_epochs(list(read_events(jev)))) if jev.exists() else 0
        if m.kind == "ckpt-write":
            old = {p.name for p in ckdir.iterdir()} if ckdir.exists() else set()  # temps of earlier kills
            assert wait_for(lambda old=old: ckdir.exists() and any(
                p.name.startswith(".train") and p.name not in old for p in ckdir.iterdir()),
                timeout=timeout, interval=0.001), "no checkpoint write seen"
            sig = signal.SIGKILL
        else:
            assert wait_for(lambda n0=n0, m=m: jev.exists() and len(_epochs(list(read_events(jev)))) >= n0 + m.after,
                            timeout=timeout, interval=0.005)
            time.sleep(m.delay)
            sig = signal.SIGTERM if m.kind == "sigterm" else signal.SIGKILL
        evs = list(read_events(jev))
        os.killpg(pid, sig)
        done.append({"moment": m, "last_epoch": max(_epochs(evs), default=0),
                     "last_saved": max(_epochs(evs, "checkpoint_saved"), default=0)})
    return done


def _tries(run: Path, name: str) -> list[list[dict]]:
    """The train job's relayed events, split by try (between its ``running`` and its end)."""
    tries: list[list[dict]] = []
    for e in read_events(run / "events.jsonl"):
        if e["type"] == "job_state" and e.get("name") == name and e["state"] == "running":
            tries.append([])
        elif tries and e.get("relay", "").startswith(name + ":"):
            tries[-1].append(e)
    return tries


def _exit_codes(run: Path, name: str) -> list[int]:
    return [r.exit_code for r in parse_jobstate(run / "jobstate.log")
            if r.job == name and r.state in ("JOB_SUCCESS", "JOB_FAILURE")]


def _check_recovery(run: Path, kills: list[dict], epochs: int) -> None:
    name = _train_name(run)
    tries = _tries(run, name)
    assert len(tries) == len(kills) + 1
    for k, (kill, nxt) in enumerate(zip(kills, tries[1:], strict=True)):
        restored = _epochs(nxt, "checkpoint_restored")
        assert len(restored) == 1, f"try {k + 1} did not restore a checkpoint: {nxt[:3]}"
        r = restored[0]
        # the last good checkpoint: at least the last one announced, at most the last epoch done
        assert kill["last_saved"] <= r <= max(kill["last_epoch"], kill["last_saved"]), (k, kill, r)
        assert kill["last_epoch"] - r <= 1, f"kill {k} lost more than one checkpoint interval: {kill}, {r}"
        ran = _epochs(nxt)
        assert not ran or ran[0] == r + 1, f"try {k + 1} re-ran epochs before {r + 1}: {ran}"
    history = json.loads((run / "outputs/history.json").read_text())
    assert history["epoch"] == epochs and len(history["history"]["loss"]) == epochs


def _assert_same_end(run: Path, ref: Path) -> dict:
    a = json.loads((run / "outputs/history.json").read_text())["history"]
    b = json.loads((ref / "outputs/history.json").read_text())["history"]
    diffs = {k: abs(a[k][-1] - b[k][-1]) for k in TOLERANCE if k in a}
    assert diffs and all(diffs[k] <= TOLERANCE[k] for k in diffs), diffs
    ma = json.loads((run / "outputs/metrics.json").read_text())["overall_accuracy"]
    mb = json.loads((ref / "outputs/metrics.json").read_text())["overall_accuracy"]
    assert abs(ma - mb) <= 0.02, (ma, mb)
    return diffs


@pytest.fixture(scope="module")
def baseline(rel_dataset, tmp_path_factory):
    """One uninterrupted tiny run (6 epochs), with a fake secret in the environment."""
    run_dir = tmp_path_factory.mktemp("baseline") / "run"
    old = os.environ.get("AWS_SECRET_ACCESS_KEY")
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET
    try:
        run = submit("tiny", run_dir=run_dir, overrides=tiny_overrides(rel_dataset, "train.epochs=6", "name=base"))
    finally:
        os.environ.pop("AWS_SECRET_ACCESS_KEY") if old is None else os.environ.update(AWS_SECRET_ACCESS_KEY=old)
    return run


@pytest.fixture(scope="module")
def killed(rel_dataset, tmp_path_factory, baseline):
    """A run like the baseline whose train job gets SIGTERM, SIGKILL during a checkpoint write, SIGKILL."""
    rng = random.Random(7)
    moments = [Moment("sigterm", after=1, delay=rng.uniform(0, 0.2)), Moment("ckpt-write"),
               Moment("sigkill", after=1, delay=rng.uniform(0, 0.3))]
    run = submit("tiny", run_dir=tmp_path_factory.mktemp("killed") / "run", overrides=tiny_overrides(
        rel_dataset, "train.epochs=6", "execution.retries=3", "name=killed"))
    kills = _drive(run.dir, moments)
    run.wait(timeout=600)
    baseline.wait(timeout=600)
    return run, kills


def test_sigterm_and_sigkills_resume_from_last_good_checkpoint(killed):
    run, kills = killed
    assert run.state == "Success", run.status()
    assert _exit_codes(run.dir, _train_name(run.dir)) == [75, -9, -9, 0]  # 75: SIGTERM -> checkpoint, exit
    _check_recovery(run.dir, kills, epochs=6)
    temps = [p for p in run.dir.rglob(".*") if not p.is_symlink()]
    assert not temps, temps  # the temps of the save killed mid-write were removed by the next save


def test_killed_run_ends_like_the_uninterrupted_one(killed, baseline):
    run, _ = killed
    assert run.state == "Success" and baseline.state == "Success"
    _assert_same_end(run.dir, baseline.dir)


def test_uninterrupted_run_is_atomic_private_and_secret_free(baseline):
    assert baseline.wait(timeout=600) == "Success", baseline.status()
    run = baseline.dir
    temps, loose, leaked = [], [], []
    for p in run.rglob("*"):
        if p.is_symlink():
            continue
        if p.name.startswith(".") or p.name.endswith(".tmp"):
            temps.append(p)
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{p.relative_to(run)} {oct(mode)}")
        if p.is_file() and SECRET.encode() in p.read_bytes():
            leaked.append(p)
    assert not temps, temps
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    assert not loose, loose
    assert not leaked, leaked


def test_flipped_byte_stops_the_run_before_training(rel_dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(rel_dataset, ds)
    target = ds / "images" / "GF-1_001.tif"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    manifest = json.loads((ds / "manifest.json").read_text())
    expected = manifest["files"]["images/GF-1_001.tif"]["sha256"]
    run = submit("tiny", run_dir=tmp_path / "run", overrides=tiny_overrides(ds, "name=flipped"))
    assert run.wait(timeout=300) == "Failure"
    st = run.status()["mlwf"]
    (failed,) = st["failed_jobs"]
    assert st["jobs"][failed]["step"] == "check"  # the scene's own check job, before any job reads it
    tail = st["jobs"][failed]["stderr_tail"]
    import hashlib

    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert "GF-1_001.tif" in tail and expected in tail and actual in tail, tail
    executed = {r.job for r in parse_jobstate(run.dir / "jobstate.log") if r.state == "EXECUTE"}
    assert not any(j.startswith("train") for j in executed), executed


@pytest.mark.soak
def test_soak_ten_kills(rel_dataset, tmp_path, baseline):
    rng = random.Random(11)
    moments = [Moment("sigterm", after=1, delay=rng.uniform(0, 0.3))]
    moments += [Moment("ckpt-write") if i % 3 == 0 else Moment("sigkill", after=1, delay=rng.uniform(0, 0.4))
                for i in range(10)]
    run = submit("tiny", run_dir=tmp_path / "run", overrides=tiny_overrides(
        rel_dataset, "train.epochs=20", f"execution.retries={len(moments)}", "name=soak"))
    kills = _drive(run.dir, moments)
    assert run.wait(timeout=900) == "Success", run.status()
    codes = _exit_codes(run.dir, _train_name(run.dir))
    assert codes[0] == 75 and codes[-1] == 0 and len(codes) == len(moments) + 1, codes
    _check_recovery(run.dir, kills, epochs=20)
