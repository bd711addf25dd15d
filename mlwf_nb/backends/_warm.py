"""Warm workers: jobs of Keras steps forked from a process that has already imported Keras.

A fresh ``mlwf step train`` process spends seconds importing Keras and TensorFlow
before it does anything (``job_start`` rows in docs/benchmarks.md). HPO trials,
evaluation and short training jobs would each pay that. The local executor
therefore starts one *warm worker* per job environment the first time a job the
plan marks warm (job metadata ``mlwf.warm``, written by the workflow builder for
steps declared ``@step(..., warm=True)``) is about to run:
``python -m mlwf_nb.backends._warm FD MLWF`` imports the heavy modules, says
``ready`` on a ``SOCK_SEQPACKET`` socket and then forks one child per request.

Fork safety: the worker imports modules but runs no TensorFlow or JAX operation,
so no runtime thread pools exist when it forks (importing TensorFlow starts no
threads; OpenBLAS's pool is re-created after ``fork`` by its own handlers). Each
child starts its runtime fresh, in its own session, with the job's environment,
stdin/stdout/stderr, signal dispositions of a new interpreter, and a reseeded
NumPy global generator; it runs the job's script (this environment's ``mlwf``) as
``__main__``, exactly as a fresh interpreter would, and leaves with ``os._exit`` (as multiprocessing's forked children
do, so the worker's own exit handlers never run in a job).

Protocol (one JSON object per message). Worker to executor: ``{"ready": pid}``,
``{"id", "pid"}`` after a fork, ``{"id", "exit"}`` when the child is reaped,
``{"id", "error"}`` if it could not fork. Executor to worker: ``{"id", "argv",
"env", "stdin", "stdout", "stderr", "cwd"}``. The worker exits when the socket closes.
The environment variables that differ per job (``PER_JOB_ENV``) are excluded from
the worker's key: everything else (``KERAS_BACKEND``, ``PYTHONPATH``, thread and
device settings read at import time) is the same for the worker and its jobs.
Set ``MLWF_WARM_WORKER=0`` to start every job as a fresh process instead.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ENV_WARM", "PER_JOB_ENV", "PRELOAD", "WarmWorker", "enabled", "worker_key", "main"]

ENV_WARM = "MLWF_WARM_WORKER"
PER_JOB_ENV = frozenset({"MLWF_EVENTS", "MLWF_JOB", "MLWF_TRY"})
PRELOAD = ("mlwf_nb.cli", "mlwf_nb.steps.registry", "keras", "keras_tuner", "mlwf_nb.ml.train",
           "mlwf_nb.ml.models", "mlwf_nb.ml.evaluate", "mlwf_nb.ml.plots")
"""Modules the warm jobs import, loaded by name before the worker says ready (missing ones are skipped).

Names, not imports: the backend never depends on what a job computes; a worker without
them is only slower to fork from."""

_MAX_MESSAGE = 1 << 20
_STREAM = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the local executor should use warm workers (``MLWF_WARM_WORKER`` is not ``0``)."""
    return env.get(ENV_WARM, "1").strip().lower() not in ("0", "false", "no", "off")


