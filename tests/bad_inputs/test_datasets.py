"""Malformed datasets: each fails with a typed error naming the file, via the API and `mlwf data verify`.

Each case is a builder that breaks a fresh copy of a valid 2-scene dataset. ``manifest``
says whether the manifest is rebuilt after the damage (structural problems: the digests
match and ``Dataset.check`` must find the fault) or kept (integrity problems).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from affine import Affine

from mlwf_nb.cli import main
from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.integrity import verify, write_manifest
from mlwf_nb.data.raster import open_raster, write_geotiff
from mlwf_nb.errors import DatasetError, IntegrityError, MlwfError, RasterError

IMG = "images/GF-2_000.tif"
LAB = "labels/GF-2_000.tif"


def _raster(root: Path, rel: str) -> tuple[np.ndarray, object, Affine]:
    da = open_raster(root / rel, chunks=False)
    return np.asarray(da), da.rio.crs, da.rio.transform()


def _rewrite(root: Path, rel: str, fn) -> None:
    arr, crs, transform = _raster(root, rel)
    arr, transform = fn(arr, transform)
    write_geotiff(root / rel, arr, crs, transform, blocksize=16)


def _yaml(root: Path, fn) -> None:
    data = yaml.safe_load((root / "dataset.yaml").read_text())
    fn(data)
    (root / "dataset.yaml").write_text(yaml.safe_dump(data))


def three_bands(r):
    _rewrite(r, IMG, lambda a, t: (a[:3], t))


def uint8_image(r):
    _rewrite(r, IMG, lambda a, t: ((a // 256).astype("uint8"), t))


def label_wrong_shape(r):
    _rewrite(r, LAB, lambda a, t: (a[:, :32, :32], t))


def label_shifted(r):
    _rewrite(r, LAB, lambda a, t: (a, t * Affine.translation(7, 0)))


def label_class_out_of_range(r):
    _rewrite(r, LAB, lambda a, t: (np.where(a == a.max(), 9, a).astype(a.dtype), t))


def all_nodata(r):
    _rewrite(r, IMG, lambda a, t: (np.zeros_like(a), t))


def not_a_tiff(r):
    (r / IMG).write_text("this is a text file, not a GeoTIFF\n" * 20)


def truncated(r):
    data = (r / IMG).read_bytes()
    (r / IMG).write_bytes(data[: len(data) * 2 // 3])


def empty_file(r):
    (r / IMG).write_bytes(b"")


def no_yaml(r):
    (r / "dataset.yaml").unlink()


def empty_folder(r):
    for p in sorted(r.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()


def yaml_invalid(r):
    (r / "dataset.yaml").write_text("name: [unclosed\n")


def yaml_python_tag(r):
    (r / "dataset.yaml").write_text("name: !!python/object/apply:os.system ['true']\n")


def yaml_missing_keys(r):
    _yaml(r, lambda d: d.pop("classes"))


def yaml_bad_layout(r):
    _yaml(r, lambda d: d.update(layout="zarr"))


def yaml_unknown_source(r):
    _yaml(r, lambda d: d["scenes"][0].update(source="Landsat-9"))


def yaml_duplicate_scene(r):
    _yaml(r, lambda d: d["scenes"].append(dict(d["scenes"][0])))


def yaml_bad_classes(r):
    _yaml(r, lambda d: d["classes"][1].update(index=7))


def yaml_bad_dtype(r):
    _yaml(r, lambda d: d.update(dtype="uint17"))


def scene_id_traversal(r):
    _yaml(r, lambda d: d["scenes"][0].update(id="../../etc/passwd"))


def scene_id_separator(r):
    _yaml(r, lambda d: d["scenes"][0].update(id="sub/GF-2_000"))


def scene_image_outside(r):
    _yaml(r, lambda d: d["scenes"][0].update(image="/etc/hostname"))


def scene_label_dotdot(r):
    _yaml(r, lambda d: d["scenes"][0].update(label="../../outside.tif"))


def flipped_byte(r):
    data = bytearray((r / IMG).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (r / IMG).write_bytes(bytes(data))


def missing_file(r):
    (r / LAB).unlink()


def extra_file(r):
    (r / "images/stray.txt").write_text("left behind\n")


def manifest_not_json(r):
    (r / "manifest.json").write_text("{not json")


def manifest_wrong_algorithm(r):
    (r / "manifest.json").write_text('{"algorithm": "md5", "files": {}}')


# (builder, rebuild manifest after the damage?, error type, message regex; {root} is the dataset path)
CASES = [
    (three_bands, True, RasterError, r"GF-2_000.tif.* has 3 bands but .* declares 4"),
    (uint8_image, True, RasterError, r"GF-2_000.tif.* has dtype uint8 but .* declares uint16"),
    (label_wrong_shape, True, RasterError, r"labels/GF-2_000.tif.* is 32x32 but image .* is 64x64"),
    (label_shifted, True, RasterError, r"labels/GF-2_000.tif.* has transform"),
    (label_class_out_of_range, True, DatasetError, r"labels/GF-2_000.tif.* holds class index 9"),
    (all_nodata, True, DatasetError, r"images/GF-2_000.tif.* holds only nodata"),
    (not_a_tiff, True, RasterError, r"images/GF-2_000.tif.* is not a TIFF"),
    (truncated, True, RasterError, r"images/GF-2_000.tif.*(truncated|past the end|end of the file)"),
    (empty_file, True, RasterError, r"images/GF-2_000.tif.* is not a TIFF"),
    (no_yaml, True, MlwfError, r"dataset.yaml' (not found.* is not a dataset folder|is listed in the manifest "
                               r"but missing)"),
    (empty_folder, False, MlwfError, r"(manifest|dataset.yaml).* not found"),
    (yaml_invalid, True, DatasetError, r"dataset.yaml' is not valid YAML"),
    (yaml_python_tag, True, DatasetError, r"dataset.yaml' is not valid YAML"),
    (yaml_missing_keys, True, DatasetError, r"lacks the key\(s\) \['classes'\]"),
    (yaml_bad_layout, True, DatasetError, r"layout 'zarr' is unknown"),
    (yaml_unknown_source, True, DatasetError, r"scene 'GF-2_000' has source 'Landsat-9'"),
    (yaml_duplicate_scene, True, DatasetError, r"scene id 'GF-2_000' appears twice"),
    (yaml_bad_classes, True, DatasetError, r"class indices must be 0..5"),
    (yaml_bad_dtype, True, DatasetError, r"dtype 'uint17' is not a numpy dtype"),
    (scene_id_traversal, True, DatasetError, r"scene id '../../etc/passwd' is not a safe name"),
    (scene_id_separator, True, DatasetError, r"scene id 'sub/GF-2_000' is not a safe name"),
    (scene_image_outside, True, DatasetError, r"scene image '/etc/hostname' points outside"),
    (scene_label_dotdot, True, DatasetError, r"scene label '../../outside.tif' points outside"),
    (flipped_byte, False, IntegrityError, r"GF-2_000.tif.*: sha256 is [0-9a-f]{64} but the manifest "
                                          r"expects [0-9a-f]{64}"),
    (missing_file, False, IntegrityError, r"labels/GF-2_000.tif.* is listed in the manifest but missing"),
    (extra_file, False, IntegrityError, r"images/stray.txt.* is not in the manifest"),
    (manifest_not_json, False, IntegrityError, r"manifest.json.* is not valid JSON"),
    (manifest_wrong_algorithm, False, IntegrityError, r"manifest.json.* is not a sha256 manifest"),
]
IDS = [c[0].__name__ for c in CASES]


def _break(root: Path, build, rebuild: bool) -> None:
    build(root)
    if rebuild and (root / "dataset.yaml").exists():
        write_manifest(root)


def _api(root: Path) -> None:
    """What a user (or `mlwf data verify`) does: digests first, then every scene."""
    verify(root)
    Dataset.open(root).check()


@pytest.mark.parametrize(("build", "rebuild", "etype", "pattern"), CASES, ids=IDS)
def test_api_raises_typed_error(dataset_copy, build, rebuild, etype, pattern):
    _break(dataset_copy, build, rebuild)
    with pytest.raises(etype, match=pattern) as info:
        _api(dataset_copy)
    assert isinstance(info.value, MlwfError)
    assert str(dataset_copy) in str(info.value)  # the message names the file (or folder)


@pytest.mark.parametrize(("build", "rebuild", "etype", "pattern"), CASES, ids=IDS)
def test_cli_data_verify_one_line_exit_2(dataset_copy, capsys, build, rebuild, etype, pattern):
    _break(dataset_copy, build, rebuild)
    assert main(["data", "verify", str(dataset_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlwf: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err


def test_good_dataset_passes(dataset_copy, capsys):
    assert main(["data", "verify", str(dataset_copy)]) == 0
    assert "2 scenes checked" in capsys.readouterr().out


def test_flipped_byte_report_has_both_digests(dataset_copy):
    from mlwf_nb.data.integrity import sha256_file

    expected = sha256_file(dataset_copy / IMG)
    flipped_byte(dataset_copy)
    with pytest.raises(IntegrityError) as info:
        verify(dataset_copy)
    err = info.value
    assert err.path == str(dataset_copy / IMG)
    assert (err.expected, err.actual) == (expected, sha256_file(dataset_copy / IMG))
    assert expected in str(err) and err.actual in str(err)


@pytest.mark.parametrize(("build", "needle"), [(not_a_tiff, IMG), (truncated, IMG), (missing_file, LAB),
                                               (scene_id_traversal, "'../../etc/passwd' is not a safe name")],
                         ids=lambda b: getattr(b, "__name__", ""))
def test_plan_fails_early_naming_the_file(dataset_copy, tmp_path, capsys, build, needle):
    """The land-cover plan checks files, TIFF headers and names: bad scenes fail before any job exists."""
    build(dataset_copy)
    argv = ["plan", "--out", str(tmp_path / "run"),
            *(x for o in (f"dataset.path={dataset_copy}", "dataset.synthetic=false", "split.train=0.5",
                          "split.val=0.5", "split.test=0") for x in ("--set", o))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err, err
    assert not (tmp_path / "run" / "workflow.yml").exists()
