"""The land-cover dataset checks: ``integrity`` (the description, no pixels) and ``check[scene]``.

``integrity`` checks ``dataset.yaml`` against the manifest and lists the run's scenes for the
split; it reads no scene. Each scene is checked by its own ``check`` job (its files' sha256
against the manifest, its pixels against ``dataset.yaml``), side by side, and every job that
reads a scene (histogram, preprocess, evaluate) takes that scene's check report as an input:
nothing reads an unchecked scene, and no check job reads more than its own scene.
"""

from __future__ import annotations

from pathlib import Path

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.steps.registry import step

__all__ = ["integrity", "check", "require_checked"]


@step("integrity", outputs=("report",))
def integrity(dataset: Path, manifest: Path, keys: list[str], scenes: list[str], sources: list[str],
              report: Path) -> None:
    """Check dataset.yaml against the manifest and list the scenes (id and source) the split splits.

    ``keys`` are the manifest keys of every scene file of the run (``images/GF-2_002.tif``);
    ``scenes`` and ``sources`` the scene ids and their sensor sources, in the same order. No
    scene is read here: each is checked by its own ``check`` job.
    """
    from mlwf_nb.data.dataset import DATASET_FILE, Dataset
    from mlwf_nb.data.integrity import read_manifest, sha256_file
    from mlwf_nb.errors import IntegrityError

    if not scenes:
        raise StepError("integrity: no scenes were given")
    if len(scenes) != len(sources):
        raise StepError(f"integrity: {len(scenes)} scenes but {len(sources)} sources; give one source per scene")
    listed = read_manifest(manifest)["files"]
    unknown = [k for k in keys if k not in listed]
    if unknown:
        raise StepError(f"integrity: {unknown[:5]} are not in the manifest {manifest}; rebuild it "
                        "(mlwf data manifest DIR) or fix the workflow")
    checked = 0
    if DATASET_FILE in listed:
        expected, actual = listed[DATASET_FILE]["sha256"], sha256_file(dataset)
        if actual != expected:
            raise IntegrityError(f"{DATASET_FILE!r}: sha256 is {actual} but the manifest expects {expected}; the "
                                 "description was changed after its manifest: copy it again, or rebuild the "
                                 "manifest (mlwf data manifest DIR)", path=DATASET_FILE, expected=expected,
                                 actual=actual)
        checked = 1
    ds = Dataset.describe(dataset)  # a valid description (bands, dtype, classes) before any job reads a scene
    _io.write_json(report, {"ok": True, "checked": checked, "files": len(keys), "dataset": ds.name,
                            "scenes": [{"id": s, "source": src} for s, src in zip(scenes, sources, strict=True)]})


@step("check", outputs=("report",))
def check(dataset: Path, manifest: Path, files: list[Path], keys: list[str], scene: str, source: str,
          report: Path) -> None:
    """Check one scene: its files' sha256 against the manifest, its pixels against dataset.yaml.

    ``files`` are the scene's image, then its label (if it has one), as staged; ``keys`` their
    paths in the dataset folder (the manifest's keys), in the same order. The report records
    the scene and its files' digests; the jobs that read the scene take it as an input.
    """
    from mlwf_nb.data.dataset import Dataset, Scene
    from mlwf_nb.data.integrity import read_manifest, verify
    from mlwf_nb.steps._view import dataset_view

    if not files or len(files) > 2:
        raise StepError(f"check[{scene}]: give the scene's image and (if any) its label, got {len(files)} files")
    listed = read_manifest(manifest)
    unknown = [k for k in keys if k not in listed["files"]]
    if unknown:
        raise StepError(f"check[{scene}]: {unknown} are not in the manifest {manifest}; rebuild it "
                        "(mlwf data manifest DIR) or fix the workflow")
    with dataset_view(files, keys) as root:  # messages name the dataset's own paths (images/GF-2_002.tif)
        found = verify(root, {**listed, "files": {k: listed["files"][k] for k in keys}}, raise_on_error=True)
        paths = [root / k for k in keys]
        ds = Dataset.describe(dataset, [Scene(scene, source, paths[0], paths[1] if len(paths) > 1 else None)])
        ds.check_scene(scene)  # bands, dtype, nodata, label shape/transform/classes
    _io.write_json(report, {"ok": True, "scene": scene, "source": source, "checked": found.checked,
                            "files": {k: listed["files"][k]["sha256"] for k in keys}})


def require_checked(reports: list[Path], scene: str, job: str) -> None:
    """Refuse to read ``scene`` unless ``reports`` holds its ``check`` job's report.

    The workflow gives every job that reads a scene its check report; a step called by hand
    (a test, a notebook) may give none.
    """
    if len(reports) > 1:
        raise StepError(f"{job}: {len(reports)} check reports; give the one of scene {scene!r}")
    for report in reports:
        found = _io.read_json(report)
        if found.get("scene") != scene or not found.get("ok"):
            raise StepError(f"{job}: {Path(report).name} is the check of scene {found.get('scene')!r}, not of "
                            f"{scene!r}; give each job its own scene's check report")
