"""Progress for long transfers: steady log lines for task logs and pipes, a bar on a terminal.

Downloads, slices and uploads can run for minutes to hours; a line at a steady pace (never a flood)
tells whoever reads an Airflow task log that the work is moving and when it should end.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# How each unit is counted and shown: bytes as MB, items as whole numbers.
UNITS = {"MB": (1e6, ".1f"), "subjects": (1, ".0f")}


class ProgressLog:
    """A progress line at a steady pace: amount, percent, rate and ETA, never more often than ``every`` seconds."""

    def __init__(self, label: str, every: float = 5.0, emit: Callable[[str], None] = log.info, unit: str = "MB") -> None:
        self.label, self.every, self.emit, self.unit = label, every, emit, unit
        self._scale, self._format = UNITS[unit]
        self._last = 0.0

    def __call__(self, done: int, total: int | None, elapsed: float, final: bool = False) -> None:
        if not final and elapsed - self._last < self.every:
            return
        self._last = elapsed
        amount = format(done / self._scale, self._format)
        rate = done / self._scale / elapsed if elapsed > 0 else 0.0
        if total:
            eta = (total - done) / self._scale / rate if rate > 0 else float("inf")
            self.emit(f"{self.label}: {amount} of {format(total / self._scale, self._format)} {self.unit} "
                      f"({100 * done / total:.0f}%), {rate:.1f} {self.unit}/s, ETA {eta:.0f} s")
        else:
            self.emit(f"{self.label}: {amount} {self.unit}, {rate:.1f} {self.unit}/s")


def timed(progress: ProgressLog) -> Callable[[int, int | None], None]:
    """``update(done, total)`` for code that does not track time itself."""
    started = time.monotonic()
    return lambda done, total: progress(done, total, time.monotonic() - started, final=done == total)


@contextmanager
def terminal_progress(label: str, unit: str = "MB") -> Iterator[Callable[[int, int | None], None]]:
    """``update(done, total)``: a progress bar on a terminal; steady lines on stderr otherwise (pipes, CI)."""
    if not sys.stderr.isatty():
        yield timed(ProgressLog(label, every=5.0, emit=lambda line: print(line, file=sys.stderr), unit=unit))
        return
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    amount = (DownloadColumn(), TransferSpeedColumn()) if unit == "MB" else (MofNCompleteColumn(),)
    with Progress("[progress.description]{task.description}", BarColumn(), *amount, TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
