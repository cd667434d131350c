"""What a run shows on rank 0's terminal: a rich progress bar per phase, and one-line notes.

Everything goes to stderr (stdout stays free for machine output). Other ranks show nothing.
Without a terminal (a SLURM log, CI, a pipe) there is no bar: a plain progress line is printed
at the first step of a phase, then every ``every`` steps (default: a twentieth of the phase;
``$PROCDSL_PROGRESS_EVERY`` sets it) and at least once a minute, and each phase ends with one
summary line::

    warmup  step 1/150  loss 3.8712  4,870 tok/s  ETA 0:02:31
    warmup  step 8/150  loss 2.9034  4,912 tok/s  ETA 0:02:10
    warmup  150/150  loss 0.412  4,870 tok/s  126 s

The ETA extrapolates the phase's mean step time in this process.

>>> progress_line("warm", 8, 150, 2.90341, 4912.4, eta_s=130.2)
'warm  step 8/150  loss 2.9034  4,912 tok/s  ETA 0:02:10'
>>> default_every(150), default_every(7)
(7, 1)
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

#: environment variable overriding the steps between progress lines (no terminal)
EVERY_ENV = "PROCDSL_PROGRESS_EVERY"
#: seconds after which a progress line is due whatever the step count
MAX_SILENCE_S = 60.0


def default_every(total: int) -> int:
    """Steps between progress lines of a phase of ``total`` steps: a twentieth, at least 1."""
    return max(1, total // 20)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(name: str, step: int, total: int, loss: float, tokens_per_s: float, eta_s: float) -> str:
    """One plain progress line (module docstring)."""
    return (
        f"{name}  step {step}/{total}  loss {loss:.4f}  {tokens_per_s:,.0f} tok/s  "
        f"ETA {format_duration(eta_s)}"
    )


class RunConsole:
    """Rank 0's console; a disabled one (other ranks) does nothing."""

    def __init__(self, enabled: bool = True, every: Optional[int] = None):
        self.enabled = enabled
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Optional[int] = None
        env = os.environ.get(EVERY_ENV, "")
        self.every = every or (int(env) if env.isdigit() and int(env) > 0 else None)
        self._phase = ("", 0, 0, 0.0)  # name, total, first step, start time
        self._last = (0, 0.0)  # step and time of the last progress line

    @property
    def plain(self) -> bool:
        """No terminal: plain progress lines instead of a bar."""
        return self.console is not None and not self.console.is_terminal

    def note(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def start_phase(self, name: str, total: int, done: int) -> None:
        if self.console is None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        now = time.perf_counter()
        self._phase, self._last = (name, total, done, now), (done, now)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not self.console.is_terminal,
        )
        self._progress.start()
        self._task = self._progress.add_task(name, total=total, completed=done, loss="-", tps="-")

    def advance(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self._progress is None:
            return
        self._progress.update(self._task, completed=step, loss=f"{loss:.4f}", tps=f"{tokens_per_s:,.0f}")
        if self.plain:
            self._maybe_print(step, loss, tokens_per_s)

    def _maybe_print(self, step: int, loss: float, tokens_per_s: float) -> None:
        name, total, first, began = self._phase
        now = time.perf_counter()
        every = self.every or default_every(total)
        due = step == first + 1 or step - self._last[0] >= every or now - self._last[1] >= MAX_SILENCE_S
        if not due or step >= total:  # the phase's summary line reports the last step
            return
        eta = (now - began) / (step - first) * (total - step)
        self.note(progress_line(name, step, total, loss, tokens_per_s, eta))
        self._last = (step, now)

    def end_phase(self, summary: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            if not self.console.is_terminal:
                self.note(summary)
