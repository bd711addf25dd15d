"""Plan-time data checks every pipeline shares: the dataset is there, or synthetic data was asked for.

Synthetic data is generated only when the spec says ``dataset.synthetic: true`` (the presets
with synthetic data do), only into a folder that does not exist yet or is empty, and says so
(one ``mlwf: generating ...`` line on stdout: it was asked for, so it is news, not a warning);
the generated folder gets its manifest, as a published dataset has. Anything else that is not a dataset is a
:class:`~mlwf_nb.errors.DatasetError` naming the path and the ways out. Nothing is written
into an existing dataset (:func:`mlwf_nb.data.cache.run_inputs`).

Planning alone (``mlwf plan``, ``mlwf validate``) writes no data: inside :func:`no_generation`
a synthetic dataset that is not there yet is a :class:`~mlwf_nb.errors.DatasetError` saying how
to make it, while a dataset that is there (a GID folder as downloaded, without ``dataset.yaml``
or ``manifest.json``, read-only included) is accepted as a run accepts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from mlwf_nb.data.integrity import MANIFEST_FILE, write_manifest
from mlwf_nb.errors import DatasetError
from mlwf_nb.spec import RunSpec

__all__ = ["require_dataset", "no_generation"]

_GENERATE: ContextVar[bool] = ContextVar("mlwf_generate_synthetic", default=True)


@contextmanager
def no_generation() -> Iterator[None]:
    """Within this block :func:`require_dataset` generates nothing (planning writes no data).

    A pipeline's ``prepare(spec)`` then checks the dataset as for a run but refuses a synthetic
    dataset that has not been generated yet, naming the command that makes it.
    """
    token = _GENERATE.set(False)
    try:
        yield
    finally:
        _GENERATE.reset(token)


def require_dataset(spec: RunSpec, present: Callable[[Path], bool], generate: Callable[[RunSpec, Path], object],
                    missing: Callable[[str | Path], DatasetError], what: str = "synthetic GID-like dataset",
                    unit: str = "scenes", command: str = "") -> Path:
    """The dataset folder of ``spec``: checked with ``present``, generated if asked for and possible.

    Args:
        spec: The run's spec (``dataset.path``, ``dataset.synthetic`` and the generator's settings).
        present: Whether a folder holds a dataset of the pipeline's kind.
        generate: Writes the synthetic dataset into a folder.
        missing: The error for a folder that holds none (names the path and the ways out; ``""``
            for an empty ``dataset.path``).
        what: What is generated, for the notice.
        unit: What ``dataset.scenes`` counts, for the notice.
        command: A command line that generates the same dataset, named when generating is off
            (:func:`no_generation`).

    Raises:
        DatasetError: No dataset and no synthetic one asked for (or the folder holds other files, or
            cannot be written), or a synthetic one to generate inside :func:`no_generation`.
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
    if not _GENERATE.get():
        how = f"`mlwf run` generates it, or {command}" if command else "`mlwf run` generates it"
        raise DatasetError(f"dataset.path {str(root)!r} holds no dataset yet and planning writes no data; the spec "
                           f"asks for a {what} there (dataset.synthetic: true): {how}")
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
