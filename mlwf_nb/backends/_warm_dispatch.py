"""The local executor's side of the warm workers: handing jobs to them and reading what they report.

A job the plan marks warm (``mlwf.warm``) goes to a warm worker of its environment
(:class:`mlwf_nb.backends._warm.WarmWorker`, started on first use) instead of being spawned
fresh; the worker reports each job's pid, exit code or start error over its socket, which the
executor's ``select`` loop watches. If a worker dies, its jobs that never forked go back to
the queue as fresh processes and its running jobs are killed and counted as a failed try.
:class:`WarmDispatch` is a part of :class:`mlwf_nb.backends._executor.Executor` (its base
class); it uses the executor's bookkeeping, declared below.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import sys
from collections import deque
from pathlib import Path
from typing import IO

from mlwf_nb.backends import _warm
from mlwf_nb.backends._spawn import Running, Spawner
from mlwf_nb.backends.plan import Plan, PlannedJob

__all__ = ["WarmDispatch", "warm_jobs"]


def warm_jobs(plan: Plan) -> set[str]:
    """Jobs the plan marks warm (metadata ``mlwf.warm``) that run this environment's ``mlwf`` script.

    A warm worker runs the job's script in a child of this environment's interpreter, so a
    job of another environment (another ``mlwf``) starts as a fresh process instead.
    """
    mlwf = str(Path(sys.executable).parent / "mlwf")
    return {name for name, pj in plan.jobs.items() if pj.warm and pj.argv[:1] == [mlwf]}


class WarmDispatch:
    """Warm-worker dispatch of the executor; the attributes and methods below are the executor's."""

    running: dict[str, Running]
    queued: deque[str]
    active: int
    workers: dict[tuple[tuple[str, str], ...], _warm.WarmWorker | None]  # None: broken
    _warm_jobs: set[str]
    _run_s: str
    sel: selectors.BaseSelector
    log: IO[str]
    spawner: Spawner

    def _started(self, name: str, pid: int | None) -> None:
        raise NotImplementedError

    def _release(self, r: Running) -> None:
        raise NotImplementedError

    def _cannot_start(self, name: str, try_: int, pj: PlannedJob, exc: OSError) -> None:
        raise NotImplementedError

    def _not_started(self, name: str) -> None:
        raise NotImplementedError

    def _launch_warm(self, name: str, r: Running, pj: PlannedJob, env: dict[str, str],
                     cwd: str | None = None) -> bool:
        """Hand a job to its warm worker (started on first use); False to start it as a fresh process."""
        key = _warm.worker_key(env)
        if key not in self.workers:
            try:
                started = _warm.WarmWorker(env, pj.argv[0], f"{self._run_s}/warm-worker.log")
            except OSError as exc:
                self.log.write(f"warm worker not started ({exc}): jobs start as fresh processes\n")
                self.workers[key] = None
                return False
            self.log.write(f"warm worker {started.pid} started\n")
            self.workers[key] = started
            self.sel.register(started.fileno(), selectors.EVENT_READ, started)
        w = self.workers[key]
        if w is None:
            return False
        try:
            streams = self.spawner.streams(name, r.try_, pj)
        except OSError as exc:
            self._cannot_start(name, r.try_, pj, exc)
            self._not_started(name)
            return True
        w.submit(name, pj.argv, env, *streams, cwd=cwd)
        r.slot = True
        self.active += 1
        return True

    def _from_worker(self, w: _warm.WarmWorker, ended: list[tuple[str, int]]) -> None:
        """Apply a worker's messages; if it died, its jobs end (running) or go back to the queue."""
        orphans = set(w.jobs)
        msgs = w.read()
        for msg in msgs or ():
            name = msg.get("id")
            if not isinstance(name, str) or (r := self.running.get(name)) is None:
                continue
            if "pid" in msg:
                self._started(name, int(msg["pid"]))
            elif "exit" in msg:
                ended.append((name, int(msg["exit"])))
                self._release(r)
            elif "error" in msg:
                self.log.write(f"warm worker could not start {name}: {msg['error']}\n")
                self._release(r)
                self._started(name, None)
                ended.append((name, 127))
        if msgs is not None:
            return
        self.log.write(f"warm worker {w.pid} died: its jobs start as fresh processes from now on\n")
        self.sel.unregister(w.fileno())
        w.close()
        self.workers = {k: (None if v is w else v) for k, v in self.workers.items()}
        for name in orphans:
            r = self.running.get(name)
            if r is None or any(n == name for n, _ in ended):
                continue
            self._release(r)
            if r.pid is None:  # never forked: start it again, as a fresh process
                self._warm_jobs.discard(name)
                self.queued.appendleft(name)
            else:  # running without a parent that can report its exit: stop it, count a failed try
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(r.pid, signal.SIGKILL)
                ended.append((name, -9))
