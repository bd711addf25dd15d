"""Lint of the JupyterHub single-user Dockerfile (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "singleuser" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_from_is_a_pinned_jupyter_stack():
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"quay\.io/jupyter/(base|minimal|scipy)-notebook:[\w.-]+", froms[0])
    assert not froms[0].endswith(":latest")


def test_ends_as_the_notebook_user_not_root():
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users and users[-1] == "${NB_UID}"


def test_installs_package_kernel_and_tutorials():
    ins = _instructions()
    copies = " ".join(rest for word, rest in ins if word == "COPY")
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "setup.cfg" in copies and "mlwf_nb" in copies and "/home/${NB_USER}/tutorials" in copies
    assert "pip install" in runs and "kernel install" in runs
    assert "--chown=${NB_UID}:${NB_GID}" in copies
