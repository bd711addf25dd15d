"""Small file helpers shared by every layer: atomic writes and JSON.

Every file a step or backend produces appears under its final name only when it
is complete: it is written to a temporary name in the same directory, flushed,
fsynced and then renamed over the final name (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mlwf_nb.safety import file_mode

__all__ = ["atomic_path", "atomic_open", "write_json", "read_json", "write_text", "ensure_dir", "read_appended"]


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) if needed and return it as a Path."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps ``suffix`` (e.g. ``.tif``, ``.keras``) so libraries
    that choose a format by extension still work. On any exception the temporary
    file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    ensure_dir(final.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or final.suffix + ".tmp",
                                    dir=final.parent)
    os.fchmod(fd, file_mode())  # 0o600 (0o640 with $MLWF_SHARE_GROUP), whatever the umask
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically and return the path."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent, sort_keys=False, allow_nan=True)
        fh.write("\n")
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_appended(path: str | os.PathLike[str], offset: int, max_bytes: int = -1) -> tuple[bytes, int]:
    """The whole lines appended to a log since byte ``offset``, and the offset after them.

    A partial last line (a writer still writing it) is left for the next call; a missing
    file reads as nothing. Followers of append-only logs (events, jobstate) use this and
    never re-read what they have seen. ``max_bytes`` bounds the read, except that a
    single line longer than it is read whole (else the follower would never get past it).
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(max_bytes)
            if max_bytes > 0 and len(chunk) == max_bytes and b"\n" not in chunk:
                chunk += fh.readline()
    except FileNotFoundError:
        return b"", offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return b"", offset
    return chunk[: end + 1], offset + end + 1
