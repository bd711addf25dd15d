"""Steps with the path bugs a flat job sandbox catches (jobs import this module: PYTHONPATH = the repository)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlwf_nb.pipelines import Graph, Pipeline
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps import step

DATA = Path(__file__).with_name("sandbox_data")


@step("sb-copy", outputs=("out",))
def copy(src: Path, other: Path, out: Path) -> None:
    """Well behaved: reads its declared inputs, writes its declared output (and says where it ran)."""
    text = src.read_text() + other.read_text()
    out.write_text(json.dumps({"cwd": os.getcwd(), "src": str(src.resolve()), "text": text}))


@step("sb-reads-sibling", outputs=("out",))
def reads_sibling(src: Path, out: Path) -> None:
    """Finds other.txt beside its input, by the folder layout: works on a shared filesystem only."""
    out.write_text((src.parent / "other.txt").read_text())


@step("sb-writes-extra", outputs=("out",))
def writes_extra(src: Path, out: Path) -> None:
    """Writes a file it does not declare: on an HTCondor pool it is never copied back."""
    out.write_text(src.read_text())
    Path("extra.log").write_text("lost on a pool")


@step("sb-forgets-output", outputs=("out", "also"))
def forgets_output(src: Path, out: Path, also: Path) -> None:
    """Declares two outputs, writes one."""
    out.write_text(src.read_text())


def build(spec: RunSpec, g: Graph) -> None:
    g.add_input("data/in.txt", DATA / "in.txt")
    g.add_input("data/other.txt", DATA / "other.txt")
    g.add("sb-copy", src="data/in.txt", other="data/other.txt", out="outputs/copy.json")
    g.add("sb-reads-sibling", src="data/in.txt", out="outputs/sibling.txt")
    g.add("sb-writes-extra", src="data/in.txt", out="outputs/extra.txt")
    g.add("sb-forgets-output", src="data/in.txt", out="outputs/forgot.txt", also="outputs/also.txt")


PIPELINE = Pipeline(name="sandbox-bugs", build=build, description="path bugs a condorio sandbox catches")
