"""The detached local executor: runs a planned workflow as a bounded pool of subprocesses.

``python -m mlwf_nb.backends._executor RUN_DIR [--jobs N]`` is started by
:class:`mlwf_nb.backends.local.LocalBackend` in its own session. It holds an
exclusive ``flock`` on ``executor.log`` while alive (so liveness needs no pid
guessing), writes ``executor.pid`` and touches ``executor.heartbeat`` every
~2 s. Job completion arrives through one waiting thread per job that pushes to a
queue; the main loop blocks on that queue with a short timeout to relay job
events, fire ``checkpoint.time``/``maxwalltime`` signals and beat the heartbeat.
Dependency bookkeeping is O(1) per job (in-degree counters). SIGTERM (cancel)
kills running jobs, records them as aborted and finishes with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from mlwf_nb._io import write_text
from mlwf_nb.backends.jobstate import JobStateWriter, parse_jobstate, summarize
from mlwf_nb.backends.local import CANCELLED_EXIT, Plan, PlannedJob, read_plan
from mlwf_nb.errors import BackendError
from mlwf_nb.events import ENV_EVENTS, ENV_JOB, EventReader, EventWriter
from mlwf_nb.safety import file_mode, umask

__all__ = ["Executor", "run_executor", "main"]

SITE = "local"
RELAY_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 2.0


class _JobEvents(EventReader):
    """EventReader that also returns the byte offset just past each event."""

    def poll_with_offsets(self) -> list[tuple[dict[str, Any], int]]:
        """Return ``(event, end offset)`` for each whole line appended since the last call."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(8 << 20)
        except FileNotFoundError:
            return []
        out = []
        pos = 0
        while (end := chunk.find(b"\n", pos)) >= 0:
            raw = chunk[pos:end]
            pos = end + 1
            if raw.strip():
                with contextlib.suppress(ValueError):
                    out.append((json.loads(raw), self.offset + pos))
        self.offset += pos
        return out


class _Running:
    __slots__ = ("cid", "killed", "proc", "seq", "try_")

    def __init__(self, proc: subprocess.Popen[bytes] | None, try_: int, cid: str, seq: int) -> None:
        self.proc, self.try_, self.cid, self.seq, self.killed = proc, try_, cid, seq, False


def _relay_offsets(events: Path) -> dict[str, int]:
    """Each job's largest relayed offset, from the ``relay`` field of past events."""
    out: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError), open(events, "rb") as fh:
        for raw in fh:
            if b'"relay"' not in raw:
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                name, _, off = json.loads(raw)["relay"].rpartition(":")
                out[name] = max(out.get(name, 0), int(off))
    return out


