"""The exceptions codekin raises; translated only at the edges (CLI exit code, LSP error).

Every error the user can act on is a CodekinError subclass defined here, and its exit code
is this table (the README's list follows it):

    1  CodekinError (anything else)          8  TrainingError
    2  ConfigError                           9  RegistryError (ModelCorruptedError, RollbackRefused)
    3  WorkspaceError                       10  TrainingRunningError
    4  ModelLoadError                       11  HotReloadError, RayUnavailableError
    5  IndexLockedError                     12  DistributedError
    6  IndexFormatError (IndexDamagedError) 13  StaleModelError
    7  IndexMissingError                    28  DISK_FULL_EXIT: any command on a full disk
"""

from __future__ import annotations

import errno

DISK_FULL_EXIT = 28  # ENOSPC: what every command exits with on a full disk


class CodekinError(Exception):
    """A failure the user can act on: `message` says what happened, `hint` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(CodekinError):
    exit_code = 2


class WorkspaceError(CodekinError):
    """Empty repository, no supported files, path outside the repository."""

    exit_code = 3


class ModelLoadError(CodekinError):
    exit_code = 4


class IndexLockedError(CodekinError):
    exit_code = 5


class IndexFormatError(CodekinError):
    """The index was written by a newer codekin or is damaged."""

    exit_code = 6


class IndexDamagedError(IndexFormatError):
    """A file of the LanceDB index is truncated, changed or gone; `codekin index --rebuild` repairs it."""


class IndexMissingError(CodekinError):
    exit_code = 7


class IndexForeignError(IndexMissingError):
    """The index under .codekin/ was not made on this machine (committed to git, or copied): it
    is ignored as if there were none, and `codekin index` rebuilds it."""


class StaleModelError(CodekinError):
    """A long-lived process holds a model that another process has since replaced."""

    exit_code = 13


class QueueError(CodekinError):
    """The queue database cannot be read or written."""


class ArgumentError(CodekinError):
    """A language-server request whose parameters are missing, unknown or of the wrong type."""


# -- training and model versions --------------------------------------------------------
class TrainingError(CodekinError):
    exit_code = 8


class NotEnoughSnippetsError(CodekinError):
    """Too little BEAM code to build the triplets asked for."""


class TripletFileError(CodekinError):
    """A triplets file that is missing or not valid JSON lines."""


class RegistryError(CodekinError):
    exit_code = 9


class ModelCorruptedError(RegistryError):
    pass


class RollbackRefused(RegistryError):
    """A rollback to a rejected or newer version, asked for without --force."""


class TrainingRunningError(CodekinError):
    exit_code = 10


class HotReloadError(CodekinError):
    exit_code = 11


# -- beyond one machine -----------------------------------------------------------------
class RayUnavailableError(CodekinError):
    exit_code = 11


class DistributedError(CodekinError):
    exit_code = 12


def disk_full(exc: BaseException) -> bool:
    """ENOSPC, also as LanceDB reports it (a RuntimeError that names it)."""
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)
