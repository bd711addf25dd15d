"""One exception hierarchy for the whole toolkit.

Each class also derives from the builtin it refines, so callers that catch
``ValueError`` or ``OSError`` keep working. Messages name the bad value (file,
key path, job), what is allowed, and the fix.
"""

from __future__ import annotations

__all__ = [
    "MlwfError",
    "SpecError",
    "ParameterError",
    "DatasetError",
    "RasterError",
    "IntegrityError",
    "SplitError",
    "StepError",
    "WorkflowError",
    "BackendError",
    "PegasusNotFoundError",
    "RunError",
    "RunExistsError",
    "HPOError",
    "EvaluationError",
    "EXIT_BAD_INPUT",
    "BAD_INPUT_ERRORS",
    "MlwfWarning",
    "DatasetWarning",
]


class MlwfError(Exception):
    """Base class of every error raised on purpose by mlwf_nb."""


class SpecError(MlwfError, ValueError):
    """A RunSpec (or a ``--set`` override) is invalid; the message names the key path."""


class ParameterError(SpecError):
    """A notebook parameter has a value it cannot take; the message names the parameter and its choices.

    In a notebook cell (IPython) it shows as this one line, not as a traceback:
    the parameter cell is the user's input, and the stack below it is not theirs.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class DatasetError(MlwfError, ValueError):
    """A dataset folder or one of its files is malformed; the message names the file."""


class RasterError(DatasetError):
    """A raster is not a readable GeoTIFF, is truncated, or disagrees with its partner."""


class IntegrityError(MlwfError, ValueError):
    """A file's sha256 digest differs from the manifest, or files are missing/unexpected."""

    def __init__(self, message: str, *, path: str | None = None,
                 expected: str | None = None, actual: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class SplitError(MlwfError, ValueError):
    """Split ratios are invalid or there are too few scenes for them."""


class StepError(MlwfError, RuntimeError):
    """A workflow step was called with bad arguments or could not produce its outputs."""


class WorkflowError(MlwfError, ValueError):
    """The workflow could not be built or read (unknown step, cycle, schema violation)."""


class BackendError(MlwfError, RuntimeError):
    """A backend is unknown or failed to start, submit or cancel a run."""


class PegasusNotFoundError(BackendError):
    """Pegasus or HTCondor tools are not installed where the pegasus backend needs them."""


class RunError(MlwfError, RuntimeError):
    """A run directory is missing, malformed, or the run failed."""


class RunExistsError(RunError, FileExistsError):
    """A run directory already exists and would be overwritten."""


class HPOError(MlwfError, ValueError):
    """A hyper-parameter search space or strategy is invalid."""


class EvaluationError(MlwfError, ValueError):
    """Labels, predictions or a confusion matrix are malformed (shape, range, class names)."""


class MlwfWarning(UserWarning):
    """Something the user should know that is not an error (a fallback, a setting with no effect)."""


class DatasetWarning(MlwfWarning):
    """A dataset is readable but something in it looks unintended (a declared source with no scenes)."""


EXIT_BAD_INPUT = 65
"""Exit status of a job that failed on bad input (sysexits' EX_DATAERR): running it again cannot help,
so the local backend does not retry it (and Pegasus is told so: ``RETRY ... UNLESS-EXIT 65``)."""

BAD_INPUT_ERRORS: tuple[type[MlwfError], ...] = (SpecError, DatasetError, IntegrityError, SplitError,
                                                 EvaluationError)
"""Errors that say the same input will fail the same way: a step raising one exits :data:`EXIT_BAD_INPUT`."""
