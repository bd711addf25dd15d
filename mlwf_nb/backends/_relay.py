"""Relay of the local executor's job events: each job's ``jobs/<name>/events.jsonl`` into the run's.

Every relayed event carries ``relay: "<name>:<offset>"`` (the byte offset just past it in the
job's file), so a resumed executor starts each job's reader where the previous one stopped
(:func:`relay_offsets`) and relays no event twice.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_appended
from mlwf_nb.backends.plan import Plan
from mlwf_nb.rundir.events import EventReader, EventWriter

__all__ = ["JobEvents", "JobRelay", "relay_offsets"]


class JobEvents(EventReader):
    """EventReader that also returns the byte offset just past each event."""

    def poll_with_offsets(self) -> list[tuple[dict[str, Any], int]]:
        """Return ``(event, end offset)`` for each whole line appended since the last call."""
        chunk, end = read_appended(self.path, self.offset, 8 << 20)
        out = []
        pos = self.offset
        for raw in chunk.split(b"\n")[:-1]:  # read_appended returns whole lines only
            pos += len(raw) + 1
            if raw.strip():
                with contextlib.suppress(ValueError):
                    out.append((json.loads(raw), pos))
        self.offset = end
        return out


def relay_offsets(events: Path) -> dict[str, int]:
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


class JobRelay:
    """Copies new events of the plan's jobs into the run's ``events.jsonl``, naming their job."""

    def __init__(self, run: Path, plan: Plan, resumed: bool) -> None:
        self._run_s = str(run)
        self.plan = plan
        self._relayed = relay_offsets(run / "events.jsonl") if resumed else {}
        self.readers: dict[str, JobEvents] = {}  # made when a job first starts

    def _reader(self, name: str) -> JobEvents:
        reader = self.readers.get(name)
        if reader is None:
            reader = self.readers[name] = JobEvents(f"{self._run_s}/jobs/{name}/events.jsonl",
                                                    self._relayed.get(name, 0))
        return reader

    def relay(self, name: str, events: EventWriter) -> None:
        """Write the events job ``name`` appended since the last call into ``events``."""
        batch = self._reader(name).poll_with_offsets()
        if not batch:
            return
        job_id = self.plan.jobs[name].id
        for ev, end in batch:
            if not isinstance(ev, dict):
                continue
            ev.setdefault("job", job_id)
            ev["relay"] = f"{name}:{end}"
            events.write(ev)
