"""The exceptions mpcov raises for problems a user can act on.

Every error a user may see is an :class:`MpcovError`. The command line prints
its message on one line and exits with status 1 (tracebacks only with
``--debug``); anything else escaping is a bug in mpcov and is reported as such.
Messages name the file involved and say what to do next.
"""

from __future__ import annotations


class MpcovError(Exception):
    """Base class of every error mpcov reports to users."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(MpcovError):
    """A configuration file or option is wrong: bad syntax, bad type, bad value."""


class DataError(MpcovError):
    """A data file or fragment cannot be read, written or combined."""


class NoDataError(DataError):
    """There is no coverage data to report or combine."""


class NoSourceError(MpcovError):
    """A measured source file cannot be found or read."""


class NotPythonError(MpcovError):
    """A measured file cannot be parsed as Python source."""


class BranchMismatchError(DataError):
    """Line-only data and branch data were mixed."""
