"""Relay of a Pegasus run into ``<run>/events.jsonl``: DAGMan's jobstate.log, the jobs' own events, chirp.

:class:`PegasusRelay` turns the submit directory's ``jobstate.log`` into
``job_state``/``run_started``/``run_finished`` events in ``<run>/events.jsonl``
(the run's single writer) and relays the jobs' own events from
``<run>/jobs/<job>/events.jsonl`` (written live on shared-filesystem sites via
``MLWF_EVENTS``, staged back at job end under condorio) and the progress running jobs
publish through HTCondor (:mod:`mlwf_nb.chirp`). Offsets are kept in
``<run>/pegasus-relay.json``, so a restarted relay never repeats an event.
"""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json, write_json
from mlwf_nb.backends.base import RunDir
from mlwf_nb.backends.pegasus_jobs import AUXILIARY_KINDS, map_job_name
from mlwf_nb.backends.submitdir import read_braindump, read_dag
from mlwf_nb.errors import MlwfError
from mlwf_nb.rundir import jobstate
from mlwf_nb.rundir.events import EventReader, EventWriter, job_state_event

__all__ = ["PegasusRelay", "CHIRP_INTERVAL"]

_WAIT_FOR_POST = frozenset({"JOB_TERMINATED", "JOB_SUCCESS", "JOB_FAILURE"})
_RELAY_FILE = "pegasus-relay.json"
_RELAY_LOCK = "pegasus-relay.lock"

CHIRP_INTERVAL = 10.0
"""Seconds between two ``condor_q`` reads of the jobs' published progress."""


