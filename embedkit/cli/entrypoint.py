"""`main()`: run the app and turn every way it can end into an exit code and a message, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click
import typer
from typer import _click as typer_click

from embedkit import console
from embedkit.cli.app import app
from embedkit.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, UserError

# Typer 0.29 parses with its own copy of click and raises that copy's exceptions; click proper's are caught
# as well, for anything that still raises them.
_HELP_SHOWN = (typer_click.exceptions.NoArgsIsHelpError, click.exceptions.NoArgsIsHelpError)
_USAGE_ERRORS = (typer_click.exceptions.ClickException, click.ClickException)
_EXITS = (typer.Exit, click.exceptions.Exit)
_ABORTS = (typer.Abort, click.exceptions.Abort, KeyboardInterrupt)
EXIT_INTERRUPTED = 130


def main() -> None:
    _quiet_paddle()
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        console.get().error(f"error: {exc}")
        sys.exit(EXIT_USAGE)
    except _HELP_SHOWN:  # `embedkit` (or `embedkit data`) alone: the help is the answer
        sys.exit(EXIT_OK)
    except _USAGE_ERRORS as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except _EXITS as exc:
        sys.exit(exc.exit_code)
    except _ABORTS:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an embedkit bug, not the user's: say so, keep the traceback for -v
        if console.get().verbosity > 0:
            console.get().err.print_exception()
        console.get().error(f"internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)")
        sys.exit(EXIT_INTERNAL)
    # Without standalone mode click returns typer.Exit's code instead of raising it.
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _quiet_paddle() -> None:
    # Paddle warns about ccache and distutils on import and about pir tensors on export; none concerns a user.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
    warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface for pir graph mode")
    os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ INFO logs; read when paddle is first imported
    # `datasets` (imported by PaddleNLP) logs which optional libraries it found at INFO through a root handler
    # Paddle installs, so every command, errors included, would start with those lines.
    logging.getLogger("datasets").setLevel(logging.WARNING)
