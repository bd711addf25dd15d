"""Scene-level train / validation / test split, deterministic and stratified by source.

The split is a function of the *set* of scenes and the seed: scenes are sorted
by id first, so the order they are listed in does not matter.

How counts are chosen: the split sizes are the largest-remainder rounding of
``ratio * N``, and every split with a ratio above 0 gets at least one scene.
With ``stratify``, each source is divided in the same proportions (floors of
``ratio * n_source``) and the remaining scenes of each source are handed to the
splits with the largest remainders that still need scenes, so each source is
spread over the splits as evenly as the counts allow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb._io import read_json, write_json
from mlwf_nb.errors import SplitError

__all__ = ["SPLITS", "split_scenes", "write_split", "read_split"]

SPLITS = ("train", "val", "test")


def split_scenes(scenes: Sequence[tuple[str, str]], train: float, val: float, test: float,
                 seed: int = 0, stratify: bool = True) -> dict[str, list[str]]:
    """Split scenes into train / val / test.

    Args:
        scenes: ``(scene_id, source)`` pairs; ids must be unique.
        train: Fraction of scenes for training (> 0).
        val: Fraction for validation (>= 0).
        test: Fraction for testing (>= 0).
        seed: Seed of the shuffle; the same seed gives the same split.
        stratify: Divide each source in the split's proportions where counts allow.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, ids sorted in each.

    Raises:
        SplitError: Ratios out of range or not summing to 1, duplicate ids, or
            fewer scenes than splits with a ratio above 0.
    """
    ratios = _check_ratios(train, val, test)
    ids = [sid for sid, _ in scenes]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise SplitError(f"scene ids must be unique; repeated: {dup[:5]}")
    needed = sum(r > 0 for r in ratios)
    if len(ids) < needed:
        raise SplitError(f"{len(ids)} scene(s) cannot fill {needed} non-empty splits (ratios train={train:g}"
                         f", val={val:g}, test={test:g}); add scenes or set a ratio to 0")
    groups: dict[str, list[str]] = {}
    for sid, source in sorted(scenes):
        groups.setdefault(source if stratify else "", []).append(sid)
    totals = _totals(len(ids), ratios)
    alloc = _allocate(groups, ratios, totals)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    for source in sorted(groups):
        members = [groups[source][i] for i in rng.permutation(len(groups[source]))]
        start = 0
        for k, name in enumerate(SPLITS):
            out[name].extend(members[start:start + alloc[source][k]])
            start += alloc[source][k]
    return {name: sorted(v) for name, v in out.items()}


def _check_ratios(train: float, val: float, test: float) -> list[float]:
    ratios = [float(train), float(val), float(test)]
    for name, r in zip(SPLITS, ratios, strict=True):
        if not 0.0 <= r <= 1.0 or math.isnan(r):
            raise SplitError(f"split ratio {name}={r:g} must lie in [0, 1]")
    if ratios[0] <= 0:
        raise SplitError("split ratio train must be above 0")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise SplitError(f"split ratios train={train:g} + val={val:g} + test={test:g} sum to "
                         f"{sum(ratios):g}, not 1; adjust them")
    return ratios


def _largest_remainder(n: int, ratios: list[float]) -> list[int]:
    quotas = [r * n for r in ratios]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(ratios)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return counts


def _totals(n: int, ratios: list[float]) -> list[int]:
    totals = _largest_remainder(n, ratios)
    for k, r in enumerate(ratios):
        if r > 0 and totals[k] == 0:
            donor = max(range(len(totals)), key=lambda j: (totals[j], -j))
            totals[donor] -= 1
            totals[k] += 1
    return totals


def _allocate(groups: dict[str, list[str]], ratios: list[float],
              totals: list[int]) -> dict[str, list[int]]:
    """Per-source counts per split that add up to ``totals``."""
    alloc = {g: [math.floor(r * len(m)) for r in ratios] for g, m in groups.items()}
    need = [t - sum(a[k] for a in alloc.values()) for k, t in enumerate(totals)]
    left = {g: len(m) - sum(alloc[g]) for g, m in groups.items()}
    # First pass: one scene per (source, split) by descending remainder, larger sources first.
    cands = sorted(((r * len(m) - alloc[g][k], len(m), g, k) for g, m in groups.items()
                    for k, r in enumerate(ratios) if r > 0), key=lambda c: (-c[0], -c[1], c[2], c[3]))
    for _, _, g, k in cands:
        if left[g] > 0 and need[k] > 0:
            alloc[g][k] += 1
            left[g] -= 1
            need[k] -= 1
    # Second pass: whatever is left goes where scenes are still needed.
    for g in sorted(groups, key=lambda g: (-len(groups[g]), g)):
        for k in range(len(ratios)):
            take = min(left[g], max(need[k], 0))
            alloc[g][k] += take
            left[g] -= take
            need[k] -= take
    # Floors may exceed a total that was lowered to give another split its first scene.
    for k in range(len(ratios)):
        while need[k] < 0:
            g = max(groups, key=lambda g: (alloc[g][k], g))
            j = next(j for j in range(len(ratios)) if need[j] > 0)
            alloc[g][k] -= 1
            alloc[g][j] += 1
            need[k] += 1
            need[j] -= 1
    return alloc


def write_split(path: str | os.PathLike[str], split: dict[str, list[str]]) -> Path:
    """Write a split as JSON (``{"train": [...], "val": [...], "test": [...]}``), atomically."""
    return write_json(path, {name: list(split.get(name, [])) for name in SPLITS})


def read_split(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a split written by :func:`write_split`.

    Raises:
        SplitError: The file is missing or not a split; the message names it.
    """
    try:
        data: Any = read_json(path)
    except (OSError, ValueError) as err:
        raise SplitError(f"cannot read split file {str(path)!r}: {err}; run the split step again") from err
    if not isinstance(data, dict) or not all(isinstance(data.get(n), list) for n in SPLITS):
        raise SplitError(f"{str(path)!r} is not a split: expected lists 'train', 'val' and 'test'")
    return {n: [str(s) for s in data[n]] for n in SPLITS}
