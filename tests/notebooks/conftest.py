"""Notebook tests: the mlwf kernel installed into the venv once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mlwf_kernel() -> str:
    from mlwf_nb.kernel import KERNEL_NAME, install_kernel

    install_kernel(sys_prefix=True)
    return KERNEL_NAME
