"""RunMonitor: follow a run directory live (job table, curves, checkpoints, results, HPO).

What it draws follows the events, not the pipeline: one curve panel per metric pair
``m``/``val_m`` that the epoch events carry (loss/accuracy, dice/iou, ...), a confusion
matrix for ``artifact{kind: "confusion_matrix"}``, Dice/IoU for
``artifact{kind: "segmentation"}``, mAP per class for ``artifact{kind: "detection"}``, a
sweep's table from ``sweep_result`` events, and the image of the last ``artifact{kind: "map"}``.

The run's :class:`~mlwf_nb.runs.Follower` (the one reader every caller uses)
follows ``events.jsonl`` from a daemon thread and folds what it reads into its
:class:`~mlwf_nb.runs.RunState` at once (a read at a time, so a long replay holds
no backlog of events); at most ``max_rate`` times a second the widget sets traits
from that state, and their observers redraw. A new monitor on the same directory
(after a kernel restart) replays the file from the start, so it shows the whole
history, each event once and in order. After the run ended, a displayed monitor keeps asking
every ``resume_poll`` seconds whether ``events.jsonl`` grew (a resume made elsewhere: ``mlwf
resume``, another kernel) and then follows the run again. The kernel is never blocked, except by
:meth:`RunMonitor.wait`, which is meant for unattended runs (papermill).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as W
import traitlets

from mlwf_nb.errors import MlwfError
from mlwf_nb.runs import Follower, RunState
from mlwf_nb.views import figures, render
from mlwf_nb.views.show import show_state
from mlwf_nb.widgets._util import StaticForm, image_widget, set_image, wrap_row

__all__ = ["RunMonitor"]


class RunMonitor(StaticForm, W.VBox):
    """Live view of one run directory.

    Args:
        run: A :class:`~mlwf_nb.runs.Run`, or a run directory path.
        max_rate: At most this many UI updates per second.
        poll_interval: Seconds between reads of the run's files.
        autostart: Start following at once.
    """

    run_dir = traitlets.Unicode("")
    state = traitlets.Unicode("Planned")
    events_seen = traitlets.Int(0)
    last_seq = traitlets.Int(0)
    jobs = traitlets.Dict()
    history = traitlets.Dict()
    checkpoints = traitlets.List()
    leaderboard = traitlets.List()
    confusion = traitlets.Dict()
    segmentation = traitlets.Dict()
    detection = traitlets.Dict()
    sweep = traitlets.List()
    maps = traitlets.List()
    failures = traitlets.List()
    finished = traitlets.Bool(False)
    updates = traitlets.Int(0)
    error = traitlets.Unicode("")

    def __init__(self, run: Any = None, *, max_rate: float = 4.0, poll_interval: float = 0.1,
                 autostart: bool = True, resume_poll: float = 2.0, **kwargs) -> None:
        self.max_rate = max_rate
        self.poll_interval = poll_interval
        self.resume_poll = resume_poll  # seconds between looks for a resume once the run ended (0: never)
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._run: Any = None
        self._follower: Follower | None = None
        self.run_state = RunState()
        self._failed_shown: tuple[tuple[str, ...], bool] | None = None
        self._static_shown = 0.0  # when the static form was last redrawn
        self._status = W.HTML()
        self._progress = W.FloatProgress(min=0, max=100, description="progress")
        self._jobs = W.HTML()
        self._curves = image_widget()
        self._cm = image_widget()
        self._segmentation = W.HTML()
        self._detection = W.HTML()
        self._sweep = W.HTML()
        self._map = image_widget()
        self._checkpoints = W.HTML()
        self._leaderboard = W.HTML()
        self._trials = image_widget()
        self._failures = W.HTML()
        self._error = W.HTML()
        # curves and confusion matrix side by side when they fit, else one under the other (never clipped)
        training = W.VBox([wrap_row([self._curves, self._cm]), self._segmentation, self._detection, self._sweep,
                           self._map])
        tabs = W.Tab(children=[self._jobs, training, self._checkpoints, W.VBox([self._leaderboard, self._trials])])
        for i, title in enumerate(["jobs", "training", "checkpoints", "HPO leaderboard"]):
            tabs.set_title(i, title)
        super().__init__(children=[self._status, self._progress, self._error, self._failures, tabs], **kwargs)
        if run is not None:
            self.attach(run, start=autostart)

    # -- following ------------------------------------------------------------------------
    def attach(self, run: Any, *, start: bool = True) -> RunMonitor:
        """Follow another run (a Run or a directory); replays it from the start."""
        self.stop()
        self._run = _as_run(run)
        path = Path(getattr(self._run, "dir", run))
        if self._run is not None:
            self._follower = self._run.follower(poll_interval=self.poll_interval)
        else:  # a bare folder of events (no workflow.yml): nobody to ask whether it still runs
            self._follower = Follower(path, poll_interval=self.poll_interval)
        self.run_state = self._follower.state
        self._failed_shown = None
        self.finished = False
        self.run_dir = str(path)
        if start:
            self._follower.start(self._on_change, min_interval=1.0 / self.max_rate)
        return self

    def stop(self) -> None:
        """Stop following (the view keeps what it has), and looking for a resume."""
        self._watch_stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(5.0)
        self._watcher = None
        if self._follower is not None:
            self._follower.stop()

    def _watch_for_resume(self) -> None:
        """Once the run ended, in a live view: look every ``resume_poll`` s whether it grew; then follow it again.

        Only for a monitor displayed live (a static form, papermill's, is a record of the cell's run).
        """
        live_view = self.shown and self._static_handle is None
        if not (live_view and self.finished) or self.resume_poll <= 0 or self._watcher is not None \
                or self._follower is None:
            return
        follower, stop = self._follower, threading.Event()
        self._watch_stop = stop

        def watch() -> None:
            while not stop.wait(self.resume_poll):
                if follower.grew():  # a resume (or anything) appended events: replay and follow the run again
                    self._watcher = None
                    self.attach(self._run if self._run is not None else self.run_dir)
                    return

        self._watcher = threading.Thread(target=watch, name=f"mlwf-resume-watch-{Path(self.run_dir).name}",
                                         daemon=True)
        self._watcher.start()

    @property
    def run(self) -> Any:
        """The :class:`~mlwf_nb.runs.Run` followed (None for a bare folder of events)."""
        return self._run

    @property
    def following(self) -> bool:
        """Whether the follower thread is running."""
        return self._follower is not None and self._follower.alive

    @property
    def event_seqs(self) -> list[int]:
        """The ``seq`` of every event shown, in the order applied."""
        return list(self.run_state.seqs)

    def _ipython_display_(self) -> None:
        super()._ipython_display_()
        self._watch_for_resume()  # displayed after its run ended (a notebook reopened the next day)

    def _on_change(self, changed: set[str]) -> None:
        """From the follower's thread, at most ``max_rate`` times a second: set traits, redraw."""
        assert self._follower is not None
        with self._follower.lock:
            self._push(changed)

    def _push(self, changed: set[str]) -> None:
        """Set traits from the run state; figures are drawn after the traits notify (cheap first)."""
        self._deferred: dict[str, Any] = {}
        self._deferring = True
        try:
            self._set_traits(changed)
        finally:
            self._deferring = False
        for draw in list(self._deferred.values()):
            draw()
        # a static form (papermill, MLWF_STATIC=1) follows the run too, every few seconds and at its end,
        # so the saved notebook keeps the final state where the monitor was displayed
        now = time.monotonic()
        if self._static_handle is not None and (self.finished or now - self._static_shown > 3.0):
            self._static_shown = now
            self.refresh_static()

    def _set_traits(self, changed: set[str]) -> None:
        rs = self.run_state
        with self.hold_trait_notifications():
            self.events_seen = len(rs.types)
            self.last_seq = rs.seqs[-1] if rs.seqs else 0
            if "jobs" in changed or "state" in changed:
                self.jobs = {k: dict(v) for k, v in rs.jobs.items()}
            if "history" in changed:
                self.history = {k: list(v) for k, v in rs.history.items()}
            if "checkpoints" in changed:
                self.checkpoints = list(rs.checkpoints)
            if "trials" in changed:
                self.leaderboard = rs.leaderboard(self._direction())
            if "confusion" in changed and rs.confusion:
                self.confusion = dict(rs.confusion)
            if "segmentation" in changed and rs.segmentation:
                self.segmentation = dict(rs.segmentation)
            if "detection" in changed and rs.detection:
                self.detection = dict(rs.detection)
            if "sweep" in changed:
                self.sweep = [dict(rs.sweep[i]) for i in sorted(rs.sweep)]
            if "maps" in changed:
                self.maps = list(rs.maps)
            if "jobs" in changed or rs.ended:
                failed = tuple(rs.failed_jobs())
                # the stderr files are read again only when the failed jobs (or the end) change
                if (failed or rs.ended) and (failed, rs.ended) != self._failed_shown:
                    self._failed_shown = (failed, rs.ended)
                    self.failures = self._run.failures(rs) if self._run is not None else rs.failures()
            self.state = rs.state
            self.finished = rs.ended
            self.updates += 1
        self._watch_for_resume()

    def _direction(self) -> str:
        try:
            return str(self._run.spec.hpo.direction) if self._run is not None else "max"
        except (MlwfError, OSError):
            return "max"

    # -- rendering (observers; data -> render functions -> child widgets) ------------------
    @traitlets.observe("state", "jobs", "events_seen")
    def _draw_status(self, change) -> None:
        totals = self.run_state.totals()
        self._status.value = render.status_line(self.state, totals, self.events_seen)
        self._progress.value = 100.0 if self.state == "Success" else totals["percent_done"]
        self._progress.bar_style = {"Success": "success", "Failure": "danger", "Lost": "warning"}.get(self.state, "")

    @traitlets.observe("jobs")
    def _draw_jobs(self, change) -> None:
        self._jobs.value = render.jobs_html(change["new"])

    def _later(self, name: str, draw: Any) -> None:
        if getattr(self, "_deferring", False):
            self._deferred[name] = draw
        else:
            draw()

    @traitlets.observe("history")
    def _draw_history(self, change) -> None:
        hist = change["new"]
        self._later("history", lambda: set_image(self._curves, figures.history_figure(hist) if hist else None))

    @traitlets.observe("checkpoints")
    def _draw_checkpoints(self, change) -> None:
        self._checkpoints.value = render.checkpoints_html(change["new"])

    @traitlets.observe("leaderboard")
    def _draw_leaderboard(self, change) -> None:
        rows = change["new"]
        self._leaderboard.value = render.leaderboard_html(rows)
        self._later("trials", lambda: set_image(self._trials, figures.trials_figure(rows) if rows else None))

    @traitlets.observe("confusion")
    def _draw_confusion(self, change) -> None:
        c = change["new"]
        if c.get("matrix") is not None:
            names = c.get("classes") or [str(i) for i in range(len(c["matrix"]))]
            self._later("confusion", lambda: set_image(
                self._cm, figures.confusion_figure(c["matrix"], names, c.get("colors"))))

    @traitlets.observe("segmentation")
    def _draw_segmentation(self, change) -> None:
        self._segmentation.value = render.segmentation_html(change["new"])

    @traitlets.observe("detection")
    def _draw_detection(self, change) -> None:
        self._detection.value = render.detection_html(change["new"])

    @traitlets.observe("sweep")
    def _draw_sweep(self, change) -> None:
        self._sweep.value = render.sweep_html(change["new"])

    @traitlets.observe("maps")
    def _draw_map(self, change) -> None:
        paths = change["new"]
        self._later("map", lambda: set_image(self._map, self._map_png(paths[-1]) if paths else None))

    def _map_png(self, path: str) -> bytes:
        c = self.run_state.confusion or {}
        return figures.map_png(path, list(c.get("classes") or []), list(c.get("colors") or []))

    @traitlets.observe("failures")
    def _draw_failures(self, change) -> None:
        rows = change["new"]
        self._failures.value = render.failures_html([r["job"] for r in rows], {r["job"]: r for r in rows})

    @traitlets.observe("error")
    def _draw_error(self, change) -> None:
        self._error.value = render.error_html(change["new"])

    # -- unattended use --------------------------------------------------------------------
    def wait(self, timeout: float | None = None, *, show: bool = True) -> str:
        """Block until the run has finished; returns the final state.

        This is the one blocking call of the widgets, for papermill and scripts:
        in an interactive notebook, leave the monitor running instead. A monitor that
        was displayed (live, or as its static form, which now gets the final state) is
        not shown again; one that never was shows the run's summary here when ``show``.
        """
        f = self._follower
        if f is not None and not f.alive and not f.finished.is_set():
            f.start(self._on_change, min_interval=1.0 / self.max_rate)
        if f is not None and not f.join(timeout):
            raise TimeoutError(f"run {self.run_dir} not finished after {timeout} s (state {self.state})")
        if f is not None and f.error is not None:
            self.error = f"monitor stopped: {f.error!r}"
        state = self.run_state.state
        if self._static_handle is not None:  # shown statically already: that output gets the final state
            self.refresh_static()
        elif show and not self.shown:
            show_state(self.run_state, title=self.run_dir, failures=self.failures, direction=self._direction())
        return state


def _as_run(run: Any) -> Any:
    """A Run for a path when it is a run directory (has workflow.yml); None for bare event folders."""
    if hasattr(run, "status"):
        return run
    from mlwf_nb.runs import Run

    if (Path(os.fspath(run)) / "workflow.yml").exists():
        return Run.attach(run)
    return None
