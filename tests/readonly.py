"""Run a command against a dataset folder that really is read-only, also as root (CI runs as root).

Removing write bits stops every user but root, so for root the folder is bind-mounted read-only
in a private mount namespace (``unshare --mount``; with ``--map-root-user`` where only user
namespaces are allowed) around the command; the mount disappears with the command's processes.
The command first proves that a write into the folder fails, so a setup that silently stays
writable fails the test instead of passing it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["make_read_only", "run_read_only"]

_READY = "__read_only_ready__"
_SCRIPT = r"""
if [ "$(id -u)" = 0 ] && [ -n "$RO_BIND" ]; then
  mount --bind "$RO_DIR" "$RO_DIR" && mount -o remount,bind,ro "$RO_DIR" || exit 96
fi
if touch "$RO_DIR/.write-probe" 2>/dev/null; then
  rm -f "$RO_DIR/.write-probe"; echo "read-only setup failed: $RO_DIR is writable" >&2; exit 97
fi
echo __read_only_ready__ >&2
exec "$@"
"""


def make_read_only(root: Path) -> None:
    """Remove the write bits of ``root`` and everything in it (what a JupyterHub admin does)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def _wrappers() -> list[list[str]]:
    if os.geteuid() != 0:
        return [[]]  # write bits are enough
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    return [[unshare, "--mount", "--propagation", "private"],
            [unshare, "--user", "--map-root-user", "--mount", "--propagation", "private"]]


def run_read_only(root: Path, argv: list[str], env: dict[str, str] | None = None,
                  timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` while ``root`` is read-only for it (write bits removed, and a read-only mount for root).

    Raises:
        AssertionError: No way to make the folder read-only works on this machine (the test must not
            pass without having tested anything).
    """
    make_read_only(root)
    full_env = {**os.environ, **(env or {}), "RO_DIR": str(root), "RO_BIND": "1" if os.geteuid() == 0 else ""}
    tried = []
    for wrapper in _wrappers():
        proc = subprocess.run([*wrapper, "sh", "-c", _SCRIPT, "sh", *argv], env=full_env, capture_output=True,
                              text=True, timeout=timeout)
        if _READY in proc.stderr:
            proc.stderr = proc.stderr.replace(_READY + "\n", "")
            return proc
        tried.append(f"{' '.join(wrapper) or '(no wrapper)'}: rc {proc.returncode}: {proc.stderr[-400:]}")
    raise AssertionError("cannot make a folder read-only for this user here (tried: " + "; ".join(tried) + ")")


if __name__ == "__main__":  # pragma: no cover - manual check: python -m tests.readonly DIR CMD...
    print(run_read_only(Path(sys.argv[1]), sys.argv[2:]))
