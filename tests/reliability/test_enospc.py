"""A full disk during a write: the error propagates, the final name is untouched, no temp file stays.

ENOSPC is injected in-process (``monkeypatch``) at two places of every atomic writer:
inside the data write (half the bytes written, then ENOSPC) and at ``fsync`` (where
delayed allocation reports it). One real case fills a 64 KiB tmpfs when run as root.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlwf_nb import _io
from mlwf_nb.data import raster, shards


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(real):
    """Wrap a writer ``f(target, ...)``: write to ``target`` for real, truncate it to half, raise ENOSPC."""
    def wrapper(target, *args, **kwargs):
        real(target, *args, **kwargs)
        path = Path(target)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        _enospc()
    return wrapper


def _json(d: Path):
    return _io.write_json(d / "out.json", {"a": list(range(1000))}), lambda p: json.loads(p.read_text())


def _shard(d: Path):
    x = np.full((4, 8, 8, 4), 7, np.uint8)
    paths = shards.write_shard(d / "s", x, np.arange(4))
    return paths[0], lambda p: np.load(p).sum()


def _tiff(d: Path):
    from affine import Affine

    p = raster.write_geotiff(d / "t.tif", np.ones((4, 32, 32), np.uint16), "EPSG:32650",
                             Affine(4, 0, 0, 0, -4, 0), blocksize=16)
    return p, lambda q: int(np.asarray(raster.open_raster(q, chunks=False)).sum())


def _checkpoint(d: Path):
    keras = pytest.importorskip("keras")
    from mlwf_nb.ml.checkpoint import load_checkpoint, save_checkpoint

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    model.compile(optimizer="sgd", loss="mse")
    p = save_checkpoint(model, d / "ck.keras", epoch=1, history={"loss": [1.0]}, seed=0)
    return p, lambda q: load_checkpoint(q)[1]["epoch"]


WRITERS = {"write_json": _json, "write_shard": _shard, "write_geotiff": _tiff, "save_checkpoint": _checkpoint}


def _inject_in_data_write(monkeypatch, name: str) -> None:
    if name == "write_json":
        monkeypatch.setattr(_io.json, "dump", lambda obj, fh, **kw: (fh.write('{"a": [1, 2'), _enospc()))
    elif name == "write_shard":
        monkeypatch.setattr(shards.np, "save", _half_then_enospc(np.save))
    elif name == "write_geotiff":
        real = raster._blocks

        def blocks(data):
            gen = real(data)
            yield next(gen)
            _enospc()
        monkeypatch.setattr(raster, "_blocks", blocks)
    else:
        import keras

        monkeypatch.setattr(keras.Model, "save", lambda self, path, **kw: _half_then_enospc(
            lambda p: Path(p).write_bytes(b"PK\x03\x04" + b"\0" * 4096))(path))


@pytest.mark.parametrize("where", ["data", "fsync"])
@pytest.mark.parametrize("name", list(WRITERS))
def test_enospc_leaves_previous_file_and_no_temp(tmp_path, monkeypatch, name, where):
    final, read = WRITERS[name](tmp_path)  # a good first version
    before = read(final)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    if where == "fsync":
        monkeypatch.setattr(_io.os, "fsync", _enospc)
    else:
        _inject_in_data_write(monkeypatch, name)
    with pytest.raises(OSError) as info:
        WRITERS[name](tmp_path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert read(final) == before  # the complete previous version, never a torn one
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before  # no temp file left behind


def test_enospc_on_a_fresh_name_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_io.os, "fsync", _enospc)
    with pytest.raises(OSError, match="No space left"):
        _io.write_json(tmp_path / "new.json", {"x": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_real_full_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        _io.write_json(mnt / "ok.json", {"small": True})
        with pytest.raises(OSError) as info:
            _io.write_json(mnt / "big.json", {"blob": "x" * 400_000})
        assert info.value.errno == errno.ENOSPC
        assert sorted(p.name for p in mnt.iterdir()) == ["ok.json"]
        with pytest.raises(OSError):
            _io.write_json(mnt / "ok.json", {"blob": "y" * 400_000})
        assert json.loads((mnt / "ok.json").read_text()) == {"small": True}
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
