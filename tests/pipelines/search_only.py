"""A pipeline that is only a hyper-parameter search on the cheap analytic objective (tests)."""

from __future__ import annotations

from pathlib import Path

from mlwf_nb.pipelines import Graph, Pipeline
from mlwf_nb.pipelines.search import add_search
from mlwf_nb.spec import RunSpec

NOTE = Path(__file__).with_name("search_only.txt")


def build(spec: RunSpec, g: Graph) -> None:
    """Just the rounds: propose -> trials -> ... -> select."""
    g.add_input("dataset/note.txt", NOTE)
    add_search(spec, g, train=[], val=[], dataset="dataset/note.txt")


PIPELINE = Pipeline(name="search-only", build=build, description="HPO rounds on the analytic objective")
