"""Static rendering for notebooks run without a widget front end (papermill, nbconvert).

Every ``show_*`` function displays HTML tables and matplotlib figures with
``IPython.display`` and returns what it showed, so an executed notebook keeps
the dataset table, the training curves and the confusion matrix as outputs.

    >>> show_run(run)                   # state, jobs, curves, confusion matrix, maps, report

A run is shown from its events (``Run.run_state()``), the one reading every view
shares with ``Run.status()`` and the RunMonitor widget.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from mlwf_nb.errors import MlwfError
from mlwf_nb.views import figures, render

if TYPE_CHECKING:
    from mlwf_nb.runs import Run, RunState

__all__ = ["is_static", "show_figure", "show_dataset", "show_run", "show_report", "show_state", "show_spec",
           "show_leaderboard"]


def is_static(static: bool | None = None) -> bool:
    """Whether to render static output: ``static`` if given, else ``$MLWF_STATIC`` (1/true/yes)."""
    if static is not None:
        return bool(static)
    return os.environ.get("MLWF_STATIC", "").strip().lower() in ("1", "true", "yes", "on")


def _show(*objs: Any) -> None:
    from IPython.display import HTML, display

    for obj in objs:
        if isinstance(obj, str):
            obj = HTML(obj)
        elif isinstance(obj, Figure):
            obj = _png(obj)
        display(obj)


def _png(fig: Figure) -> Any:
    return _image(figures.figure_png(fig, dpi=90))


def _image(png: bytes) -> Any:
    from IPython.display import Image

    return Image(data=png, format="png")


def show_figure(fig: Figure) -> Figure:
    """Show a matplotlib Figure as a PNG (works without ``%matplotlib inline``) and return it."""
    _show(fig)
    return fig


def show_spec(spec: Any) -> str:
    """Show a RunSpec as YAML."""
    html = f"<pre>{render._e(spec.to_yaml())}</pre>"
    _show(html)
    return html


def show_dataset(ds: Any, split: dict[str, list[str]] | None = None) -> str:
    """Show a dataset's scene table (source, size, split, class fractions) and returns the HTML."""
    from mlwf_nb.views import scenes

    html = (f"<h4>{render._e(ds.name)}: {len(ds.scenes)} scenes, sources {', '.join(ds.sources)}</h4>"
            + render.scenes_html(scenes.scene_rows(ds, split), ds.class_names, ds.class_colors))
    if split:
        html += render.split_html(split)
    _show(html)
    return html


def show_leaderboard(rows: list[dict[str, Any]], objective: str = "objective") -> str:
    """Show an HPO leaderboard (rows best first)."""
    html = "<h4>HPO leaderboard</h4>" + render.leaderboard_html(rows, objective)
    _show(html)
    from mlwf_nb.views.figures import trials_figure

    fig = trials_figure(rows, objective)
    if fig is not None:
        show_figure(fig)
    return html


def show_state(rs: RunState, *, title: str = "", failures: list[dict[str, Any]] | None = None,
               direction: str = "max", scores: bool = True) -> dict[str, Any]:
    """Show what a run's events say (:class:`~mlwf_nb.runs.RunState`): state, jobs, curves, results.

    Args:
        rs: the folded run state (``Run.run_state()``, ``RunMonitor.run_state``).
        title: a heading (the run directory).
        failures: failed jobs with their stderr tails (``Run.failures``); default: the state's own.
        direction: the HPO objective's direction, for the leaderboard's order.
        scores: show the segmentation and detection score tables (False where the run's
            report, which holds the same scores, is shown next).

    Returns:
        What was shown: ``state`` and, where there were any, ``history``/``confusion`` (Figures),
        ``segmentation`` (HTML), ``leaderboard`` (rows) and ``maps`` (paths).
    """
    totals = rs.totals()
    failures = rs.failures() if failures is None else failures
    shown: dict[str, Any] = {"state": rs.state}
    parts = [f"<h4>run {render._e(title)}</h4>" if title else "",
             render.status_line(rs.state, totals, len(rs.types)),
             render.progress_html(100.0 if rs.state == "Success" else totals["percent_done"]),
             render.jobs_html(rs.jobs)]
    if failures:
        parts.append(render.failures_html([f["job"] for f in failures], {f["job"]: f for f in failures}))
    if rs.checkpoints:
        parts.append(render.checkpoints_html(rs.checkpoints))
    _show("".join(parts))
    if rs.history:
        shown["history"] = figures.history_figure(rs.history)
        _show(shown["history"])
    if rs.confusion:
        c = rs.confusion
        shown["confusion"] = figures.confusion_figure(c["matrix"], c.get("classes") or [], c.get("colors"))
        _show(shown["confusion"])
    if rs.segmentation and scores:
        shown["segmentation"] = render.segmentation_html(rs.segmentation)
        _show(shown["segmentation"])
    if rs.detection and scores:
        shown["detection"] = render.detection_html(rs.detection)
        _show(shown["detection"])
    if rs.sweep:
        shown["sweep"] = render.sweep_html([rs.sweep[i] for i in sorted(rs.sweep)])
        _show(shown["sweep"])
    if rs.trials:
        shown["leaderboard"] = rs.leaderboard(direction)
        show_leaderboard(shown["leaderboard"])
    shown["maps"] = list(rs.maps)
    classes = list((rs.confusion or {}).get("classes") or [])
    colors = list((rs.confusion or {}).get("colors") or [])
    for path in rs.maps[-4:]:  # land-cover maps with title, legend and scale bar; others as written
        png = figures.map_png(path, classes, colors)
        if png:
            _show(_image(png))
    return shown


def show_run(run: Run) -> dict[str, Any]:
    """Show a finished (or running) run as its events tell it, then its report (see :func:`show_state`).

    Each table is shown once: where the run has a report, its scores come from the report only.
    """
    rs = run.run_state()
    has_report = "report" in run.outputs()
    shown = show_state(rs, title=str(run.dir), failures=run.failures(rs), direction=_direction(run),
                       scores=not has_report)
    if has_report:
        shown["report"] = show_report(run)
    return shown


def show_report(run: Run) -> str:
    """Show a run's evaluation report (``outputs/report.md``) as Markdown and return its text.

    Its headings are shown two levels down (``#`` as ``###``), below the notebook's own section
    headings; its links (to the maps beside it) are made relative to the kernel's working folder,
    where the notebook's own links start. A run without one (still running, or failed before its
    evaluation) shows a line that says so.
    """
    from IPython.display import Markdown

    report = run.outputs().get("report")
    if report is None:
        text = f"*no evaluation report in `{run.dir}` (the run is {run.state})*"
    else:
        text = report.read_text(encoding="utf-8")
    shown = re.sub(r"^(#{1,4}) ", r"##\1 ", text, flags=re.MULTILINE)
    if report is not None:
        shown = _relink(shown, report.parent)
    _show(Markdown(shown))
    return text


def _relink(markdown: str, base: Path) -> str:
    """Markdown whose relative links (written relative to ``base``) point there from the working folder."""
    def fix(m: re.Match[str]) -> str:
        target = m.group(1)
        if "://" in target or target.startswith(("/", "#")):
            return m.group(0)
        return f"]({Path(os.path.relpath(base / target)).as_posix()})"

    return re.sub(r"\]\(([^)\s]+)\)", fix, markdown)


def _direction(run: Run) -> str:
    try:
        return str(run.spec.hpo.direction)
    except (MlwfError, OSError):
        return "max"
