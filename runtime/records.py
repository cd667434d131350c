"""``metrics.jsonl`` as a file that survives kills and damage: read, cut back to a step, rotate.

The run appends one JSON object per line (``procdsl.runtime.metrics.RunLog``). A ``kill -9``
can tear the last line; a disk error or a hand edit can spoil any line. Nothing here gives up
on the rest of the file because of one bad line: :func:`read_records` returns every good record
and the numbers of the bad lines; :func:`truncate_records` keeps every good record up to a step
(a resumed run relogs what came after its checkpoint) and drops the bad lines, rewriting the
file atomically; :func:`rotate` moves an old log aside (``metrics.jsonl`` → ``metrics.jsonl.1``,
an older ``.1`` → ``.2`` …) when a run starts over without a checkpoint.

>>> import tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
>>> _ = open(path, "w").write('{"step": 1}\\n{"st\\n{"step": 2}\\n{"step": 3}\\n{"step"')
>>> truncate_records(path, 2)
(2, [2, 5])
>>> open(path).read()
'{"step": 1}\\n{"step": 2}\\n'
"""

from __future__ import annotations

import json
import os
from typing import Any

from procdsl.atomic import atomic_write


def _parse(raw: bytes) -> Any:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step", 0), int) else None


def read_records(path: str) -> tuple[list[dict[str, Any]], list[int]]:
    """``(records, bad line numbers)`` of a JSON-lines file (1-based numbers; blank lines ignored)."""
    records, bad = [], []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            record = _parse(raw)
            if record is None:
                bad.append(number)
            else:
                records.append(record)
    return records, bad


def truncate_records(path: str, step: int) -> tuple[int, list[int]]:
    """Keep the good records of ``path`` whose ``step`` is at most ``step``; ``(kept, bad lines)``.

    A run killed after logging step 12 but resuming from the checkpoint of step 10 relogs
    steps 11 and 12; this keeps the log to one record per step.
    """
    if not os.path.isfile(path):
        return 0, []
    records, bad = read_records(path)
    kept = [r for r in records if r.get("step", 0) <= step]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(kept), bad


def rotate(path: str) -> str:
    """Move ``path`` to ``path.1`` (shifting older copies up: ``.1`` → ``.2`` …); returns the new name."""
    taken = 1
    while os.path.exists(f"{path}.{taken}"):
        taken += 1
    for number in range(taken, 1, -1):
        os.replace(f"{path}.{number - 1}", f"{path}.{number}")
    os.replace(path, f"{path}.1")
    return f"{path}.1"


def describe_bad(path: str, bad: list[int]) -> str:
    """A warning naming the unreadable lines (at most five numbers shown).

    >>> describe_bad("run/metrics.jsonl", [3, 9])
    'warning: run/metrics.jsonl: 2 unreadable lines dropped (lines 3, 9); every other record is kept'
    """
    shown = ", ".join(map(str, bad[:5])) + (", …" if len(bad) > 5 else "")
    plural = "s" if len(bad) != 1 else ""
    return (f"warning: {path}: {len(bad)} unreadable line{plural} dropped (line{plural} {shown}); "
            "every other record is kept")
