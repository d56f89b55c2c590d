"""The `embedkit` command line. Commands are thin: parse, call one service function, render its result."""

from embedkit.cli.app import app
from embedkit.cli.entrypoint import main

__all__ = ["app", "main"]
