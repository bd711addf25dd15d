"""HTML renderers: plain data in, HTML strings out (no widgets, no files).

The widgets put these strings into ``ipywidgets.HTML`` values; the static
fallback (:mod:`mlwf_nb.views.show`) shows the same strings with IPython.display,
so an executed notebook and a live one read alike.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from mlwf_nb.rundir.states import exit_reason

__all__ = [
    "table_html", "jobs_html", "progress_html", "leaderboard_html", "checkpoints_html",
    "failures_html", "error_html", "scenes_html", "split_html", "swatch_html", "status_line",
    "segmentation_html", "detection_html", "sweep_html", "samples_html", "image_html", "png_size",
    "MAX_IMAGE_WIDTH",
]

#: widest an image is shown (CSS px): a 1000-1400 px notebook keeps its margins
MAX_IMAGE_WIDTH = 900

_STATE_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "queued": "#6a1b9a",
                 "Success": "#2e7d32", "Failure": "#c62828", "Running": "#1565c0", "Lost": "#ef6c00",
                 "Cancelled": "#757575"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: Sequence[int] = (),
               caption: str = "") -> str:
    """A compact HTML table; cells are escaped unless their column index is in ``raw``."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(f"<td style='padding:2px 8px'>{v if i in raw else _e(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption style='text-align:left'>{_e(caption)}</caption>" if caption else ""
    return (f"<table class='mlwf-table' style='border-collapse:collapse;font-size:90%'>{cap}"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _badge(state: str) -> str:
    color = _STATE_COLORS.get(state, "#455a64")
    return f"<span style='color:{color};font-weight:600'>{_e(state)}</span>"


def status_line(state: str, totals: Mapping[str, Any], n_events: int = 0) -> str:
    """One line: run state, job counts and events seen."""
    return (f"<div class='mlwf-status'>{_badge(state)} &nbsp; {totals.get('succeeded', 0)}/"
            f"{totals.get('total', 0)} jobs done, {totals.get('failed', 0)} failed, "
            f"{totals.get('running', 0) + totals.get('queued', 0)} running &nbsp; "
            f"<small>{n_events} events</small></div>")


def jobs_html(jobs: Mapping[str, Mapping[str, Any]], limit: int = 200) -> str:
    """The job table: name, step, state, exit code, tries.

    A workflow of thousands of jobs shows failed and running jobs first, then the
    others, up to ``limit`` rows, and says how many were left out (the counts per
    state are in the status line).
    """
    if not jobs:
        return "<i>no jobs yet</i>"
    order = {"failed": 0, "running": 1, "queued": 1, "post": 1}
    names = list(jobs)
    if len(names) > limit:
        names = sorted(names, key=lambda n: order.get(str(jobs[n].get("state", "")), 2))[:limit]
    rows = [(_e(n), _e(jobs[n].get("step", "")), _badge(str(jobs[n].get("state", ""))),
             _e(jobs[n].get("exit_code", "")), _e(jobs[n].get("tries", ""))) for n in names]
    html = table_html(["job", "step", "state", "exit", "tries"], rows, raw=(0, 1, 2, 3, 4))
    if len(jobs) > len(names):
        html += f"<small>{len(jobs) - len(names)} more jobs not listed</small>"
    return html


def progress_html(percent: float, width_px: int = 300) -> str:
    """A static progress bar (the live widget uses a FloatProgress), labelled in whole percent."""
    pct = max(0.0, min(100.0, float(percent)))
    return (f"<div style='width:{width_px}px;max-width:100%;border:1px solid #999;height:12px'>"
            f"<div style='width:{pct:.1f}%;background:#1565c0;height:100%'></div></div>"
            f"<small>{pct:.0f}% done</small>")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes, read from the header ((0, 0) for anything else)."""
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    w, h = struct.unpack(">II", png[16:24])
    return int(w), int(h)


def image_html(png: bytes, max_width: int = MAX_IMAGE_WIDTH) -> str:
    """A PNG inline at its natural width (at most ``max_width`` px, never wider than its cell, never stretched)."""
    width = min(png_size(png)[0], max_width)
    return (f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' width='{width}' "
            "style='max-width:100%;height:auto;display:block'>")


def leaderboard_html(rows: Sequence[Mapping[str, Any]], objective: str = "objective", top: int = 20) -> str:
    """HPO leaderboard: rank, round/trial, objective, status and the hyper-parameters."""
    if not rows:
        return "<i>no finished trials yet</i>"
    names = sorted({k for r in rows for k in (r.get("hp") or {})})
    out = []
    for rank, r in enumerate(rows[:top], 1):
        obj = r.get("objective")
        hp = r.get("hp") or {}
        out.append([rank, f"{r.get('round', 0)}/{r.get('trial', '')}",
                    f"{obj:.4g}" if isinstance(obj, (int, float)) else obj, r.get("status", ""),
                    *[_fmt(hp.get(n)) for n in names]])
    return table_html(["#", "round/trial", objective, "status", *names], out)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))


def checkpoints_html(checkpoints: Sequence[Mapping[str, Any]]) -> str:
    """Checkpoints saved or restored, newest last."""
    if not checkpoints:
        return "<i>no checkpoints yet</i>"
    rows = [(c.get("event", ""), c.get("job", ""), c.get("epoch", ""), c.get("path", "")) for c in checkpoints]
    return table_html(["event", "job", "epoch", "path"], rows)


def failures_html(failed: Sequence[str], jobs: Mapping[str, Mapping[str, Any]]) -> str:
    """Failed jobs with the tail of their stderr."""
    if not failed:
        return ""
    parts = []
    for name in failed:
        j = jobs.get(name, {})
        tail = str(j.get("stderr_tail") or "(no stderr captured)")[-3000:]
        reason = exit_reason(j.get("exit_code"), str(j.get("stderr_tail") or ""))
        parts.append(f"<div class='mlwf-failure'><b style='color:#c62828'>FAILED {_e(name)}</b> "
                     f"(exit {_e(j.get('exit_code'))}, tries {_e(j.get('tries'))}): {_e(reason)}"
                     f"<pre style='max-height:16em;overflow:auto;background:#fff3f3'>{_e(tail)}</pre></div>")
    return "".join(parts)


def error_html(message: str) -> str:
    """An error state: a red box with the message ("" for no error)."""
    if not message:
        return ""
    return (f"<div class='mlwf-error' style='color:#b71c1c;border:1px solid #e57373;background:#ffebee;"
            f"padding:4px 8px'>&#9888; {_e(message)}</div>")


def swatch_html(color: Sequence[int], name: str = "") -> str:
    """A small colour square followed by a name."""
    r, g, b = (int(c) for c in list(color)[:3])
    return (f"<span style='display:inline-block;width:10px;height:10px;background:rgb({r},{g},{b});"
            f"border:1px solid #555;margin-right:3px'></span>{_e(name)}")


def scenes_html(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str],
                class_colors: Sequence[Sequence[int]]) -> str:
    """Scene table: id, source, size, split and class fractions (as percentages)."""
    if not rows:
        return "<i>no scenes</i>"
    heads = [swatch_html(c, n) for n, c in zip(class_names, class_colors, strict=False)]
    body = []
    for r in rows:
        hist = r.get("fractions") or []
        body.append([_e(r.get("id")), _e(r.get("source")), _e(r.get("size", "")), _e(r.get("split", "")),
                     *[f"{100 * f:.0f}%" for f in hist]])
    cols = ["scene", "source", "size", "split"]
    head = "".join(f"<th style='padding:2px 8px'>{_e(c)}</th>" for c in cols) + "".join(
        f"<th style='padding:2px 8px'>{h}</th>" for h in heads)
    rows_html = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{v}</td>" for v in row) + "</tr>"
                        for row in body)
    return (f"<table class='mlwf-table' style='border-collapse:collapse;font-size:90%'><thead><tr>{head}"
            f"</tr></thead><tbody>{rows_html}</tbody></table>")


def split_html(split: Mapping[str, Sequence[str]]) -> str:
    """Split preview: how many scenes each split gets, and which."""
    rows = [(name, len(ids), ", ".join(ids[:12]) + (" ..." if len(ids) > 12 else ""))
            for name, ids in split.items()]
    return table_html(["split", "scenes", "ids"], rows)


def segmentation_html(result: Mapping[str, Any]) -> str:
    """A segmentation result (``artifact{kind: "segmentation"}``): Dice, IoU and any other scores."""
    if not result:
        return ""
    names = [k for k in ("dice", "iou") if k in result]
    names += sorted(k for k, v in result.items() if k not in names and k not in ("path", "job", "relay")
                    and isinstance(v, (int, float)) and not isinstance(v, bool))
    rows = [(n.replace("_", " "), f"{float(result[n]):.4f}") for n in names]
    return "<b>segmentation</b>" + table_html(["metric", "value"], rows)


def detection_html(result: Mapping[str, Any]) -> str:
    """A detection result (``artifact{kind: "detection"}``): mAP and per-class AP, precision, recall."""
    if not result:
        return ""
    fmt = lambda v: "" if v is None else f"{float(v):.3f}"  # noqa: E731
    rows = [(c.get("class"), fmt(c.get("ap50")), fmt(c.get("ap")), fmt(c.get("precision")), fmt(c.get("recall")),
             c.get("objects", "")) for c in result.get("per_class", [])]
    return (f"<b>detection</b>: mAP@0.5 {fmt(result.get('map50'))}, mAP@0.5:0.95 {fmt(result.get('map'))}"
            + table_html(["class", "AP@0.5", "AP@0.5:0.95", "precision", "recall", "objects"], rows))


def sweep_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """A sweep's table (``sweep_result`` events): one row per combination, its parameters and records."""
    if not rows:
        return ""
    params = list(rows[0].get("parameters") or {})
    records = sorted({k for r in rows for k in (r.get("records") or {})})
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    body = [(r.get("index"), *(cell((r.get("parameters") or {}).get(p)) for p in params), r.get("status"),
             *(cell((r.get("records") or {}).get(k)) for k in records), r.get("error") or "") for r in rows]
    return "<b>sweep</b>" + table_html(["#", *params, "status", *records, "error"], body)


def samples_html(name: str, task: str, count: int, shape: Sequence[int], class_names: Sequence[str],
                 class_colors: Sequence[Sequence[int]]) -> str:
    """Summary of a sample dataset (``layout: samples``): task, size, image shape and classes."""
    swatches = " ".join(swatch_html(c, n) for n, c in zip(class_names, class_colors, strict=False))
    return (f"<div class='mlwf-samples'><b>{_e(name)}</b>: {_e(task)}, {int(count)} images of "
            f"{' x '.join(str(int(v)) for v in shape)} (layout <code>samples</code>)<br>"
            f"classes: {swatches}</div>")
