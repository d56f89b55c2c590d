"""Progress bars on stderr (rich), shared by every command that encodes, searches or downloads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Optional

from embedkit import console

OnAdvance = Optional[Callable[[int], None]]


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[object]:
    """A rich progress display on stderr (None when disabled or in --quiet mode)."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console.get().err, transient=False) as progress:
        yield progress


def bar(progress, description: str, total: int) -> OnAdvance:
    """A callback advancing a new bar of ``progress`` (None when there is no display)."""
    if progress is None:
        return None
    task = progress.add_task(description, total=total)
    return lambda n: progress.advance(task, n)
