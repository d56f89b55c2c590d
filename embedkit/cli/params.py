"""Typer options whose values are checked while the command line is parsed, before any work starts.

Both kinds raise a usage error that names the flag, in the form the services' own checks use
(``--nproc must be at least 1, got 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import typer
from typer._click.exceptions import UsageError

from embedkit.choices import Choice

# UsageError rather than BadParameter: the messages name the flag already, and BadParameter would prefix
# "Invalid value for '--docs':" to them.


# Longer lists of values are shown as <noun> (and listed in the help), so `--help` keeps room for the help texts.
MAX_CHOICE_METAVAR = 18


def choice_option(choices: type[Choice], flag: str, help: str = "", **option: Any) -> Any:
    """An option taking one of ``choices``' values, passed on as the plain string (what the services take).

    The values are the metavar (``<flat|ivf|hnsw>``); when that is long, the metavar is the option's noun and the
    values are added to the help unless it names every one already.
    """
    values = choices.values()
    noun = flag.removeprefix("--")
    metavar = f"<{'|'.join(values)}>"
    if len(metavar) > MAX_CHOICE_METAVAR:
        metavar = f"<{noun}>"
        if not all(value in help for value in values):
            help = f"{help} One of {', '.join(values)}.".strip()

    def parse(text: str) -> str:
        if text not in values:
            raise UsageError(f"unknown {noun} {text!r} for {flag} (choose from {', '.join(values)})")
        return text

    return typer.Option(flag, parser=parse, metavar=metavar, help=help, **option)


def count_option(flag: str, minimum: int = 1, **option: Any) -> Any:
    """An integer option that must be at least ``minimum`` (a count, a size, a depth): metavar N, or N>=0."""
    metavar = "N" if minimum == 1 else f"N>={minimum}"
    return typer.Option(flag, parser=_at_least(flag, minimum), metavar=metavar, **option)


def flag_option(*flags: str, **option: Any) -> Any:
    """An on/off flag (it takes no value, so `--help` shows no type beside it)."""
    return typer.Option(*flags, metavar="", **option)


def switch(on: bool, off: bool, on_flag: str, off_flag: str) -> Optional[bool]:
    """The value of a switch declared as a flag and its (hidden) negative: True, False, or None when neither.

    A pair ``--x/--no-x`` in one option would give `--help` a fourth column; the negative is named in the help.
    """
    if on and off:
        raise UsageError(f"{on_flag} and {off_flag} contradict each other: give one")
    return True if on else False if off else None


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
