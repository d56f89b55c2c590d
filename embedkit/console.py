"""Where output goes: human-readable text to stderr (rich), machine-readable JSON to stdout.

Colour follows rich's own rules, so ``NO_COLOR`` and a non-TTY stream both give plain text. Libraries' log
records (PaddleNLP, Paddle, datasets, ...) go through the same console (`route_library_logs`), so they follow
those rules too: warnings as plain lines off a terminal, nothing at ``-q``, their INFO chatter only at ``-vv``.
"""

from __future__ import annotations

import json
import logging
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
    route_library_logs()
    return output


# Library log records below WARNING are shown from this verbosity (-vv) on.
LIBRARY_INFO_VERBOSITY = 2
# PaddleNLP logs through this one logger, with a colorlog handler (ANSI colours whatever the stream) that it
# installs when imported; a filter on the logger sees every record before that handler, whenever the import is.
PADDLENLP_LOGGER = "PaddleNLP"
# Loggers whose handlers embedkit configures itself (`embedkit serve` gives uvicorn its level from -q/-v).
_OWN_HANDLERS = ("uvicorn",)


def _print_record(record: logging.LogRecord) -> None:
    try:
        message = f"{record.name}: {record.getMessage()}"
    except Exception:  # noqa: BLE001  (a library's bad format string must not end the command)
        message = f"{record.name}: {record.msg}"
    if record.levelno >= logging.WARNING:
        output.warning(message)
    elif output.verbosity >= LIBRARY_INFO_VERBOSITY:
        output.err.print(message, style="dim", highlight=False, markup=False, soft_wrap=True)


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _print_record(record)


def _to_console(record: logging.LogRecord) -> bool:
    """A logger filter: print the record through the console instead of the logger's own handlers."""
    _print_record(record)
    return False


_HANDLER = _ConsoleHandler()


def route_library_logs() -> None:
    """Send libraries' log records through the console, in one place.

    The root logger gets the console handler (records that propagate: datasets, huggingface_hub, ...; Paddle's
    ``basicConfig`` then adds no handler of its own), PaddleNLP's logger a filter that prints and drops each record,
    and every plain stream handler a library installed on its own logger (Paddle's, datasets') is replaced by
    the console handler. Called when the console is configured and again once PaddleNLP (with Paddle and
    datasets) is imported (`embedkit.modeling.loading.quiet_paddlenlp`), since imports install new handlers.
    """
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    paddlenlp = logging.getLogger(PADDLENLP_LOGGER)
    if _to_console not in paddlenlp.filters:
        paddlenlp.addFilter(_to_console)
    replaced = []
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.split(".")[0] in _OWN_HANDLERS:
            continue
        # Exactly StreamHandler: a FileHandler (a subclass) writes a file, and test harnesses' capture handlers
        # are subclasses too.
        streams = [handler for handler in logger.handlers if type(handler) is logging.StreamHandler]
        for handler in streams:
            logger.removeHandler(handler)
        replaced += [logger] if streams else []
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(handler)
    for logger in replaced:  # the console handler only where records would not reach it already (no doubles)
        if not _reaches_console(logger):
            logger.addHandler(_HANDLER)


def _reaches_console(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if _HANDLER in current.handlers:
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def get() -> Output:
    return output
