"""Trial results, ranked: the leaderboard and the best trial of a search.

A trial job writes one ``result.json``::

    {"status": "ok" | "failed" | "skipped", "objective": 0.93, "metrics": {...},
     "error": null, "round": 2, "trial": 1, "trial_id": "07", "values": {...},
     "epochs": 4, "checkpoint": "..."}

These functions only read and rank such documents; writing files and emitting
events is the caller's job (:func:`mlwf_nb.hpo.rounds.select`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json

__all__ = ["load_results", "rank_results", "best_result", "RESULT_STATUSES"]

RESULT_STATUSES = ("ok", "failed", "skipped")


def load_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Read ``result.json`` files; a missing or unreadable one becomes a failed entry.

    Args:
        paths: The trial jobs' result files.

    Returns:
        One dict per path, with ``path`` added.
    """
    out = []
    for path in paths:
        try:
            doc = read_json(path)
            if not isinstance(doc, dict):
                raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
        except (OSError, ValueError) as err:
            doc = {"status": "failed", "error": f"cannot read result {str(path)!r}: {err}"}
        doc["path"] = str(path)
        out.append(doc)
    return out


def _objective(doc: dict[str, Any]) -> float | None:
    value = doc.get("objective")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def rank_results(results: Iterable[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Leaderboard rows: completed trials best first, then failed ones; skipped ones left out.

    Args:
        results: Result documents (:func:`load_results`).
        direction: ``"max"`` or ``"min"``.

    Returns:
        Rows with ``rank`` (1-based; ``None`` for failed), ``round``, ``trial``,
        ``trial_id``, ``status``, ``objective``, ``metrics``, ``values``, ``epochs``, ``error``.
    """
    rows: list[dict[str, Any]] = []
    for doc in results:
        if doc.get("status") == "skipped":
            continue
        ok = doc.get("status") == "ok" and _objective(doc) is not None
        rows.append({
            "round": doc.get("round"), "trial": doc.get("trial"), "trial_id": doc.get("trial_id"),
            "status": "ok" if ok else "failed", "objective": _objective(doc) if ok else None,
            "metrics": doc.get("metrics") or {}, "values": doc.get("values") or {},
            "epochs": doc.get("epochs"),
            "error": None if ok else (doc.get("error") or "objective missing or not finite"),
        })
    sign = -1.0 if direction == "max" else 1.0
    done = sorted((r for r in rows if r["status"] == "ok"),
                  key=lambda r: (sign * float(r["objective"]), r["round"] or 0, r["trial"] or 0))
    failed = sorted((r for r in rows if r["status"] != "ok"),
                    key=lambda r: (r["round"] or 0, r["trial"] or 0))
    for i, row in enumerate(done, start=1):
        row["rank"] = i
    for row in failed:
        row["rank"] = None
    return done + failed


def best_result(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first completed row of a ranked leaderboard, or ``None`` if nothing completed."""
    return next((r for r in rows if r["status"] == "ok"), None)
