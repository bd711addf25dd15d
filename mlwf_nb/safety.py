"""Multi-user safety: names that cannot escape their folder, and private run files.

Names that become path components (run names, scene ids, trial names) pass
:func:`check_name`; paths read from a file that must stay inside a folder
(a scene's ``image:`` in ``dataset.yaml``) pass :func:`check_within`.

Run directories are private to their owner by default: directories ``0o700``,
files ``0o600``. The local executor sets :func:`umask` for itself and its jobs;
atomic writes (:mod:`mlwf_nb._io`) create files with :func:`file_mode`. Set
``MLWF_SHARE_GROUP=1`` to let the owner's group read runs (``0o750`` / ``0o640``).

    >>> check_name("GF-2_000", "scene id")
    'GF-2_000'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlwf_nb.errors import MlwfError

__all__ = ["UnsafeNameError", "SHARE_GROUP_ENV", "check_name", "check_within", "share_group", "umask",
           "file_mode", "dir_mode", "secure_tree"]

SHARE_GROUP_ENV = "MLWF_SHARE_GROUP"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")
_MAX_NAME = 200


class UnsafeNameError(MlwfError, ValueError):
    """A name or path would escape its folder (``..``, an absolute path, a separator)."""


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it is safe as one path component, else raise.

    A safe name starts with a letter or digit and holds only letters, digits
    and ``. _ + @ -`` (so no separators, no ``..``, no leading dot, no NUL), at
    most 200 characters.

    Args:
        name: The candidate name.
        what: What it names, for the message (``"run name"``, ``"scene id"``).

    Raises:
        UnsafeNameError: The name is not a string or is unsafe; the message says why.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeNameError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name) or ".." in name:
        raise UnsafeNameError(f"{what} {name!r} is not a safe name: use letters, digits and . _ + @ - only, "
                              f"starting with a letter or digit, no '..', no '/' (at most {_MAX_NAME} chars)")
    return name


def check_within(path: str | os.PathLike[str], root: str | os.PathLike[str], what: str) -> Path:
    """Resolve ``path`` (relative to ``root`` unless absolute) and make sure it stays inside ``root``.

    Raises:
        UnsafeNameError: The resolved path is outside ``root`` (``..``, an absolute path, a symlink out).
    """
    base = Path(root).resolve()
    target = (base / path).resolve()
    if target != base and base not in target.parents:
        raise UnsafeNameError(f"{what} {str(path)!r} points outside {str(base)!r}; give a path inside it "
                              "(no '..', no absolute path)")
    return target


def share_group() -> bool:
    """True when ``$MLWF_SHARE_GROUP`` asks for group-readable runs (``1``, ``true``, ``yes``)."""
    return os.environ.get(SHARE_GROUP_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def umask() -> int:
    """The umask for run directories: ``0o077`` (private) or ``0o027`` (group may read)."""
    return 0o027 if share_group() else 0o077


def file_mode() -> int:
    """Mode of files in a run directory: ``0o600`` or ``0o640`` with group sharing."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Mode of directories in a run directory: ``0o700`` or ``0o750`` with group sharing."""
    return 0o777 & ~umask()


def secure_tree(root: str | os.PathLike[str]) -> None:
    """Give ``root`` and everything under it (not following symlinks) the run modes."""
    base = Path(root)
    os.chmod(base, dir_mode())
    for path in base.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, dir_mode() if path.is_dir() else file_mode())
