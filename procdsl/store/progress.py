"""The progress line of ``procdsl prepare``: tokens so far, tokens/s and the time left.

On a terminal one line is redrawn in place (at most twice a second); in a log, a line is
printed every ``log_every`` seconds, and always when the store is done.

>>> import io
>>> out = io.StringIO()
>>> line = ProgressLine("c4 (train)", total=2_000_000, stream=out, clock=iter([0.0, 10.0, 20.0]).__next__)
>>> line.update(1_000_000)
>>> line.done()
>>> print(out.getvalue().strip())
c4 (train): 1.0M / 2.0M tokens (50%), 100.0K tokens/s, ETA 10s
c4 (train): 1.0M tokens in 20s (50.0K tokens/s)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Optional, TextIO


class ProgressLine:
    """Reports the tokens written for one store; ``total`` is the bound (None: unknown)."""

    def __init__(
        self,
        label: str,
        *,
        total: Optional[int],
        stream: Optional[TextIO] = None,
        clock: Callable[[], float] = time.monotonic,
        log_every: float = 30.0,
    ):
        self.label, self.total, self.clock = label, total, clock
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.5 if self.tty else log_every
        self.start = clock()
        self.last = None if self.tty else self.start - log_every  # a log's first update prints
        self.tokens = 0

    def update(self, tokens: int) -> None:
        """``tokens`` written so far (in this run)."""
        self.tokens = tokens
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        rate = tokens / max(now - self.start, 1e-9)
        text = f"{self.label}: {human(tokens)}"
        if self.total:
            text += f" / {human(self.total)} tokens ({min(tokens / self.total, 1):.0%})"
            left = max(self.total - tokens, 0) / rate if rate > 0 else float("inf")
            text += f", {human(rate)} tokens/s, ETA {duration(left)}"
        else:
            text += f" tokens, {human(rate)} tokens/s"
        self._emit(text)

    def done(self) -> None:
        elapsed = self.clock() - self.start
        self._emit(
            f"{self.label}: {human(self.tokens)} tokens in {duration(elapsed)} "
            f"({human(self.tokens / max(elapsed, 1e-9))} tokens/s)",
            final=True,
        )

    def _emit(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def human(value: float) -> str:
    """``1234567`` → ``'1.2M'``."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def duration(seconds: float) -> str:
    """``200`` → ``'3m20s'``."""
    if seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
