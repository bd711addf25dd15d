"""The small base class every backend implements (papermill-engine style).

A backend runs the workflow that the workflow builder wrote into a run
directory (``workflow.yml`` and its catalogs) and reports on it in one shape:
the dictionary of ``Pegasus.client.status`` plus an ``"mlwf"`` section. It
never knows what a step computes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

__all__ = ["Backend", "RunDir"]

RunDir = str | os.PathLike[str]


class Backend(ABC):
    """Abstract backend: submit, watch, cancel and resume a run directory."""

    #: registry name of the backend ("local", "pegasus", ...)
    name: str = ""

    @classmethod
    def unavailable(cls) -> str:
        """Why this backend cannot run on this machine ("" when it can): what is missing and how to get it."""
        return ""

    @abstractmethod
    def submit(self, run_dir: RunDir, *, jobs: int | None = None, wait: bool = False) -> dict[str, Any]:
        """Start the run in ``run_dir``.

        Args:
            run_dir: the run directory holding ``workflow.yml`` and catalogs.
            jobs: how many jobs may run at once (None: the backend's default).
            wait: block until the run has finished.

        Returns:
            The run's status (see :meth:`status`).
        """

    @abstractmethod
    def status(self, run_dir: RunDir) -> dict[str, Any]:
        """The backend's own record of the run (``jobstate.log``, the submit directory).

        In the shape of ``Pegasus.client.status`` plus an ``"mlwf"`` section (state, jobs
        with ``stderr_tail`` for failed ones). Readers above the backends use
        :class:`mlwf_nb.runs.Run` (events folded into a RunState) instead.
        """

    def state(self, run_dir: RunDir) -> str:
        """The run's state as the backend sees it now (Planned, Running, Lost, Success, ...).

        Readers ask this only while a run has written no ``run_finished`` event, to tell a
        run that goes on from one that died (Lost) or never started (PlanFailed).
        Backends override it with something cheaper than :meth:`status`.
        """
        st = self.status(run_dir)
        return str(st.get("mlwf", {}).get("state") or st["dags"]["root"]["state"])

    def sync(self, run_dir: RunDir) -> None:
        """Bring ``<run>/events.jsonl`` up to date before a reader reads it.

        Nothing to do where the backend writes events as they happen (the local executor);
        the pegasus backend relays its submit directory here.
        """
        return None

    @abstractmethod
    def cancel(self, run_dir: RunDir) -> None:
        """Stop a running run; running jobs are killed and recorded as failed."""

    @abstractmethod
    def resume(self, run_dir: RunDir, *, wait: bool = False) -> dict[str, Any]:
        """Continue a failed, cancelled or lost run; finished jobs are not run again."""

    def events_path(self, run_dir: RunDir) -> Path:
        """The run's ``events.jsonl`` (the relay's output, followed by monitors)."""
        return Path(run_dir) / "events.jsonl"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
