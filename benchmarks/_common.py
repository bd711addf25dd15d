"""Shared harness for benchmark rows: timing, honest peak memory, results and the report table.

A row is a callable ``fn(quick: bool) -> dict | list[dict]`` (or ``fn()``) listed in a
``benchmarks/bench_<area>.py`` module's ``ROWS``; name it with :func:`row` so
``--only NAME`` can pick it without running the others. Each dict comes from
:func:`result`: ``row, measure, baseline, value, unit, ratio, target, met, note``.

Time: :func:`median_time` (warm-up runs, then the median of repeats). Memory:
:func:`child_peak_rss` runs code in a fresh interpreter that reports its own
peak resident memory at exit; :func:`peak_rss_delta` subtracts a
baseline child that does the same imports and no work, so interpreter and
library footprints are not counted.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "WORK", "MB", "TMPFS", "engine_tmpdir", "row", "row_name", "result", "median_time", "child_peak_rss",
           "peak_rss_delta", "machine_info", "format_table", "markdown_report"]

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"  # git-ignored cache for generated inputs
MB = 1024 * 1024
_DISCUSSION = ROOT / "benchmarks" / "discussion.md"  # hand-written findings, appended to the report
COLUMNS = ("row", "measure", "baseline", "value", "ratio", "target", "met?")


TMPFS = "/dev/shm"
"""Where the engine rows write their no-op runs when it exists: this machine's disk took 0.3-2.4 ms for
one mkdir and two file creations depending on what else ran, which swamped the engine's own cost."""


def engine_tmpdir() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for the engine rows' no-op runs: on :data:`TMPFS` where it exists."""
    return tempfile.TemporaryDirectory(dir=TMPFS if os.path.isdir(TMPFS) else None)


def row(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator naming a benchmark row (used by ``--only``)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.row_name = name  # type: ignore[attr-defined]
        return fn
    return wrap


def row_name(fn: Callable[..., Any]) -> str:
    """The row's name: its :func:`row` name, or the function name without ``bench_``."""
    return str(getattr(fn, "row_name", fn.__name__.removeprefix("bench_")))


def result(row: str, measure: str, baseline: float | None, value: float, unit: str,
           target: str, met: bool | None, *, ratio: float | None = None, note: str = "") -> dict[str, Any]:
    """One result line. ``ratio`` defaults to ``value / baseline`` when there is a baseline."""
    if ratio is None and baseline:
        ratio = value / baseline
    def plain(v: Any) -> Any:  # numpy scalars (np.bool_, np.float64) are not JSON
        return v.item() if hasattr(v, "item") else v

    return {"row": row, "measure": measure, "baseline": plain(baseline), "value": plain(value), "unit": unit,
            "ratio": plain(ratio), "target": target, "met": None if met is None else bool(met), "note": note}


def median_time(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_HWM = ("\nimport resource as _r, sys as _s\n"
        "try:\n"
        "    _k = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "except (OSError, IndexError):\n"
        "    _k = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss\n"
        "_s.stderr.write(f'\\n__PEAK_KIB__ {_k}\\n')\n")


def child_peak_rss(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> int:
    """Peak resident memory (bytes) of a fresh ``python -c code`` child.

    The child reports its own high-water mark at exit: ``VmHWM`` from
    ``/proc/self/status`` where there is one, else ``getrusage(RUSAGE_SELF).ru_maxrss``.
    (On Linux a child's ``ru_maxrss`` seen by the parent keeps the high-water
    mark of the parent at fork time, across ``exec``: a parent holding a big
    array would inflate every child. ``VmHWM`` belongs to the new address space.)

    Raises:
        RuntimeError: The child failed or timed out (its stderr is in the message).
    """
    try:
        proc = subprocess.run([sys.executable, "-c", code + _HWM], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"benchmark child timed out after {timeout}s: {code[:200]}") from err
    if proc.returncode:
        raise RuntimeError(f"benchmark child exited {proc.returncode}: {code[:200]}\n{proc.stderr[-2000:]}")
    kib = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("__PEAK_KIB__")]
    return int(kib[-1]) * 1024


def peak_rss_delta(code: str, baseline_code: str, repeats: int = 1,
                   env: dict[str, str] | None = None) -> tuple[int, int]:
    """(peak of ``code``) minus (peak of ``baseline_code``), both in fresh children; medians.

    Returns:
        ``(delta_bytes, baseline_bytes)``.
    """
    base = statistics.median(child_peak_rss(baseline_code, env) for _ in range(repeats))
    work = statistics.median(child_peak_rss(code, env) for _ in range(repeats))
    return int(work - base), int(base)


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, Python and platform of this machine."""
    cpu = platform.processor() or platform.machine()
    ram = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": str(cores), "ram": ram, "python": platform.python_version(),
            "platform": platform.platform()}


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    text = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{text} {unit}".strip()


def _cells(r: dict[str, Any]) -> list[str]:
    met = {True: "yes", False: "**no**", None: "-"}[r.get("met")]
    ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
    return [str(r["row"]), str(r["measure"]), _num(r.get("baseline"), r.get("unit", "")),
            _num(r.get("value"), r.get("unit", "")), ratio, _target(r.get("target")), met]


def _target(t: Any) -> str:
    if t is None or t == "":
        return "-"
    return f"<= {t}x" if isinstance(t, (int, float)) else str(t)


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of results (also readable as plain text)."""
    rows = [list(COLUMNS), *(_cells(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    line = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    line.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(line)


def markdown_report(results: Sequence[dict[str, Any]], command: str, quick: bool, date: str | None = None) -> str:
    """The whole ``docs/benchmarks.md`` text: table, notes, machine, date (default now), command."""
    info = machine_info()
    notes = [f"- **{r['row']} / {r['measure']}**: {r['note']}" for r in results if r.get("note")]
    parts = [
        "# Benchmarks", "",
        "Written by `python -m benchmarks.run` (`make bench`); do not edit by hand. Ratios are "
        "value / baseline, measured in the same run on the same machine.", "",
        format_table(results), "",
        *(["## Notes", "", *notes, ""] if notes else []),
        *([_DISCUSSION.read_text(encoding="utf-8").rstrip(), ""] if _DISCUSSION.is_file() else []),
        "## Machine", "",
        f"- CPU: {info['cpu']} ({info['cores']} cores available)",
        f"- RAM: {info['ram']}",
        f"- Python {info['python']} on {info['platform']}",
        f"- Date: {date or _dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command}`" + (" (quick mode: small inputs, smoke test only)" if quick else ""),
        *_runs(results),
        "",
    ]
    return "\n".join(parts)


def _runs(results: Sequence[dict[str, Any]]) -> list[str]:
    """Which command measured which rows (``--only`` keeps the other rows of earlier runs in the report)."""
    runs: dict[tuple[str, str], list[str]] = {}
    for r in results:
        names = runs.setdefault((r.get("command", ""), r.get("measured", "")), [])
        if r["row"] not in names:
            names.append(r["row"])
    if len(runs) < 2:
        return []
    lines = ["- Rows by run (each row's baseline and value come from the same run):"]
    for (command, when), names in runs.items():
        run = f"`{command}`, {when}" if command else "an earlier run (command not recorded)"
        lines.append(f"  - {run}: {', '.join(names)}")
    return lines
