"""User-facing errors.

Anything the user can fix (a bad file, a bad flag, a missing path) is raised as `UserError`; the CLI
prints it as ``path:line: message`` and exits with code 2, never with a traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2


class UserError(Exception):
    """A problem in the user's input, reported as ``path:line: message``."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"
