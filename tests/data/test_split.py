from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlwf_nb.data.split import read_split, split_scenes, write_split
from mlwf_nb.errors import SplitError


def scenes(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{src}_{i:03d}", src) for src, n in counts.items() for i in range(n)]


def test_sizes_and_stratification():
    sc = scenes({"GF-2": 10, "GF-1": 5, "JL-1": 5})
    out = split_scenes(sc, 0.6, 0.2, 0.2, seed=1)
    assert [len(out[k]) for k in ("train", "val", "test")] == [12, 4, 4]
    src = dict(sc)
    for name, want in [("train", {"GF-2": 6, "GF-1": 3, "JL-1": 3}),
                       ("val", {"GF-2": 2, "GF-1": 1, "JL-1": 1}),
                       ("test", {"GF-2": 2, "GF-1": 1, "JL-1": 1})]:
        got = {s: sum(src[i] == s for i in out[name]) for s in want}
        assert got == want, name


def test_deterministic_and_order_independent():
    sc = scenes({"A": 7, "B": 4})
    a = split_scenes(sc, 0.5, 0.25, 0.25, seed=3)
    assert split_scenes(list(reversed(sc)), 0.5, 0.25, 0.25, seed=3) == a
    others = [split_scenes(sc, 0.5, 0.25, 0.25, seed=s) for s in range(4, 10)]
    assert any(o != a for o in others)  # the seed matters


def test_every_split_non_empty_with_few_scenes():
    out = split_scenes(scenes({"A": 2, "B": 1}), 0.8, 0.1, 0.1, seed=0)
    assert all(len(v) == 1 for v in out.values())
    out = split_scenes(scenes({"A": 3}), 0.7, 0.3, 0.0, seed=0)
    assert len(out["train"]) == 2 and len(out["val"]) == 1 and out["test"] == []


def test_unstratified_uses_one_pool():
    out = split_scenes(scenes({"A": 6, "B": 2}), 0.5, 0.25, 0.25, seed=0, stratify=False)
    assert [len(out[k]) for k in ("train", "val", "test")] == [4, 2, 2]


@pytest.mark.parametrize("ratios, match", [
    ((0.6, 0.3, 0.3), "sum to 1.2, not 1"),
    ((0.0, 0.5, 0.5), "train must be above 0"),
    ((1.2, -0.1, -0.1), r"train=1\.2 must lie in"),
])
def test_bad_ratios(ratios, match):
    with pytest.raises(SplitError, match=match):
        split_scenes(scenes({"A": 5}), *ratios)


def test_too_few_scenes_and_duplicates():
    with pytest.raises(SplitError, match=r"2 scene.*3 non-empty splits"):
        split_scenes(scenes({"A": 2}), 0.6, 0.2, 0.2)
    with pytest.raises(SplitError, match="unique"):
        split_scenes([("a", "A"), ("a", "B")], 1.0, 0.0, 0.0)


def test_roundtrip(tmp_path):
    split = split_scenes(scenes({"A": 5, "B": 5}), 0.6, 0.2, 0.2)
    assert read_split(write_split(tmp_path / "split.json", split)) == split
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(SplitError, match=r"bad\.json"):
        read_split(tmp_path / "bad.json")
    with pytest.raises(SplitError, match=r"none\.json"):
        read_split(tmp_path / "none.json")


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       r=st.sampled_from([(0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.8, 0.1, 0.1), (0.7, 0.3, 0.0),
                          (1.0, 0.0, 0.0), (0.34, 0.33, 0.33)]),
       seed=st.integers(0, 50), stratify=st.booleans())
def test_partition_property(counts, r, seed, stratify):
    sc = scenes({f"S{i}": n for i, n in enumerate(counts)})
    needed = sum(x > 0 for x in r)
    if len(sc) < needed:
        with pytest.raises(SplitError):
            split_scenes(sc, *r, seed=seed, stratify=stratify)
        return
    out = split_scenes(sc, *r, seed=seed, stratify=stratify)
    flat = out["train"] + out["val"] + out["test"]
    assert sorted(flat) == sorted(i for i, _ in sc) and len(set(flat)) == len(flat)
    # each split with a ratio above 0 gets at least one scene; those scenes come from the others
    bumped = sum(1 for ratio in r if 0 < ratio * len(sc) < 1)
    for name, ratio in zip(("train", "val", "test"), r, strict=True):
        assert (len(out[name]) > 0) == (ratio > 0)
        assert abs(len(out[name]) - ratio * len(sc)) < 1 + bumped + 1e-9 or len(out[name]) == 1
