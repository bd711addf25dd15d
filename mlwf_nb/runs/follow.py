"""The one follower of a run: incremental, bounded reads of ``events.jsonl`` folded into a RunState.

Every reader of a run goes through a :class:`Follower`: ``Run.status()`` and
``Run.events()`` call :meth:`Follower.poll` (a read of what was appended since
the last call, never re-reading), ``Run.wait()`` and ``mlwf watch`` iterate
:meth:`Follower.follow`, and the RunMonitor widget runs it as a daemon thread
(:meth:`Follower.start`) that folds as it reads and calls back at a bounded rate,
so a notebook kernel never blocks and a replay of a long run holds one read at a
time. A new follower on the same directory (a restarted kernel) replays the file
from the start, then follows it.

The follower learns a run's end from ``run_finished``; when a run writes nothing
new for ``live_every`` seconds it asks the backend (``live``) whether the run is
still alive, so a Lost run (the executor died) or a PlanFailed one ends it too.
A follower of a run just resumed (``restart_after``: the last seq before the
resume) does not take the old ``run_finished`` for the end: it follows until a newer
``run_started`` and that run's end (or the backend says the restart never came).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlwf_nb.rundir.events import EventReader
from mlwf_nb.runs.state import RunState

__all__ = ["Follower", "READ_BYTES"]

READ_BYTES = 256 << 10
"""Bytes read per poll (what is parsed at a time: about 2,000 events)."""


class Follower:
    """Follows one run directory's ``events.jsonl`` into :attr:`state`.

    Args:
        run_dir: the run directory.
        live: the backend's word on the run (Running, Lost, PlanFailed, ...), asked when
            nothing new was read for ``live_every`` seconds; None: only ``run_finished`` ends it.
        sync: called before each read to bring ``events.jsonl`` up to date (the Pegasus relay).
        events_path: another events file to follow (default ``<run_dir>/events.jsonl``).
        poll_interval: seconds between reads when caught up.
        live_every: seconds between two questions to ``live``.
        read_bytes: the most bytes one read takes.
        restart_after: the run was resumed when ``events.jsonl`` ended at this seq: events up to
            it are an earlier try of the run, whose end is not this one's.
        restart_grace: seconds after which a resume that has not begun gives way to the
            backend's word (a final state) instead of being waited for.
    """

    def __init__(self, run_dir: str | Path, *, live: Callable[[], str] | None = None,
                 sync: Callable[[], None] | None = None, events_path: str | Path | None = None,
                 poll_interval: float = 0.1, live_every: float = 2.0, read_bytes: int = READ_BYTES,
                 restart_after: int | None = None, restart_grace: float = 60.0) -> None:
        self.run_dir = Path(run_dir)
        self.state = RunState(run_dir=self.run_dir, restart_after=restart_after)
        self.restart_grace = restart_grace
        self._created = time.monotonic()
        self.lock = threading.RLock()  # held while folding: readers of ``state`` from other threads take it
        self.live = live
        self.sync = sync
        self.poll_interval = poll_interval
        self.live_every = live_every
        self.read_bytes = read_bytes
        self._reader = EventReader(events_path or self.run_dir / "events.jsonl")
        self._asked = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.batches = 0

    # -- reading -------------------------------------------------------------------------
    def poll(self) -> tuple[list[dict[str, Any]], set[str]]:
        """Read once (at most ``read_bytes``) and fold; returns the new events and the parts they changed."""
        if self.sync is not None:
            self.sync()
        events = self._reader.poll(max_bytes=self.read_bytes)
        if not events:
            return [], set()
        with self.lock:
            return events, self.state.apply(events)

    def grew(self) -> bool:
        """Whether ``events.jsonl`` now holds more than was read (after ``sync``): e.g. a resume made elsewhere.

        One ``stat`` (and the backend's relay, for Pegasus runs): cheap enough to ask every
        few seconds about a run that has ended.
        """
        if self.sync is not None:
            self.sync()
        try:
            return self._reader.path.stat().st_size > self._reader.offset
        except OSError:
            return False

    def catch_up(self) -> RunState:
        """Read everything appended so far (bounded reads), ask the backend if the run ended; the state."""
        while self.poll()[0]:
            pass
        self._ask(force=True)
        return self.state

    def _ask(self, force: bool = False) -> set[str]:
        """Ask ``live`` (at most every ``live_every`` s unless ``force``) about a run not finished."""
        now = time.monotonic()
        done = self.state.finished and self.state.restart_after is None
        if self.live is None or done or (not force and now - self._asked < self.live_every):
            return set()
        self._asked = now
        live = self.live()
        with self.lock:
            changed = self.state.observe(live, restart_overdue=now - self._created > self.restart_grace)
        if self.state.ended:  # it ended while we asked: what it wrote last is in the file now
            while (more := self.poll())[0]:
                changed |= more[1]
        return changed

    def follow(self, *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield every event from the start, then new ones as they come, until the run ends.

        This blocks the caller between events: use it in scripts and the CLI. A notebook
        follows from a thread instead (:meth:`start`).

        Raises:
            TimeoutError: ``timeout`` seconds passed before the run ended.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events, _ = self.poll()
            yield from events
            if events and not self.state.ended:
                continue
            self._ask()
            if self.state.ended:
                yield from self._drain()
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_dir} still {self.state.state} after {timeout} s")
            self._stop.wait(self.poll_interval)

    def _drain(self) -> Iterator[dict[str, Any]]:
        while True:
            events, _ = self.poll()
            if not events:
                return
            yield from events

    # -- following from a thread ---------------------------------------------------------
    def start(self, callback: Callable[[set[str]], None], *, min_interval: float = 0.25) -> Follower:
        """Follow from a daemon thread; ``callback(changed parts)`` at most every ``min_interval`` s.

        The thread folds each read at once (so a long replay holds no backlog) and
        stops by itself when the run has ended, or when :meth:`stop` is called.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(callback, min_interval),
                                            name=f"mlwf-follow-{self.run_dir.name}", daemon=True)
            self._thread.start()
        return self

    def _loop(self, callback: Callable[[set[str]], None], min_interval: float) -> None:
        pending: set[str] = set()
        last = 0.0
        try:
            while not self._stop.is_set():
                events, changed = self.poll()
                pending |= changed
                if not events:
                    pending |= self._ask()
                now = time.monotonic()
                ended = self.state.ended
                if pending and (ended or now - last >= min_interval):
                    callback(pending)
                    self.batches += 1
                    pending, last = set(), now
                if ended:
                    break
                if not events:
                    self._stop.wait(self.poll_interval)
        except BaseException as err:
            self.error = err
        finally:
            self.finished.set()

    def stop(self, timeout: float | None = 2.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is following."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; returns whether it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive
