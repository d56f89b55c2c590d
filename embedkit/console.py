"""Where output goes: human-readable text to stderr (rich), machine-readable JSON to stdout.

Colour follows rich's own rules, so ``NO_COLOR`` and a non-TTY stream both give plain text.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console


@dataclass
class Output:
    json_mode: bool = False
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose

    def __post_init__(self) -> None:
        self.err = Console(stderr=True, quiet=self.verbosity < 0)

    def error(self, message: str) -> None:
        """One unwrapped line (a ``path:line: message`` must survive narrow logs), printed even with -q."""
        Console(stderr=True).print(message, style="bold red", highlight=False, markup=False, soft_wrap=True)

    def warning(self, message: str) -> None:
        """One unwrapped line (it names paths), shown unless -q."""
        self.err.print(message, style="yellow", highlight=False, markup=False, soft_wrap=True)

    def info(self, *objects: Any) -> None:
        self.err.print(*objects)

    def debug(self, *objects: Any) -> None:
        if self.verbosity > 0:
            self.err.print(*objects, style="dim")

    def result(self, payload: Any) -> None:
        """The command's result: JSON on stdout in --json mode, nothing otherwise (renderers print tables)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()


output = Output()


def configure(json_mode: bool, verbose: int, quiet: bool) -> Output:
    global output
    output = Output(json_mode=json_mode, verbosity=-1 if quiet else verbose)
    return output


def get() -> Output:
    return output
