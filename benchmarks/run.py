"""Run every benchmark row and write ``docs/benchmarks.md``.

Usage::

    python -m benchmarks.run [--quick] [--only ROW ...] [--out PATH | --no-write]
    python -m benchmarks.run --render   # the report again from its results (discussion.md edited)

Rows come from each ``benchmarks/bench_*.py`` module's ``ROWS`` (callables taking
``quick`` or no argument). With ``--only``
the other rows already in the report are kept (the report embeds its results
as JSON in a comment), so one row can be re-measured alone. A row that raises
is reported as not met, with the error as its note, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import re
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, format_table, markdown_report, result, row_name

__all__ = ["discover", "main"]

_JSON = re.compile(r"<!-- results: (.*?) -->", re.S)


def discover() -> list[Callable[..., Any]]:
    """All rows of all ``benchmarks/bench_*.py`` modules, in module then list order."""
    rows: list[Callable[..., Any]] = []
    pkg = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(pkg)]), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"benchmarks.{info.name}")
            rows.extend(getattr(module, "ROWS", []))
    return rows


def _run_row(fn: Callable[..., Any], quick: bool) -> tuple[list[dict[str, Any]], bool]:
    name = row_name(fn)
    t0 = time.perf_counter()
    try:
        takes_quick = bool(inspect.signature(fn).parameters)
        out = fn(quick) if takes_quick else fn()
    except Exception as err:  # a broken row is reported, the others still run
        traceback.print_exc()
        return [result(name, "error", None, float("nan"), "", "runs", False,
                       note=f"{type(err).__name__}: {err}")], False
    out = out if isinstance(out, list) else [out]
    print(f"[bench] {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return out, True


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars in rows that build their dicts by hand."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"benchmark result value {value!r} of type {type(value).__name__} is not JSON")


def _previous(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    found = _JSON.search(path.read_text(encoding="utf-8"))
    return list(json.loads(found.group(1))) if found else []


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fresh = {r["row"] for r in new}
    kept = [r for r in old if r["row"] not in fresh]
    order = [r["row"] for r in old]
    merged = kept + new
    return sorted(merged, key=lambda r: order.index(r["row"]) if r["row"] in order else len(order))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.run``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke test)")
    parser.add_argument("--only", nargs="+", metavar="ROW", help="run only these rows")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report path")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: write the report again from the results it embeds (after editing "
                             "benchmarks/discussion.md)")
    args = parser.parse_args(argv)
    if args.render:
        from mlwf_nb._io import write_text

        report = _previous(args.out)
        if not report:
            parser.error(f"{args.out} embeds no results to render; run the benchmarks first")
        last = max(report, key=lambda r: r.get("measured", ""))  # the Command line names the latest run
        text = markdown_report(report, last.get("command", "python -m benchmarks.run"), False, last.get("measured"))
        write_text(args.out, text + f"\n<!-- results: {json.dumps(report, allow_nan=True, default=_plain)} -->\n")
        return 0
    rows = discover()
    names = [row_name(fn) for fn in rows]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown row(s) {unknown}; known rows: {names}")
        rows = [fn for fn in rows if row_name(fn) in args.only]
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "") + \
        (f" --only {shlex.join(args.only)}" if args.only else "")  # row names have spaces
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())  # when this run began
    results: list[dict[str, Any]] = []
    ok = True
    for fn in rows:
        out, good = _run_row(fn, args.quick)
        results.extend({**r, "command": command, "measured": measured} for r in out)  # which run: kept by --only
        ok &= good
    print(format_table(results))
    if not args.no_write:
        from mlwf_nb._io import write_text

        report = _merge(_previous(args.out), results) if args.only else results
        text = markdown_report(report, command, args.quick)
        write_text(args.out, text + f"\n<!-- results: {json.dumps(report, allow_nan=True, default=_plain)} -->\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
