"""What a run shows on rank 0's terminal: a rich progress bar per phase, and one-line notes.

Everything goes to stderr (stdout stays free for machine output). Other ranks show nothing.
Without a terminal (CI, a pipe) there is no bar; each phase ends with one line instead:

    warmup  150/150  loss 0.412  4,870 tok/s  0:02:06
"""

from __future__ import annotations

from typing import Any, Optional


class RunConsole:
    """Rank 0's console; a disabled one (other ranks) does nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Optional[int] = None

    def note(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def start_phase(self, name: str, total: int, done: int) -> None:
        if self.console is None:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            disable=not self.console.is_terminal)
        self._progress.start()
        self._task = self._progress.add_task(name, total=total, completed=done, loss="-", tps="-")

    def advance(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4f}",
                                  tps=f"{tokens_per_s:,.0f}")

    def end_phase(self, summary: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            if not self.console.is_terminal:
                self.note(summary)
