"""Plan-time data checks every pipeline shares: the dataset is there, or synthetic data was asked for.

Synthetic data is generated only when the spec says ``dataset.synthetic: true`` (the presets
with synthetic data do), only into a folder that does not exist yet or is empty, and says so
(one ``mlwf: generating ...`` line on stdout: it was asked for, so it is news, not a warning);
the generated folder gets its manifest, as a published dataset has. Anything else that is not a dataset is a
:class:`~mlwf_nb.errors.DatasetError` naming the path and the ways out. Nothing is written
into an existing dataset (:func:`mlwf_nb.data.cache.run_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlwf_nb.data.integrity import MANIFEST_FILE, write_manifest
from mlwf_nb.errors import DatasetError
from mlwf_nb.spec import RunSpec

__all__ = ["require_dataset"]


def require_dataset(spec: RunSpec, present: Callable[[Path], bool], generate: Callable[[RunSpec, Path], object],
                    missing: Callable[[str | Path], DatasetError], what: str = "synthetic GID-like dataset",
                    unit: str = "scenes") -> Path:
    """The dataset folder of ``spec``: checked with ``present``, generated if asked for and possible.

    Args:
        spec: The run's spec (``dataset.path``, ``dataset.synthetic`` and the generator's settings).
        present: Whether a folder holds a dataset of the pipeline's kind.
        generate: Writes the synthetic dataset into a folder.
        missing: The error for a folder that holds none (names the path and the ways out; ``""``
            for an empty ``dataset.path``).
        what: What is generated, for the notice.
        unit: What ``dataset.scenes`` counts, for the notice.

    Raises:
        DatasetError: No dataset and no synthetic one asked for (or the folder holds other files, or
            cannot be written).
    """
    root = Path(spec.dataset.path)
    if spec.dataset.path and present(root):
        return root
    if not (spec.dataset.path and spec.dataset.synthetic and _empty_or_missing(root)):
        err = missing(root if spec.dataset.path else "")  # "": an empty dataset.path
        if spec.dataset.synthetic and spec.dataset.path:
            err = DatasetError(f"{err}; dataset.synthetic generates only into a folder that does not exist or is "
                               "empty, never among other files")
        raise err
    d = spec.dataset
    print(f"mlwf: generating a {what} at {root} (dataset.synthetic: true): {d.scenes} {unit} of "
          f"{d.height}x{d.width} px", flush=True)
    try:
        generate(spec, root)
        if not (root / MANIFEST_FILE).is_file():  # the generator is the publisher: the dataset is complete
            write_manifest(root)
    except PermissionError as err:
        raise DatasetError(f"cannot generate the synthetic dataset at {str(root)!r}: {err.strerror}; set "
                           "dataset.path to a folder you can write") from err
    return root


def _empty_or_missing(root: Path) -> bool:
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))
