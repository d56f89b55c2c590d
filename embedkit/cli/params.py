"""Typer options whose values are checked while the command line is parsed, before any work starts.

Both kinds raise a usage error that names the flag, in the form the services' own checks use
(``--nproc must be at least 1, got 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer._click.exceptions import UsageError

from embedkit.choices import Choice

# UsageError rather than BadParameter: the messages name the flag already, and BadParameter would prefix
# "Invalid value for '--docs':" to them.


def choice_option(choices: type[Choice], flag: str, **option: Any) -> Any:
    """An option taking one of ``choices``' values, passed on as the plain string (what the services take)."""
    values = choices.values()
    noun = flag.removeprefix("--")

    def parse(text: str) -> str:
        if text not in values:
            raise UsageError(f"unknown {noun} {text!r} for {flag} (choose from {', '.join(values)})")
        return text

    return typer.Option(flag, parser=parse, metavar=f"<{'|'.join(values)}>", **option)


def count_option(flag: str, minimum: int = 1, **option: Any) -> Any:
    """An integer option that must be at least ``minimum`` (a count, a size, a depth)."""
    return typer.Option(flag, parser=_at_least(flag, minimum), metavar=f"<int >= {minimum}>", **option)


def _at_least(flag: str, minimum: int) -> Callable[[Any], int]:
    def parse(text: Any) -> int:
        if isinstance(text, int):  # a default, already an integer
            value = text
        else:
            try:
                value = int(text)
            except ValueError:
                raise UsageError(f"{flag} must be an integer, got {text!r}") from None
        if value < minimum:
            raise UsageError(f"{flag} must be at least {minimum}, got {value}")
        return value

    return parse
