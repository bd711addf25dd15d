"""Static rendering for notebooks run without a widget front end (papermill, nbconvert).

Every ``show_*`` function displays HTML tables and matplotlib figures with
``IPython.display`` and returns what it showed, so an executed notebook keeps
the dataset table, the training curves and the confusion matrix as outputs.

    >>> show_run(run)                   # state, jobs, curves, confusion matrix, maps, report
"""

from __future__ import annotations

import os
from typing import Any

from matplotlib.figure import Figure

from mlwf_nb._io import read_json
from mlwf_nb.views import figures, render

__all__ = ["is_static", "show_figure", "show_dataset", "show_run", "show_monitor", "show_spec", "show_leaderboard"]


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
    from IPython.display import Image

    return Image(data=figures.figure_png(fig, dpi=90), format="png")


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


def show_monitor(monitor: Any) -> dict[str, Any]:
    """Show a RunMonitor's summary statically (what :meth:`RunMonitor.wait` prints at the end)."""
    rs = monitor.run_state
    shown: dict[str, Any] = {"state": monitor.state}
    parts = [f"<h4>run {render._e(monitor.run_dir)}</h4>",
             render.status_line(monitor.state, rs.totals(), len(rs.types)),
             render.progress_html(100.0 if monitor.state == "Success" else rs.totals()["percent_done"]),
             render.jobs_html(rs.jobs)]
    if monitor.failures:
        parts.append(render.failures_html([f["job"] for f in monitor.failures],
                                          {f["job"]: f for f in monitor.failures}))
    if rs.checkpoints:
        parts.append(render.checkpoints_html(rs.checkpoints))
    if rs.trials:
        parts.append("<h4>HPO leaderboard</h4>" + render.leaderboard_html(monitor.leaderboard))
    _show("".join(parts))
    if rs.history:
        shown["history"] = figures.history_figure(rs.history)
        _show(shown["history"])
    if rs.confusion:
        c = rs.confusion
        shown["confusion"] = figures.confusion_figure(c["matrix"], c.get("classes") or [], c.get("colors"))
        _show(shown["confusion"])
    if rs.segmentation:
        shown["segmentation"] = render.segmentation_html(rs.segmentation)
        _show(shown["segmentation"])
    if rs.maps:
        from IPython.display import Image

        shown["maps"] = list(rs.maps)
        _show(Image(filename=rs.maps[-1]))
    return shown


def show_run(run: Any) -> dict[str, Any]:
    """Show a finished (or running) run: state, jobs, curves, confusion matrix, maps and report."""
    from IPython.display import Image, Markdown

    st = run.status()
    m = st.get("mlwf", {})
    jobs = m.get("jobs", {})
    state = m.get("state") or st["dags"]["root"]["state"]
    shown: dict[str, Any] = {"state": state}
    _show(f"<h4>run {render._e(run.dir)}</h4>" + render.status_line(state, st["totals"])
          + render.jobs_html(jobs) + render.failures_html(m.get("failed_jobs", []), jobs))
    out = run.outputs()
    if "history" in out:
        hist = read_json(out["history"])
        hist = hist.get("history", hist) if isinstance(hist, dict) else {}
        shown["history"] = figures.history_figure(hist)
        _show(shown["history"])
    if "confusion_matrix" in out:
        cm = read_json(out["confusion_matrix"])
        shown["confusion"] = figures.confusion_figure(cm["matrix"], cm.get("classes") or [], cm.get("colors"))
        _show(shown["confusion"])
    if "leaderboard" in out:
        board = read_json(out["leaderboard"])
        rows = board.get("trials", board) if isinstance(board, dict) else board
        shown["leaderboard"] = show_leaderboard(list(rows) if isinstance(rows, list) else [])
    shown["maps"] = [p for k, p in out.items() if k.startswith("map:")]
    for p in shown["maps"][:4]:
        _show(f"<b>map {render._e(p.stem)}</b>", Image(filename=str(p)))
    if "report" in out:
        _show(Markdown(out["report"].read_text(encoding="utf-8")))
    return shown
