"""Exception types of defacebench.

Every error a user can cause has its own type so callers (the pipeline, the CLI, pytest) can turn
it into a recorded failure row or a clear message instead of a traceback. Messages name the file or
plugin, what is wrong and how to fix it.
"""

from __future__ import annotations


class DefacebenchError(Exception):
    """Base class of every error defacebench raises on purpose."""


class PluginError(DefacebenchError):
    """A plugin could not be loaded, found or used."""


class PluginLoadError(PluginError):
    """An entry point failed to import; carries the distribution name and the import error."""


class DuplicatePluginError(PluginError):
    """Two plugins of one kind share a name."""


class UnknownPluginError(PluginError, KeyError):
    """A plugin name was asked for that no installed plugin has."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class PluginsFileError(PluginError):
    """A TOML plugins file (``defacebench.toml``) is malformed."""


class PluginUnavailableError(PluginError):
    """A plugin was used although ``available()`` says it cannot run here."""


class WeightsError(PluginError):
    """A model or detector file is missing and cannot be fetched here; the message names the file,
    where it comes from and the folder to place it in."""


class DefaceError(DefacebenchError):
    """A defacer failed for one volume: non-zero exit, timeout, missing or empty output."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class DatasetError(DefacebenchError):
    """A dataset folder, manifest or subject cannot be read as given."""


class ConversionError(DatasetError):
    """A DICOM series or NIfTI file cannot become a canonical HU volume."""


class ImageError(DefacebenchError):
    """An image file or array cannot be used by a detector or recognizer."""


class EvaluationError(DefacebenchError):
    """A distance matrix or split cannot be evaluated (bad layout, too few subjects, ...)."""


class CacheError(DefacebenchError):
    """A cache artifact is missing, partial or unreadable."""


class StorageError(DefacebenchError, OSError):
    """A file or folder cannot be written: read-only, permission denied, disk full or over quota.

    Also an OSError, so code that already handles failed writes keeps handling it."""


class RegressionError(DefacebenchError):
    """A configuration regressed beyond its tolerance against the stored baseline."""
