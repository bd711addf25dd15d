"""Starting one job of the local executor as a process: ``posix_spawn`` into a new session.

:class:`Spawner` makes a job's folders, resolves its program on the job's ``PATH`` and starts it
with ``posix_spawn`` (the child opens its own stdin/stdout/stderr and starts a new session, so
cancel can kill its process group). :class:`Running` is the executor's record of one submitted
try; :func:`pidfd` and :func:`reap` wait for a started process. The executor
(:mod:`mlwf_nb.backends._executor`) decides what runs when; this module only starts processes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
from pathlib import Path

from mlwf_nb.backends import sandbox
from mlwf_nb.backends.plan import PlannedJob

__all__ = ["Running", "Spawner", "pidfd", "reap"]

_STREAM_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_DEFAULT_SIGNALS = tuple(getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, n))


class Running:
    """One submitted try of a job: queued (SUBMIT booked) or started (EXECUTE)."""

    __slots__ = ("cid", "killed", "pid", "pidfd", "seq", "slot", "try_")

    def __init__(self, try_: int, cid: str, seq: int) -> None:
        self.try_, self.cid, self.seq, self.killed = try_, cid, seq, False
        self.slot = False  # started: holds one of the ``width`` slots until finished
        self.pid: int | None = None  # set once started
        self.pidfd: int | None = None


def reap(pid: int) -> int:
    """Wait for child ``pid``; its exit code, or minus the signal that killed it (as subprocess reports)."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def pidfd(pid: int) -> int | None:
    """A pollable descriptor that turns readable when ``pid`` exits, or None where unsupported."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or blocked by a sandbox
        return None


class Spawner:
    """Starts the jobs of one run directory (the working directory of the executor and its jobs)."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self._run_s = str(run)
        self._dirs: set[str] = set()
        self._exe: dict[tuple[str, str | None], str] = {}

    def spawn(self, name: str, try_: int, pj: PlannedJob, env: dict[str, str],
              cwd: str | None = None) -> int:
        """Create the job's folders and start it with ``posix_spawn``; its pid (OSError if it cannot start).

        The child opens its own stdout/stderr/stdin (spawn file actions), starts a new
        session (so cancel can kill its process group) and gets SIGPIPE/SIGXFSZ back at
        their defaults, as ``subprocess`` does. It inherits the executor's working
        directory, which is the run directory (checked by the executor). Compared with
        ``subprocess.Popen``, no Python-level pipes, file objects or environment encoding per job.
        """
        stdin, stdout, stderr = self.streams(name, try_, pj)
        actions = [(os.POSIX_SPAWN_OPEN, 0, stdin or os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, stdout, _STREAM_FLAGS, 0o666),
                   (os.POSIX_SPAWN_OPEN, 2, stderr, _STREAM_FLAGS, 0o666)]
        program, argv = self._which(pj.argv[0], env.get("PATH")), pj.argv
        if cwd is not None:
            program, argv = sandbox.spawn_argv(cwd, program, argv)
        return os.posix_spawn(program, argv, env, file_actions=actions, setsid=True,
                              setsigdef=_DEFAULT_SIGNALS)

    def stderr(self, name: str, try_: int, pj: PlannedJob) -> str:
        """The path of the job's stderr file for try ``try_``."""
        return f"{self._run_s}/{pj.stderr}" if pj.stderr else f"{self._run_s}/jobs/{name}/stderr.{try_:03d}"

    def cannot_start(self, name: str, try_: int, pj: PlannedJob, exc: OSError) -> None:
        """Say in the job's stderr file why it could not start (the status shows its tail)."""
        stderr = self.stderr(name, try_, pj)
        with contextlib.suppress(OSError), open(stderr, "ab") as err:
            err.write(f"cannot start job {name} ({' '.join(pj.argv[:1])}): {exc}\n".encode())

    def streams(self, name: str, try_: int, pj: PlannedJob) -> tuple[str | None, str, str]:
        """Make the job's folders; its (stdin or None, stdout, stderr) paths."""
        run = self._run_s
        jdir = f"{run}/jobs/{name}"
        with contextlib.suppress(FileExistsError):  # a retry, or a resumed run
            os.mkdir(jdir)
        for lfn in pj.outputs:  # a job that cannot get its output folder fails; the executor goes on
            self._mkdir((self.run / lfn).parent)
        return (f"{run}/{pj.stdin}" if pj.stdin else None,
                f"{run}/{pj.stdout}" if pj.stdout else f"{jdir}/stdout.{try_:03d}",
                f"{run}/{pj.stderr}" if pj.stderr else f"{jdir}/stderr.{try_:03d}")

    def _mkdir(self, path: Path) -> None:
        key = str(path)
        if key not in self._dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._dirs.add(key)

    def _which(self, program: str, path: str | None) -> str:
        """``program`` resolved on the job's PATH (as ``execvpe`` would), cached."""
        if "/" in program:
            return program
        key = (program, path)
        found = self._exe.get(key)
        if found is None:
            found = shutil.which(program, path=path)
            if found is None:
                raise FileNotFoundError(errno.ENOENT, "not found on the job's PATH", program)
            self._exe[key] = found
        return found
