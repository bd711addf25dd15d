from __future__ import annotations

import hashlib
import json

import pytest

from mlwf_nb.data.integrity import (
    build_manifest,
    sha256_file,
    verify,
    write_manifest,
)
from mlwf_nb.errors import IntegrityError


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.tif").write_bytes(b"a" * 3000)
    (root / "dataset.yaml").write_text("name: x\n")
    (root / ".hidden").write_text("ignored")
    (root / "images" / ".a.tif.tmp").write_text("ignored")
    return root


def test_sha256_streaming_matches_hashlib(tmp_path):
    p = tmp_path / "f"
    data = bytes(range(256)) * 1000
    p.write_bytes(data)
    assert sha256_file(p, chunk=7) == hashlib.sha256(data).hexdigest()


def test_manifest_content(folder):
    m = build_manifest(folder)
    assert m["version"] == 1 and m["algorithm"] == "sha256"
    assert sorted(m["files"]) == ["dataset.yaml", "images/a.tif"]
    assert m["files"]["images/a.tif"] == {"sha256": hashlib.sha256(b"a" * 3000).hexdigest(),
                                          "size": 3000}
    path = write_manifest(folder)
    assert json.loads(path.read_text()) == m
    assert "manifest.json" not in build_manifest(folder)["files"]  # excluded from itself


def test_verify_ok(folder):
    write_manifest(folder)
    report = verify(folder)
    assert report.ok and report.checked == 2


def test_mismatch_names_file_and_digests(folder):
    write_manifest(folder)
    expected = sha256_file(folder / "images" / "a.tif")
    (folder / "images" / "a.tif").write_bytes(b"b" * 3000)
    actual = hashlib.sha256(b"b" * 3000).hexdigest()
    with pytest.raises(IntegrityError, match=r"images/a\.tif") as info:
        verify(folder)
    err = info.value
    assert err.path.endswith("images/a.tif") and err.expected == expected and err.actual == actual
    assert expected in str(err) and actual in str(err)
    report = verify(folder, raise_on_error=False)
    assert report.mismatched == [("images/a.tif", expected, actual)] and not report.ok


def test_missing_and_unexpected(folder):
    manifest = build_manifest(folder)
    (folder / "images" / "a.tif").unlink()
    (folder / "extra.txt").write_text("x")
    report = verify(folder, manifest, raise_on_error=False)
    assert report.missing == ["images/a.tif"] and report.unexpected == ["extra.txt"]
    with pytest.raises(IntegrityError, match=r"a\.tif.*missing") as info:
        verify(folder, manifest)
    assert info.value.actual is None
    (folder / "images" / "a.tif").write_bytes(b"a" * 3000)
    with pytest.raises(IntegrityError, match=r"extra\.txt.*not in the manifest"):
        verify(folder, manifest)


def test_no_manifest(folder):
    with pytest.raises(IntegrityError, match=r"manifest\.json.*not found.*write_manifest"):
        verify(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        verify(folder)
