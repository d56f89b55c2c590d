"""Problems found while reading a dataset.

Loaders stop at the first error (a `UserError`, which the CLI prints as ``path:line: message``);
`embedkit data check` instead collects errors and warnings so one run shows many of them. Both go
through the same readers, which report into an `IssueLog` and let it decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from embedkit.errors import UserError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    severity: Severity
    message: str
    path: str
    line: int | None = None

    def __str__(self) -> str:
        return str(UserError(self.message, self.path, self.line))

    def to_dict(self) -> dict[str, object]:
        return {"severity": self.severity, "path": self.path, "line": self.line, "message": self.message}


@dataclass
class IssueLog:
    """Collects issues, keeping the first `cap` of each severity (counts stay exact).

    With ``strict=True`` the first error is raised as `UserError` instead of being collected.
    """

    strict: bool = True
    cap: int = 50
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0

    def error(self, message: str, path: str | Path, line: int | None = None) -> None:
        if self.strict:
            raise UserError(message, path, line)
        self.error_count += 1
        if len(self.errors) < self.cap:
            self.errors.append(Issue("error", message, str(path), line))

    def warning(self, message: str, path: str | Path, line: int | None = None) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.cap:
            self.warnings.append(Issue("warning", message, str(path), line))
