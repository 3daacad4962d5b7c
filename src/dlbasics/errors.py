"""The library's own exceptions: mistakes a user makes, as opposed to bugs in the library.

Everything here derives from ``DLBasicsError``. The command line catches exactly that class: it prints the
message on one line and exits 2. Any other exception is a bug and keeps its traceback. Each class also
derives from the built-in exception a Python caller would expect (``ValueError``, ``FileNotFoundError``,
...), so ``except ValueError`` keeps working around the Python API.

``docs/errors.md`` lists the mistakes, the message each one gives, and the test that holds it.
"""

from __future__ import annotations


class DLBasicsError(Exception):
    """A user's mistake: a bad option, missing or unusable data, a folder that is not a run. One line."""


class ConfigError(DLBasicsError, ValueError):
    """A run description that cannot work; the message names the option as the caller wrote it (the flag,
    the TOML key or the Python argument) and, for names, the valid choices."""


class DataError(DLBasicsError, ValueError):
    """Data that cannot be trained on: a malformed file, NaN or inf inputs, labels out of range, an empty
    split, or samples whose shape does not fit the model."""


class DataNotFoundError(DLBasicsError, FileNotFoundError):
    """A data file or folder that is not there; the message says where the data comes from."""


class RunFolderError(DLBasicsError, ValueError):
    """A path that is not a usable run folder: missing, a file, not a run, a corrupt or unreadable
    ``config.json``, or an existing run that a new run would overwrite."""


class CheckpointError(RunFolderError):
    """A checkpoint that cannot be resumed from: none written yet, or written by another run."""


class StateDictError(DLBasicsError, RuntimeError):
    """A state dict that does not fit the model or optimizer it is loaded into (missing or unexpected
    names, other shapes): usually the weights of another model. A ``RuntimeError``, as in PyTorch."""


class DivergedError(DLBasicsError, FloatingPointError):
    """Training produced a NaN or inf loss. The run keeps its last good checkpoint; the message names the
    step and suggests a lower learning rate."""

    def __init__(self, message: str, step: int = -1) -> None:
        super().__init__(message)
        self.step = step


class MissingDependencyError(DLBasicsError, ImportError):
    """An optional dependency (an extra such as ``dlbasics[tune]``) is not installed; the message says
    what to install."""


__all__ = ["CheckpointError", "ConfigError", "DLBasicsError", "DataError", "DataNotFoundError", "DivergedError",
           "MissingDependencyError", "RunFolderError", "StateDictError"]