def worker_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Jobs whose environments agree on this key can share one worker."""
    return tuple(sorted((k, v) for k, v in env.items() if k not in PER_JOB_ENV))


def _send(sock: socket.socket, msg: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(msg, separators=(",", ":")).encode())


class WarmWorker:
    """The executor's handle on one warm worker process (single-threaded use)."""

    def __init__(self, env: Mapping[str, str], mlwf: str, log_path: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            os.set_inheritable(theirs.fileno(), True)
            env = {k: v for k, v in env.items() if k not in PER_JOB_ENV}
            actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                       (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666),
                       (os.POSIX_SPAWN_DUP2, 1, 2)]
            self.pid = os.posix_spawn(sys.executable, [sys.executable, "-m", __name__, str(theirs.fileno()), mlwf],
                                      env, file_actions=actions, setsid=True)
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.ready = False
        self.dead = False
        self.pending: deque[dict[str, Any]] = deque()  # requests held until the worker is ready
        self.jobs: set[str] = set()  # submitted and not yet ended (forked or not: the executor has the pids)

    def fileno(self) -> int:
        """The socket, for ``select``."""
        return self.sock.fileno()

    def submit(self, name: str, argv: Sequence[str], env: Mapping[str, str], stdin: str | None,
               stdout: str, stderr: str, cwd: str | None = None) -> None:
        """Ask for a job to be forked (in ``cwd``, default the worker's); it is sent once the worker is ready."""
        req = {"id": name, "argv": list(argv), "env": dict(env), "stdin": stdin, "stdout": stdout, "stderr": stderr,
               "cwd": cwd}
        self.jobs.add(name)
        if self.ready:
            self._send(req)
        else:
            self.pending.append(req)

    def _send(self, req: dict[str, Any]) -> None:
        try:
            _send(self.sock, req)
        except OSError:  # the worker is gone: select reports the closed socket next, and the
            pass  # executor starts this job (still in self.jobs, never forked) as a fresh process

    def drop_pending(self) -> list[str]:
        """Forget the requests not yet sent (cancel); their job names."""
        names = [req["id"] for req in self.pending]
        self.pending.clear()
        self.jobs.difference_update(names)
        return names

    def read(self) -> list[dict[str, Any]] | None:
        """The messages waiting on the socket; None once the worker is gone."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                data = self.sock.recv(_MAX_MESSAGE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.dead = True
                return None
            msg = json.loads(data)
            if "ready" in msg:
                self.ready = True
                while self.pending:
                    self._send(self.pending.popleft())
            elif "exit" in msg or "error" in msg:
                self.jobs.discard(msg["id"])
            out.append(msg)
        return out

    def close(self) -> None:
        """Close the socket (the worker exits) and reap the worker."""
        self.sock.close()
        if not self.ready and not self.dead:  # still importing: it would read the socket only afterwards
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


# --- the worker process -----------------------------------------------------------------------
def _child(req: dict[str, Any], close: Sequence[int]) -> None:
    """In the forked child: become the job, run it, never return."""
    code: int = 1
    try:
        os.setsid()
        for fd in close:
            os.close(fd)
        fds = [os.open(req["stdin"] or os.devnull, os.O_RDONLY),
               os.open(req["stdout"], _STREAM, 0o666), os.open(req["stderr"], _STREAM, 0o666)]
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if req.get("cwd"):  # the job's sandbox (execution.staging=sandbox)
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = list(req["argv"])
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:  # `ps -o comm`, `top`
            comm.write(" ".join(["mlwf", *sys.argv[2:3]])[:15])
        if "numpy" in sys.modules:  # a fresh interpreter would seed from the OS
            sys.modules["numpy"].random.seed()
        runpy.run_path(sys.argv[0], run_name="__main__")  # the job's script, as its interpreter would run it
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:  # like an interpreter: print the traceback, exit 1
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _serve(sock: socket.socket) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up fd hears about children
    children: dict[int, str] = {}
    while True:
        readable: list[int] = []
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 4096):
                    pass
        while children:  # reap whatever ended, whichever woke us
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            name = children.pop(pid, None)
            if name is not None:
                _send(sock, {"id": name, "exit": os.waitstatus_to_exitcode(status)})
        if sock.fileno() in readable:
            try:
                data = sock.recv(_MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                return 0  # the executor closed the socket (or died): running jobs go on as orphans
            req = json.loads(data)
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError as exc:
                _send(sock, {"id": req["id"], "error": f"fork failed: {exc}"})
                continue
            if pid == 0:
                _child(req, (sock.fileno(), wake_r, wake_w))
            children[pid] = req["id"]
            _send(sock, {"id": req["id"], "pid": pid})
            print(f"forked {req['id']} pid {pid}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlwf_nb.backends._warm FD MLWF``: preload, say ready on socket FD, serve forks."""
    fd_s, mlwf = list(sys.argv[1:] if argv is None else argv)
    sock = socket.socket(fileno=int(fd_s))
    os.set_inheritable(sock.fileno(), False)
    sys.path[0] = os.path.dirname(mlwf)  # what the `mlwf` script sees, not the run directory
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"warm worker {os.getpid()}: not preloading {name}: {exc}", file=sys.stderr)
    print(f"warm worker {os.getpid()} ready: {len(sys.modules)} modules, "
          f"{len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else '?'} threads",
          file=sys.stderr, flush=True)
    _send(sock, {"ready": os.getpid()})
    return _serve(sock)


if __name__ == "__main__":
    raise SystemExit(main())
