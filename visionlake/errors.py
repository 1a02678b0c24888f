"""Errors a user can act on.

Each carries a stable ``code`` so that the CLI can pick an exit status and the service a JSON error
body without parsing messages.
"""

from __future__ import annotations


class VisionLakeError(Exception):
    """Base class: a problem the user can fix, shown without a traceback."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(VisionLakeError):
    """A named thing (collection, person, image, group) does not exist."""

    code = "not_found"
    exit_code = 3


class AlreadyExists(VisionLakeError):
    """Creating something whose name is taken."""

    code = "already_exists"
    exit_code = 4


class BadInput(VisionLakeError):
    """Input that cannot be used as given (bad image, bad table, bad option)."""

    code = "bad_input"
    exit_code = 2


class ModelUnavailable(VisionLakeError):
    """A model file is missing and cannot be fetched (offline, wrong path)."""

    code = "model_unavailable"
    exit_code = 5


class LakeDamaged(VisionLakeError):
    """A lake file (settings, catalog, index, key) is unreadable or inconsistent.

    The message names the file, so that one line tells the user what broke; ``visionlake check``
    lists every problem and ``visionlake repair`` rebuilds what can be derived again.
    """

    code = "lake_damaged"
    exit_code = 1

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"damaged lake file {self.path}: {problem}; run 'visionlake check'")


class Busy(VisionLakeError):
    """Another process holds the lock this operation needs (e.g. an ingest into the same collection)."""

    code = "busy"
    exit_code = 1