class PegasusRelay:
    """Relays a submit directory's jobstate.log and the jobs' event files into ``<run>/events.jsonl``.

    ``poll()`` never blocks; :meth:`start` runs it from a daemon thread at a
    bounded rate until ``run_finished`` was written.
    """

    def __init__(self, run_dir: RunDir, submit_dir: RunDir, *, interval: float = 2.0) -> None:
        self.run = Path(run_dir)
        self.submit_dir = Path(submit_dir)
        self.interval = interval
        self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chirp_at = -1e9
        self._chirp_seen: dict[str, Any] = {}

    def _load(self) -> None:
        """Take up where the last relay of this run (in any process) left off."""
        state = self._load_state()
        self._saved: dict[str, Any] | None = state
        self.finished: bool = bool(state.get("finished"))
        self.started: bool = bool(state.get("started"))
        self._jobstate = jobstate.JobStateReader(self.submit_dir / "jobstate.log", int(state.get("jobstate", 0)))
        self._job_offsets: dict[str, int] = dict(state.get("jobs", {}))
        self._records: dict[str, list[jobstate.JobStateRecord]] = {}
        self._replay(self._jobstate.offset)
        self._last: dict[str, tuple[str, int]] = {k: tuple(v) for k, v in state.get("last", {}).items()}

    def _load_state(self) -> dict[str, Any]:
        try:
            data = read_json(self.run / _RELAY_FILE)
        except (FileNotFoundError, ValueError):
            return {}
        if data.get("submit_dir") != str(self.submit_dir):
            return {"jobs": data.get("jobs", {})}  # a new submit dir (replan): keep job-file offsets only
        return dict(data)

    def _save_state(self) -> None:
        self._saved = {
            "submit_dir": str(self.submit_dir), "jobstate": self._jobstate.offset, "jobs": self._job_offsets,
            "started": self.started, "finished": self.finished,
            "last": {k: list(v) for k, v in self._last.items()}}
        write_json(self.run / _RELAY_FILE, self._saved)

    def _replay(self, offset: int) -> None:
        """Rebuild per-job records from the part of jobstate.log already relayed (after a restart)."""
        if offset <= 0:
            return
        try:
            with open(self.submit_dir / "jobstate.log", "rb") as fh:
                text = fh.read(offset).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            rec = jobstate.parse_line(line)
            if rec is not None and not rec.is_internal:
                self._records.setdefault(rec.job, []).append(rec)

    def _emit(self, w: EventWriter, job: str) -> int:
        s = jobstate.summarize(self._records[job])[job]
        key = (s.state, s.tries)
        if self._last.get(job) == key:
            return 0
        self._last[job] = key
        step, jid = map_job_name(job)
        w.write(job_state_event(job=jid or job, name=job, step=step, state=s.state, exit_code=s.exit_code,
                                try_=s.tries, site=s.site, auxiliary=step in AUXILIARY_KINDS))
        return 1

    def _job_event(self, w: EventWriter, rec: jobstate.JobStateRecord) -> int:
        self._records.setdefault(rec.job, []).append(rec)
        if rec.state in _WAIT_FOR_POST:
            return 0  # pegasus-exitcode (the POST script) decides; its record follows
        return self._emit(w, rec.job)

    def poll(self) -> int:
        """Relay what is new; returns the number of events written.

        Any number of relays of one run (a thread in the submitting kernel, ``Run.status()``
        in another) take turns under a lock, each from the offsets the last one saved, so
        ``events.jsonl`` keeps a single writer at a time and no event is relayed twice.
        """
        with open(self.run / _RELAY_LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                if self._load_state() != self._saved:  # another relay went on meanwhile
                    self._load()
            except OSError:
                pass
            return self._poll()

    def restart(self) -> None:
        """DAGMan runs the workflow again (``pegasus-run``): relay its next start and end as the run's."""
        with open(self.run / _RELAY_LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            self._load()
            self.started = self.finished = False
            self._save_state()

    def _poll(self) -> int:
        records = self._jobstate.poll()
        job_files = sorted((self.run / "jobs").glob("*/*events.jsonl"))
        if not records and not job_files:
            return 0
        n = 0
        with EventWriter(self.run / "events.jsonl") as w:
            for rec in records:
                if rec.is_internal:
                    if rec.state == "DAGMAN_STARTED" and not self.started:
                        self.started = True
                        w.write({"type": "run_started", "backend": "pegasus", "submit_dir": str(self.submit_dir),
                                 "total": _dag_jobs(self.submit_dir)})
                        n += 1
                    elif rec.state == "DAGMAN_FINISHED" and not self.finished:
                        n += self._relay_jobs(w)
                        n += sum(self._emit(w, job) for job in self._records)  # jobs without POST
                        failed = [j for j, (st, _) in self._last.items() if st == "failed"]
                        state = "Success" if rec.exit_code == 0 and not failed else "Failure"
                        w.write({"type": "run_finished", "state": state, "failed_jobs": failed})
                        self.finished = True
                        n += 1
                    continue
                n += self._job_event(w, rec)
            n += self._relay_jobs(w)
            n += self._relay_chirp(w)
        self._save_state()
        return n

    def _relay_chirp(self, w: EventWriter) -> int:
        """Progress that running jobs published as HTCondor job attributes (see :mod:`mlwf_nb.chirp`)."""
        from mlwf_nb import chirp

        now = time.monotonic()
        if now - self._chirp_at < CHIRP_INTERVAL:
            return 0
        self._chirp_at = now
        running: dict[int, str] = {}
        for job, recs in self._records.items():
            last = recs[-1]
            if last.state in ("SUBMIT", "EXECUTE") and last.condor_id:
                try:
                    running[int(float(last.condor_id))] = job
                except ValueError:
                    continue
        seen = self._chirp_seen
        n = 0
        for cluster, event in chirp.read_attributes(sorted(running)).items():
            job = running[cluster]
            key = (event.get("ts"), event.get("type"), event.get("epoch"))
            if seen.get(job) == key:
                continue
            seen[job] = key
            _, jid = map_job_name(job)
            w.write({**{k: v for k, v in event.items() if k not in ("v", "seq")},
                     "job": event.get("job") or jid or job, "name": job, "via": "chirp"})
            n += 1
        return n

    def _relay_jobs(self, w: EventWriter) -> int:
        n = 0
        for path in sorted((self.run / "jobs").glob("*/*events.jsonl")):
            job = path.parent.name
            reader = EventReader(path, self._job_offsets.get(job, 0))
            for ev in reader.poll():
                if isinstance(ev, dict):
                    ev.setdefault("job", job)
                    w.write(ev)
                    n += 1
            self._job_offsets[job] = reader.offset
        return n

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.finished:
            try:
                self.poll()
            except OSError:
                pass  # transient (file being replaced); try again next tick
            self._stop.wait(self.interval)

    def start(self) -> PegasusRelay:
        """Follow in a daemon thread until the run finishes or :meth:`stop` is called."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=f"mlwf-relay-{self.run.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the relay thread to end (the run finished)."""
        if self._thread is not None:
            self._thread.join(timeout)


def _dag_jobs(submit_dir: Path) -> int:
    """How many jobs the planned DAG has (0 when it cannot be read)."""
    try:
        bd = read_braindump(submit_dir)
        return len(read_dag(submit_dir / str(bd.get("dag") or f"{bd.get('pegasus_wf_name', '')}.dag"))[0])
    except (OSError, MlwfError):
        return 0