def _kill_orphans(run: Path, log: Path, unfinished: set[str]) -> None:
    """Kill process groups of jobs a dead executor left running (``start`` lines of its log)."""
    if not unfinished:
        return
    pids = {}
    with contextlib.suppress(FileNotFoundError), open(log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 6 and parts[0] == "start" and parts[1] in unfinished:
                pids[parts[1]] = int(parts[5])
    marker = f"MLWF_RUN_DIR={run}".encode()
    for pid in pids.values():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


class Executor:
    """Runs the jobs of one run directory; see the module docstring."""

    def __init__(self, run_dir: str | os.PathLike[str], jobs: int | None = None,
                 plan: Plan | None = None) -> None:
        self.run = Path(run_dir).resolve()
        self.width = max(1, jobs or os.cpu_count() or 1)
        self.plan = plan or read_plan(self.run)
        self.q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.running: dict[str, _Running] = {}
        self.ready: deque[str] = deque()
        self.failed: list[str] = []
        self.cancelling = False
        self._deadlines: list[tuple[float, int, str, int, int]] = []
        self._dirs: set[str] = set()
        self._base_env = dict(os.environ, MLWF_RUN_DIR=str(self.run))
        self.work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    # --- setup -----------------------------------------------------------------------------
    def _lock(self) -> IO[str]:
        log = open(self.run / "executor.log", "a", encoding="utf-8", buffering=1 << 14)  # noqa: SIM115
        for _ in range(100):  # status() probes take a shared lock for an instant
            try:
                fcntl.flock(log.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return log
            except BlockingIOError:
                time.sleep(0.02)
        log.close()
        raise BackendError(f"another executor holds {self.run / 'executor.log'}; it is still running")

    def _restore(self) -> None:
        """Read jobstate.log: done jobs, try counts, condor cluster and submit sequence."""
        records = parse_jobstate(self.run / "jobstate.log")
        summaries = summarize(records)
        self.done = {n for n, s in summaries.items() if s.state == "succeeded"}
        self.tries = {n: s.tries for n, s in summaries.items()}
        self.cluster = max((int(r.info.split(".")[0]) for r in records
                            if r.info and "." in r.info and r.info.split(".")[0].isdigit()), default=0)
        self.seq = max((r.seq for r in records if r.seq is not None), default=0)
        unfinished = {n for n, s in summaries.items() if s.state not in ("succeeded", "failed")}
        _kill_orphans(self.run, self.run / "executor.log", unfinished)
        self.resumed = bool(records)

    def _init_graph(self) -> None:
        plan = self.plan
        self.indeg = {n: sum(p not in self.done for p in plan.parents.get(n, ()))
                      for n in plan.jobs if n not in self.done}
        self.ready.extend(n for n, d in self.indeg.items() if d == 0)
        self.run_tries = dict.fromkeys(plan.jobs, 0)
        offsets = _relay_offsets(self.run / "events.jsonl") if self.resumed else {}
        self.readers = {n: _JobEvents(self.run / "jobs" / n / "events.jsonl", offsets.get(n, 0))
                        for n in plan.jobs}

    # --- events and jobstate ---------------------------------------------------------------
    def _job_event(self, pj: PlannedJob, state: str, try_: int, exit_code: int | None = None) -> None:
        self.events.write({"job": pj.id, "type": "job_state", "name": pj.name, "step": pj.step,
                           "state": state, "exit_code": exit_code, "try": try_})

    def _relay(self, name: str) -> None:
        batch = self.readers[name].poll_with_offsets()
        if not batch:
            return
        job_id = self.plan.jobs[name].id
        for ev, end in batch:
            if not isinstance(ev, dict):
                continue
            ev.setdefault("job", job_id)
            ev["relay"] = f"{name}:{end}"
            self.events.write(ev)

    # --- starting and finishing jobs --------------------------------------------------------
    def _mkdir(self, path: Path) -> None:
        key = str(path)
        if key not in self._dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._dirs.add(key)

    def _start(self, name: str) -> None:
        """Book a try of ``name`` (SUBMIT) and hand it to a launcher thread."""
        pj = self.plan.jobs[name]
        try_ = self.tries.get(name, 0)
        self.tries[name] = try_ + 1
        self.run_tries[name] += 1
        self.cluster += 1
        self.seq += 1
        r = _Running(None, try_, f"{self.cluster}.0", self.seq)
        env = dict(self._base_env, **pj.env)
        env[ENV_EVENTS] = str(self.run / "jobs" / name / "events.jsonl")
        env[ENV_JOB] = pj.id
        env["MLWF_TRY"] = str(try_)
        self.jobstate.job(name, "SUBMIT", r.cid, SITE, r.seq)
        self._job_event(pj, "SUBMIT", try_)
        self.running[name] = r
        self.work.put((name, try_, pj, env))

    def _launch(self, name: str, try_: int, pj: PlannedJob, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
        """Create the job's files and start it (in a launcher thread, so starts overlap)."""
        jdir = self.run / "jobs" / name
        jdir.mkdir(parents=True, exist_ok=True)
        with open(self.run / pj.stderr if pj.stderr else jdir / f"stderr.{try_:03d}", "wb") as err:
            try:
                for lfn in pj.outputs:  # a job that cannot get its output folder fails; the executor goes on
                    self._mkdir((self.run / lfn).parent)
                with open(self.run / pj.stdout if pj.stdout else jdir / f"stdout.{try_:03d}", "wb") as out, \
                        (open(self.run / pj.stdin, "rb") if pj.stdin else contextlib.nullcontext()) as inp:
                    return subprocess.Popen(pj.argv, cwd=self.run, env=env, stdout=out, stderr=err,
                                            stdin=inp if inp is not None else subprocess.DEVNULL,
                                            start_new_session=True)
            except OSError as exc:
                err.write(f"cannot start job {name} ({' '.join(pj.argv[:1])}): {exc}\n".encode())
                return None

    def _launcher(self) -> None:
        """One pool slot: start jobs from the work queue and wait for them."""
        while (item := self.work.get()) is not None:
            name, try_ = item[0], item[1]
            if self.cancelling:  # queued but never started: aborted
                self.q.put(("started", name, try_, None))
                self.q.put(("done", name, try_, -9))
                continue
            try:
                proc = self._launch(*item)
            except OSError:
                proc = None
            self.q.put(("started", name, try_, proc))
            self.q.put(("done", name, try_, proc.wait() if proc is not None else 127))

    def _started(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        r = self.running[name]
        r.proc = proc
        pj = self.plan.jobs[name]
        if proc is None and self.cancelling:
            r.killed = True
            return
        self.jobstate.job(name, "EXECUTE", r.cid, SITE, r.seq)
        self._job_event(pj, "EXECUTE", r.try_)
        if proc is None:
            return
        self.log.write(f"start {name} try {r.try_} pid {proc.pid}\n")
        if self.cancelling:
            self._signal(name, r.try_, signal.SIGKILL)
            return
        now = time.monotonic()
        for after, sig in ((pj.checkpoint_time, signal.SIGTERM), (pj.maxwalltime, signal.SIGKILL)):
            if after is not None:
                heapq.heappush(self._deadlines, (now + after, r.seq, name, r.try_, sig))

    def _finish(self, name: str, rc: int) -> None:
        r = self.running.pop(name)
        pj = self.plan.jobs[name]
        self._relay(name)
        w = self.jobstate
        if r.killed and self.cancelling:
            w.job(name, "JOB_ABORTED", r.cid, SITE, r.seq)
            w.job(name, "JOB_FAILURE", -9, SITE, r.seq)
            rc = rc if rc else -9
        else:
            w.job(name, "JOB_TERMINATED", r.cid, SITE, r.seq)
            w.job(name, "JOB_SUCCESS" if rc == 0 else "JOB_FAILURE", rc, SITE, r.seq)
            w.job(name, "POST_SCRIPT_STARTED", r.cid, SITE, r.seq)
            w.job(name, "POST_SCRIPT_TERMINATED", r.cid, SITE, r.seq)
            w.job(name, "POST_SCRIPT_SUCCESS" if rc == 0 else "POST_SCRIPT_FAILURE", 0 if rc == 0 else 1,
                  SITE, r.seq)
        self._job_event(pj, "SUCCESS" if rc == 0 else "FAILURE", r.try_, rc)
        if rc == 0:
            self.done.add(name)
            for child in self.plan.children.get(name, ()):
                self.indeg[child] -= 1
                if self.indeg[child] == 0 and not self.cancelling:
                    self.ready.append(child)
        elif self.run_tries[name] <= pj.retry and not self.cancelling:
            self.ready.appendleft(name)
        else:
            self.failed.append(name)

    def _signal(self, name: str, try_: int, sig: int) -> None:
        r = self.running.get(name)
        if r is None or r.try_ != try_ or r.proc is None:
            return
        r.killed = r.killed or sig == signal.SIGKILL
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(r.proc.pid, sig)

    def _cancel(self) -> None:
        if self.cancelling:
            return
        self.cancelling = True
        self.log.write("cancel requested: killing running jobs\n")
        self.ready.clear()
        for name, r in list(self.running.items()):
            self._signal(name, r.try_, signal.SIGKILL)

    # --- main loop ------------------------------------------------------------------------------
    def _timeout(self, now: float) -> float:
        if self._deadlines:
            return max(0.0, min(RELAY_INTERVAL, self._deadlines[0][0] - now))
        return RELAY_INTERVAL

    def _step(self, next_relay: float, next_beat: float) -> tuple[float, float]:
        # like DAGMan, submit ahead of free slots (SUBMIT = queued); the launcher threads bound
        # what runs at once (EXECUTE), and a freed slot finds its next job waiting
        while self.ready and len(self.running) < 2 * self.width and not self.cancelling:
            self._start(self.ready.popleft())
        self.jobstate.flush()
        self.log.flush()
        try:
            item = self.q.get(timeout=self._timeout(time.monotonic()))
            while True:
                if item[0] == "cancel":
                    self._cancel()
                elif item[0] == "started":
                    self._started(item[1], item[3])
                else:
                    self._finish(item[1], item[3])
                item = self.q.get_nowait()
        except queue.Empty:
            pass
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, name, try_, sig = heapq.heappop(self._deadlines)
            self._signal(name, try_, sig)
        if now >= next_relay:
            for name in self.running:
                self._relay(name)
            next_relay = now + RELAY_INTERVAL
        if now >= next_beat:
            write_text(self.run / "executor.heartbeat", f"{time.time():.3f}\n")
            next_beat = now + HEARTBEAT_INTERVAL
        return next_relay, next_beat

    def execute(self, notify_fd: int | None = None) -> int:
        """Run every job not yet done; returns DAGMan's exit code (0 ok, 1 failed, 2 cancelled)."""
        self.log = self._lock()
        try:
            return self._execute(notify_fd)
        finally:
            self.log.close()

    def _execute(self, notify_fd: int | None) -> int:
        write_text(self.run / "executor.pid", f"{os.getpid()}\n")
        write_text(self.run / "executor.heartbeat", f"{time.time():.3f}\n")
        if notify_fd is not None:
            os.write(notify_fd, f"{os.getpid()}\n".encode())
            os.close(notify_fd)
        self._restore()
        self._init_graph()
        self.log.write(f"executor {os.getpid()} started: {len(self.indeg)} of {len(self.plan.jobs)} jobs "
                       f"to run, width {self.width}\n")
        with JobStateWriter(self.run / "jobstate.log") as self.jobstate, \
                EventWriter(self.run / "events.jsonl") as self.events:
            self.cluster += 1
            self.jobstate.internal("DAGMAN_STARTED", f"{self.cluster}.0")
            self.events.write({"type": "run_started", "jobs": len(self.indeg), "total": len(self.plan.jobs),
                               "resumed": self.resumed, "width": self.width})
            for _ in range(self.width):
                threading.Thread(target=self._launcher, daemon=True).start()
            next_relay = next_beat = time.monotonic()
            try:
                while self.running or (self.ready and not self.cancelling):
                    next_relay, next_beat = self._step(next_relay, next_beat)
            finally:
                for _ in range(self.width):
                    self.work.put(None)
            code = CANCELLED_EXIT if self.cancelling else (0 if len(self.done) == len(self.plan.jobs) else 1)
            self.jobstate.internal("DAGMAN_FINISHED", code)
            state = {0: "Success", CANCELLED_EXIT: "Cancelled"}.get(code, "Failure")
            self.events.write({"type": "run_finished", "state": state, "failed_jobs": self.failed})
        write_text(self.run / "executor.heartbeat", f"{time.time():.3f}\n")
        self.log.write(f"executor {os.getpid()} finished: {state}\n")
        return code


def run_executor(run_dir: str | os.PathLike[str], jobs: int | None = None,
                 notify_fd: int | None = None) -> int:
    """Run the executor in this process (SIGTERM/SIGINT cancel); returns DAGMan's exit code."""
    os.umask(umask())  # run files private to the user (0o600/0o700) unless $MLWF_SHARE_GROUP
    os.chmod(Path(run_dir) / "executor.log", file_mode())  # created by the submitting process
    ex = Executor(run_dir, jobs)

    def on_signal(signum: int, frame: object) -> None:
        ex.q.put(("cancel",))  # SimpleQueue.put is reentrant: safe in a signal handler

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    return ex.execute(notify_fd)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m mlwf_nb.backends._executor RUN_DIR [--jobs N]``."""
    ap = argparse.ArgumentParser(prog="python -m mlwf_nb.backends._executor")
    ap.add_argument("run_dir")
    ap.add_argument("--jobs", type=int, default=None, help="jobs at once (default: CPU count)")
    ap.add_argument("--notify-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return run_executor(args.run_dir, args.jobs, args.notify_fd)


if __name__ == "__main__":
    raise SystemExit(main())
