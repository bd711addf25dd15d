"""The local backend's condorio sandbox (``execution.staging: sandbox``): each job in an empty folder.

On an HTCondor pool without a shared filesystem (Pegasus's condorio data configuration) a job
starts in an empty scratch folder: HTCondor copies its declared inputs in by basename, Pegasus
(>= 5.1) moves each to its LFN path, and only the declared outputs are copied back when the
job ends. A step that reads a file it did not declare, finds its files by a folder layout, or
writes a file it did not declare works on a shared filesystem and breaks there.

With ``execution.staging: sandbox`` the local executor runs every job that way, so CI catches
those bugs before a pool does (the same rules as :mod:`mlwf_nb.planner_rules`):

* :meth:`Sandboxes.enter` makes ``$MLWF_SANDBOX_ROOT/<run>/<job>.<try>/`` (default under the
  system's temporary folder, outside the run directory) and puts each declared input and
  checkpoint at its LFN path in it: a hard link where possible, else a copy; checkpoints are
  always copied (an empty file before the first one, the placeholder Pegasus stages in). Two
  files with one basename fail the job, as pegasus-plan would refuse them.
* the job runs with that folder as its working directory (a warm worker's child changes into
  it; a fresh process starts through ``env -C``). Its environment still names the live events
  file (``MLWF_EVENTS``, the backend's channel, as HTCondor's chirp is on a pool) and
  ``MLWF_RUN_DIR`` (the executor's mark to find orphaned jobs); a step uses neither for files.
* :meth:`Sandboxes.leave` fails a job that exited 0 but left a declared output unwritten
  (HTCondor holds such a job) or wrote a file it did not declare (lost on a pool); the reason
  goes to the job's stderr. Declared outputs are then moved into the run directory (after a
  failure only the checkpoints, so a retry resumes), and the folder is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from mlwf_nb._io import atomic_path

__all__ = ["ENV_SANDBOX_ROOT", "STAGING_MODES", "SandboxError", "Sandboxes", "enabled", "for_plan",
           "spawn_argv", "undeclared_files"]

ENV_SANDBOX_ROOT = "MLWF_SANDBOX_ROOT"
STAGING_MODES = ("shared", "sandbox")
_FAILED = 1


class SandboxError(OSError):
    """A job's sandbox could not be made (a basename conflict, a missing input)."""


