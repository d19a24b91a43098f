"""Progress of a long job, in phases (compiling, building, starting the board, running N/M).

On a terminal it is a transient rich progress bar; elsewhere (CI logs, pipes) plain lines on
stderr: each phase once, and a count line at the start, every tenth of the way and at the end.
Library code reports through `phase(progress, label)` and `progress(done, total)`, both optional.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def phase(progress, label: str) -> None:
    """Announce a phase on `progress` if it takes phases (plain callbacks are left alone)."""
    if progress is not None and hasattr(progress, "phase"):
        progress.phase(label)


class PlainProgress:
    """Progress as plain lines, for logs."""

    def __init__(self, label: str, stream=None):
        self.stream = stream or sys.stderr
        self.label = label
        self.counting = None
        self.last_tenth = -1

    def _line(self, text: str) -> None:
        print(f"tinyconv: {text}", file=self.stream, flush=True)

    def phase(self, label: str) -> None:
        self.label, self.counting, self.last_tenth = label, None, -1
        self._line(label)

    def __call__(self, done: int, total: int | None) -> None:
        if not total:
            return
        tenth = 10 * done // total
        if tenth != self.last_tenth or done == total:
            self.last_tenth = tenth
            self._line(f"{self.label} {done}/{total}")


class BarProgress:
    """Progress as a rich bar whose text is the current phase."""

    def __init__(self, bar: Progress, label: str):
        self.bar, self.label = bar, label
        self.task = bar.add_task(label, total=None)

    def phase(self, label: str) -> None:
        self.label = label
        self.bar.update(self.task, description=label, completed=0, total=None)

    def __call__(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)


@contextmanager
def progress_reporter(label: str, console: Console):
    """A callback(done, total) with .phase(label): a bar on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        yield PlainProgress(label, console.file)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        yield BarProgress(bar, label)
