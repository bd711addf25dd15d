"""The detached local executor: runs a planned workflow as a bounded pool of subprocesses.

``python -m mlwf_nb.backends._executor RUN_DIR [--jobs N]`` is started by
:class:`mlwf_nb.backends.local.LocalBackend` in its own session. It holds an
exclusive ``flock`` on ``executor.log`` while alive (so liveness needs no pid
guessing), writes ``executor.pid`` and touches ``executor.heartbeat`` every
~2 s.

One thread does everything: it starts jobs, then waits in ``select`` on a
``pidfd`` per running job (Linux >= 5.3; elsewhere one waiter thread per job
feeds a queue instead) and on a wake-up pipe, with a short timeout to relay job
events, fire ``checkpoint.time``/``maxwalltime`` signals and beat the heartbeat.
No thread hand-offs per job: that kept the engine within a few tenths of a
millisecond per job of a bare process pool (docs/benchmarks.md). Dependency
bookkeeping is O(1) per job (in-degree counters). SIGTERM (cancel) kills
running jobs, records them as aborted and finishes with exit code 2.

Its parts: :mod:`~mlwf_nb.backends._spawn` starts a job's process,
:mod:`~mlwf_nb.backends._warm_dispatch` hands warm jobs to warm workers,
:mod:`~mlwf_nb.backends._relay` copies the jobs' events into the run's and
:mod:`~mlwf_nb.backends._ledger` books everything in ``jobstate.log`` and ``events.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import os
import queue
import selectors
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from mlwf_nb._io import write_text
from mlwf_nb.backends import _warm, sandbox
from mlwf_nb.backends._ledger import Ledger, read_past
from mlwf_nb.backends._leftovers import CANCELLED_EXIT, end_groups, leftovers
from mlwf_nb.backends._relay import JobRelay
from mlwf_nb.backends._spawn import Running as _Running
from mlwf_nb.backends._spawn import Spawner
from mlwf_nb.backends._spawn import pidfd as _pidfd
from mlwf_nb.backends._spawn import reap as _reap
from mlwf_nb.backends._warm_dispatch import WarmDispatch
from mlwf_nb.backends._warm_dispatch import warm_jobs as _warm_jobs
from mlwf_nb.backends.plan import Plan, PlannedJob, read_plan
from mlwf_nb.errors import EXIT_BAD_INPUT, BackendError
from mlwf_nb.rundir.events import ENV_EVENTS, ENV_JOB
from mlwf_nb.safety import file_mode, umask

__all__ = ["Executor", "run_executor", "main"]

RELAY_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 2.0


class Executor(WarmDispatch):
    """Runs the jobs of one run directory; see the module docstring."""

    def __init__(self, run_dir: str | os.PathLike[str], jobs: int | None = None,
                 plan: Plan | None = None) -> None:
        self.run = Path(run_dir).resolve()
        self.width = max(1, jobs or os.cpu_count() or 1)
        self.plan = plan or read_plan(self.run)
        self.q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.running: dict[str, _Running] = {}  # submitted (SUBMIT booked): queued or executing
        self.ready: deque[str] = deque()
        self.queued: deque[str] = deque()  # submitted, waiting for a free slot
        self.active = 0  # started processes not yet finished
        self.failed: list[str] = []
        self.cancelling = False
        self._deadlines: list[tuple[float, int, str, int, int]] = []
        self._base_env = dict(os.environ, MLWF_RUN_DIR=str(self.run))
        self._run_s = str(self.run)
        self.spawner = Spawner(self.run)
        self.workers: dict[tuple[tuple[str, str], ...], _warm.WarmWorker | None] = {}  # None: broken
        self._warm_jobs = _warm_jobs(self.plan) if _warm.enabled() else set()
        self.sandboxes = sandbox.for_plan(self.run, self.plan)  # execution.staging=sandbox: jobs in empty folders
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)

    def request_cancel(self) -> None:
        """Ask the loop to cancel the run; safe from a signal handler or another thread."""
        self._post(("cancel",))  # SimpleQueue.put and os.write are reentrant

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
        """Take up what earlier executors booked (:func:`read_past`); end their leftover jobs."""
        past = read_past(self.run)
        self.done, self.tries, self.cluster, self.seq = past.done, past.tries, past.cluster, past.seq
        left = leftovers(self.run, past.unfinished)  # a dead executor's jobs: ended before anything restarts
        if left:
            stuck = end_groups(left.values())
            if stuck:
                raise BackendError(f"leftover jobs of {self.run} (process groups {stuck}) did not die on SIGKILL; "
                                   "end them by hand, then resume")
            self.log.write(f"killed {len(left)} leftover job(s) of the previous executor: {', '.join(sorted(left))}\n")
        self.resumed = past.resumed

    def _init_graph(self) -> None:
        plan = self.plan
        self.indeg = {n: sum(p not in self.done for p in plan.parents.get(n, ()))
                      for n in plan.jobs if n not in self.done}
        self.ready.extend(n for n, d in self.indeg.items() if d == 0)
        self.run_tries = dict.fromkeys(plan.jobs, 0)
        self.relay = JobRelay(self.run, plan, self.resumed)

    def _relay(self, name: str) -> None:
        self.relay.relay(name, self.ledger.events)

    # --- starting and finishing jobs --------------------------------------------------------
    def _start(self, name: str) -> None:
        """Book a try of ``name`` (SUBMIT) and queue it for a free slot."""
        pj = self.plan.jobs[name]
        try_ = self.tries.get(name, 0)
        self.tries[name] = try_ + 1
        self.run_tries[name] += 1
        self.cluster += 1
        self.seq += 1
        r = _Running(try_, f"{self.cluster}.0", self.seq)
        self.ledger.submitted(name, pj, r)
        self.running[name] = r
        self.queued.append(name)

    def _launch_queued(self) -> None:
        """Start submitted jobs while slots are free (EXECUTE)."""
        while self.queued and self.active < self.width and not self.cancelling:
            name = self.queued.popleft()
            r = self.running[name]
            pj = self.plan.jobs[name]
            env = dict(self._base_env, **pj.env)
            env[ENV_EVENTS] = f"{self._run_s}/jobs/{name}/events.jsonl"
            env[ENV_JOB] = pj.id
            env["MLWF_TRY"] = str(r.try_)
            cwd = self._sandbox(name, r.try_, pj)
            if cwd == "":
                continue
            if name in self._warm_jobs and self._launch_warm(name, r, pj, env, cwd):
                continue
            pid = self._launch(name, r.try_, pj, env, cwd)
            if pid is None:
                self._not_started(name)
                continue
            self._started(name, pid)
            r.slot = True
            self.active += 1
            r.pidfd = _pidfd(pid)
            if r.pidfd is not None:
                self.sel.register(r.pidfd, selectors.EVENT_READ, name)
            else:
                threading.Thread(target=self._wait_thread, args=(name, r.try_, pid), daemon=True).start()

    def _sandbox(self, name: str, try_: int, pj: PlannedJob) -> str | None:
        """The job's sandbox folder (execution.staging=sandbox), None to run in the run directory, "" if failed."""
        if self.sandboxes is None or name not in self.sandboxes:
            return None
        try:
            return str(self.sandboxes.enter(name, try_))
        except OSError as exc:  # SandboxError: a basename conflict or a missing input fails the job
            self._cannot_start(name, try_, pj, exc)
            self._not_started(name)
            return ""

    def _post(self, item: tuple[Any, ...]) -> None:
        """Give the loop an item from another thread and wake its ``select``."""
        self.q.put(item)
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"w")

    def _wait_thread(self, name: str, try_: int, pid: int) -> None:
        """Fallback without pidfds: wait in a thread, hand the exit code to the loop."""
        self._post(("done", name, try_, _reap(pid)))

    def _launch(self, name: str, try_: int, pj: PlannedJob, env: dict[str, str],
                cwd: str | None = None) -> int | None:
        """Start the job's process (:meth:`Spawner.spawn`); its pid, or None if it could not start."""
        try:
            return self.spawner.spawn(name, try_, pj, env, cwd)
        except OSError as exc:
            self._cannot_start(name, try_, pj, exc)
            return None

    def _cannot_start(self, name: str, try_: int, pj: PlannedJob, exc: OSError) -> None:
        self.spawner.cannot_start(name, try_, pj, exc)

    def _not_started(self, name: str) -> None:
        """Book a job whose process could not be started (the reason is in its stderr file) as failed."""
        self._started(name, None)
        self._finish(name, 127)

    def _started(self, name: str, pid: int | None) -> None:
        r = self.running[name]
        r.pid = pid
        pj = self.plan.jobs[name]
        self.ledger.executing(name, pj, r)
        if pid is None:
            return
        self.log.write(f"start {name} try {r.try_} pid {pid}\n")
        if self.cancelling:
            self._signal(name, r.try_, signal.SIGKILL)
            return
        now = time.monotonic()
        for after, sig in ((pj.checkpoint_time, signal.SIGTERM), (pj.maxwalltime, signal.SIGKILL)):
            if after is not None:
                heapq.heappush(self._deadlines, (now + after, r.seq, name, r.try_, sig))

    def _release(self, r: _Running) -> None:
        """Free the slot and the pidfd of a job whose process has ended."""
        if r.pidfd is not None:
            self.sel.unregister(r.pidfd)
            os.close(r.pidfd)
            r.pidfd = None
        if r.slot:
            self.active -= 1
            r.slot = False

    def _finish(self, name: str, rc: int) -> None:
        r = self.running.pop(name)
        pj = self.plan.jobs[name]
        self._release(r)
        self._relay(name)
        if self.sandboxes is not None:  # outputs back into the run directory; undeclared files fail the job
            rc = self.sandboxes.leave(name, rc, self.spawner.stderr(name, r.try_, pj))
        rc = self.ledger.ended(name, pj, r, rc, aborted=r.killed and self.cancelling)
        if rc == 0:
            self.done.add(name)
            for child in self.plan.children.get(name, ()):
                self.indeg[child] -= 1
                if self.indeg[child] == 0 and not self.cancelling:
                    self.ready.append(child)
        elif self.run_tries[name] <= pj.retry and rc != EXIT_BAD_INPUT and not self.cancelling:
            self.ready.appendleft(name)  # bad input (exit 65) fails the same way again: no retry
        else:
            self.failed.append(name)

    def _signal(self, name: str, try_: int, sig: int) -> None:
        r = self.running.get(name)
        if r is None or r.try_ != try_ or r.pid is None:
            return
        r.killed = r.killed or sig == signal.SIGKILL
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(r.pid, sig)

    def _cancel(self) -> None:
        if self.cancelling:
            return
        self.cancelling = True
        self.log.write("cancel requested: killing running jobs\n")
        self.ready.clear()
        aborted = list(self.queued)  # submitted, never started: aborted
        self.queued.clear()
        for w in self.workers.values():
            if w is not None:
                aborted += w.drop_pending()
        for name in aborted:
            self.running[name].killed = True
            self._finish(name, -9)
        for name, r in list(self.running.items()):
            self._signal(name, r.try_, signal.SIGKILL)

    # --- main loop ------------------------------------------------------------------------------
    def _timeout(self, now: float) -> float:
        if self._deadlines:
            return max(0.0, min(RELAY_INTERVAL, self._deadlines[0][0] - now))
        return RELAY_INTERVAL

    def _step(self, next_relay: float, next_beat: float) -> tuple[float, float]:
        # like DAGMan, submit ahead of free slots (SUBMIT = queued); the width bounds what runs
        # at once (EXECUTE), and a freed slot finds its next job waiting
        while self.ready and len(self.running) < 2 * self.width and not self.cancelling:
            self._start(self.ready.popleft())
        self._launch_queued()
        self.ledger.jobstate.flush()
        self.log.flush()
        ended: list[tuple[str, int]] = []
        for key, _ in self.sel.select(self._timeout(time.monotonic())):
            if key.data is None:  # the wake-up pipe: drain it, the queue says why
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
                continue
            if isinstance(key.data, _warm.WarmWorker):
                self._from_worker(key.data, ended)
                continue
            r = self.running[key.data]
            assert r.pid is not None
            ended.append((key.data, _reap(r.pid)))  # readable pidfd: the process has exited, reaped at once
            self._release(r)
        if ended:
            self._launch_queued()  # refill the freed slots first: the next jobs run while these are booked
        for name, rc in ended:
            self._finish(name, rc)
        while True:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                break
            if item[0] == "cancel":
                self._cancel()
            elif item[1] in self.running and self.running[item[1]].try_ == item[2]:
                self._finish(item[1], item[3])
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
        """Run every job not yet done; returns DAGMan's exit code (0 ok, 1 failed, 2 cancelled).

        Jobs inherit the working directory, so it must be the run directory (as
        :class:`~mlwf_nb.backends.local.LocalBackend` and :func:`run_executor` arrange).
        """
        here, run = os.stat("."), os.stat(self.run)
        if (here.st_dev, here.st_ino) != (run.st_dev, run.st_ino):
            self._close_loop()
            raise BackendError(f"the executor must run in its run directory {self.run} (jobs inherit the "
                               f"working directory), not in {os.getcwd()}; start it with run_executor()")
        try:
            self.log = self._lock()
            try:
                return self._execute(notify_fd)
            finally:
                self.log.close()
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        if self._wake_r < 0:
            return
        for w in self.workers.values():
            if w is not None:
                w.close()
        self.workers.clear()
        self.sel.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1

    def _execute(self, notify_fd: int | None) -> int:
        write_text(self.run / "executor.pid", f"{os.getpid()}\n")
        write_text(self.run / "executor.heartbeat", f"{time.time():.3f}\n")
        if notify_fd is not None:
            os.write(notify_fd, f"{os.getpid()}\n".encode())
            os.close(notify_fd)
        self._restore()
        if self.sandboxes is not None:
            self.sandboxes.clear()  # a dead executor's (its jobs were killed in _restore)
        self._init_graph()
        (self.run / "jobs").mkdir(exist_ok=True)
        self.log.write(f"executor {os.getpid()} started: {len(self.indeg)} of {len(self.plan.jobs)} jobs "
                       f"to run, width {self.width}\n")
        with Ledger(self.run) as self.ledger:
            self.cluster += 1
            self.ledger.run_started(self.cluster, jobs=len(self.indeg), total=len(self.plan.jobs),
                                    resumed=self.resumed, width=self.width)
            next_relay = next_beat = time.monotonic()
            try:
                while self.running or (self.ready and not self.cancelling):
                    next_relay, next_beat = self._step(next_relay, next_beat)
            finally:
                self._close_loop()
            code = CANCELLED_EXIT if self.cancelling else (0 if len(self.done) == len(self.plan.jobs) else 1)
            state = self.ledger.run_finished(code, self.failed)
        if self.sandboxes is not None:
            self.sandboxes.clear()
        write_text(self.run / "executor.heartbeat", f"{time.time():.3f}\n")
        self.log.write(f"executor {os.getpid()} finished: {state}\n")
        return code


def run_executor(run_dir: str | os.PathLike[str], jobs: int | None = None,
                 notify_fd: int | None = None) -> int:
    """Run the executor in this process (SIGTERM/SIGINT cancel); returns DAGMan's exit code."""
    os.umask(umask())  # run files private to the user (0o600/0o700) unless $MLWF_SHARE_GROUP
    os.chmod(Path(run_dir) / "executor.log", file_mode())  # created by the submitting process
    os.chdir(run_dir)  # jobs run in the run directory (LocalBackend already starts us there)
    ex = Executor(run_dir, jobs)

    def on_signal(signum: int, frame: object) -> None:
        ex.request_cancel()

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