def enabled(run_dir: str | os.PathLike[str]) -> bool:
    """Whether the run's spec asks for ``execution.staging: sandbox``."""
    import yaml

    try:
        spec = yaml.safe_load((Path(run_dir) / "spec.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False
    return ((spec.get("execution") or {}).get("staging") or "shared") == "sandbox"


def for_plan(run_dir: str | os.PathLike[str], plan: Any) -> Sandboxes | None:
    """The sandboxes of a run's jobs when its spec asks for them (None otherwise).

    ``plan``: the executor's :class:`~mlwf_nb.backends.plan.Plan`; its stage-in pseudo job
    (the staging site's own work) runs in the run directory, as on Pegasus.
    """
    if not enabled(run_dir):
        return None
    from mlwf_nb.backends.staging import STAGE_IN_JOB

    jobs = {n: pj for n, pj in plan.jobs.items() if n != STAGE_IN_JOB}
    return Sandboxes(run_dir, {n: list(pj.inputs) for n, pj in jobs.items()},
                     {n: [f for f in pj.outputs if f not in pj.checkpoints] for n, pj in jobs.items()},
                     {n: list(pj.checkpoints) for n, pj in jobs.items()})


def spawn_argv(cwd: str | os.PathLike[str], program: str, argv: list[str]) -> tuple[str, list[str]]:
    """``(program, argv)`` that run ``program argv[1:]`` in ``cwd`` (``posix_spawn`` cannot change folder)."""
    env = shutil.which("env") or "/usr/bin/env"
    return env, [env, "-C", str(cwd), "--", program, *argv[1:]]


def _root(run: Path) -> Path:
    base = Path(os.environ.get(ENV_SANDBOX_ROOT) or Path(tempfile.gettempdir()) / f"mlwf-sandbox-{os.getuid()}")
    return base / hashlib.sha256(str(run).encode()).hexdigest()[:12]


def undeclared_files(folder: Path, declared: Iterable[str]) -> list[str]:
    """Files under ``folder`` (relative POSIX paths) that are not in ``declared``."""
    known = set(declared)
    found = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(folder).as_posix()
            if rel not in known:
                found.append(rel)
    return sorted(found)


class Sandboxes:
    """The sandboxes of one run's jobs (see the module docstring).

    Args:
        run_dir: the run directory (LFNs are paths in it).
        inputs: job name -> input LFNs (checkpoints excluded).
        outputs: job name -> output LFNs (checkpoints excluded).
        checkpoints: job name -> checkpoint LFNs (read and written).
    """

    def __init__(self, run_dir: str | os.PathLike[str], inputs: dict[str, list[str]],
                 outputs: dict[str, list[str]], checkpoints: dict[str, list[str]]) -> None:
        self.run = Path(run_dir).resolve()
        self.root = _root(self.run)
        self.inputs, self.outputs, self.checkpoints = inputs, outputs, checkpoints
        self.active: dict[str, Path] = {}

    def clear(self) -> None:
        """Remove every sandbox of this run (left by a killed executor, or at cancel)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.active.clear()

    def _files(self, name: str) -> list[str]:
        return [*self.inputs.get(name, ()), *self.outputs.get(name, ()), *self.checkpoints.get(name, ())]

    def __contains__(self, name: str) -> bool:
        return name in self.inputs

    def enter(self, name: str, try_: int) -> Path:
        """Make the job's sandbox with its inputs and checkpoints; returns the folder.

        Raises:
            SandboxError: two of the job's files share a basename, or an input is missing.
        """
        from mlwf_nb.planner_rules import basename_conflicts

        clash = basename_conflicts(self._files(name))
        if clash:
            raise SandboxError(f"sandbox: job {name} has files with one basename ({clash}); pegasus-plan refuses "
                               "this under condorio (files of a job land in one flat folder): rename them")
        box = self.root / f"{name}.{try_}"
        shutil.rmtree(box, ignore_errors=True)
        box.mkdir(parents=True)
        self.active[name] = box
        for lfn in self.inputs.get(name, ()):
            self._put(self.run / lfn, box / lfn, link=True)
        for lfn in self.checkpoints.get(name, ()):
            if (self.run / lfn).exists():
                self._put(self.run / lfn, box / lfn, link=False)
            else:  # the empty placeholder Pegasus stages in before a first checkpoint (checkpoint_placeholder)
                (box / lfn).parent.mkdir(parents=True, exist_ok=True)
                (box / lfn).touch()
        return box

    @staticmethod
    def _put(source: Path, target: Path, *, link: bool) -> None:
        if not source.exists():
            raise SandboxError(f"sandbox: input {source} does not exist (no job wrote it and no replica staged it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:  # the file itself, not the stage-in's symlink: the job cannot see where it came from
                os.link(source.resolve(), target)
                return
            except OSError:
                pass  # another filesystem: copy
        shutil.copyfile(source, target)

    def leave(self, name: str, rc: int, stderr: str | os.PathLike[str] | None = None) -> int:
        """Check the finished job's sandbox, move its outputs into the run directory, remove it.

        Returns:
            ``rc``, or 1 when a job that exited 0 broke the sandbox's rules (the reasons are
            appended to ``stderr``).
        """
        box = self.active.pop(name, None)
        if box is None:
            return rc
        try:
            problems = self._problems(name, box) if rc == 0 else []
            keep = (self.outputs.get(name, []) if rc == 0 and not problems else []) + self.checkpoints.get(name, [])
            for lfn in keep:
                if (box / lfn).is_file():
                    try:
                        self._take(box / lfn, self.run / lfn)
                    except OSError as err:  # e.g. a file where the run directory needs a folder
                        problems.append(f"could not move {lfn} into the run directory: {err}")
        finally:
            shutil.rmtree(box, ignore_errors=True)
        if problems and stderr is not None:
            with contextlib.suppress(OSError), open(stderr, "a", encoding="utf-8") as fh:
                fh.write("".join(f"mlwf sandbox: {p}\n" for p in problems))
        return _FAILED if problems and rc == 0 else rc

    def _problems(self, name: str, box: Path) -> list[str]:
        missing = [lfn for lfn in [*self.outputs.get(name, ()), *self.checkpoints.get(name, ())]
                   if not (box / lfn).is_file()]
        extra = undeclared_files(box, self._files(name))
        out = [f"declared output {lfn} was not written (HTCondor holds a job whose output file is missing)"
               for lfn in missing]
        out += [f"wrote {rel}, which the job does not declare: on an HTCondor pool it is lost when the job ends; "
                "declare it as an output of the step, or write it under $TMPDIR" for rel in extra]
        return out

    @staticmethod
    def _take(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # same filesystem: a rename replaces a stage-in symlink too
        except OSError:
            with atomic_path(target, suffix=PurePosixPath(target.name).suffix) as tmp:
                shutil.copyfile(source, tmp)
