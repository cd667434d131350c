"""What a run directory holds, and ``metrics.jsonl`` read, cut back and rotated (torch-free).

One run, one directory (``procdsl run`` writes it, ``procdsl report`` and ``export`` read it)::

    DIR/plan.json              the plan being executed (its hash names the run)
    DIR/checkpoints/step-N/    DCP checkpoints (each also records the plan's hash and JSON)
    DIR/metrics.jsonl          one record per step, and one per evaluation
    DIR/tb/                    TensorBoard events of the same numbers
    DIR/logs/rank_R.log        TorchTitan's log of each rank
    DIR/summary.json           written when the run ends (done, stopped or failed)
    DIR/run.lock               held (``flock``) by the process running it; holds its PID

Every module names these through the constants below, never as literals.

The run appends one JSON object per line to ``metrics.jsonl``. A ``kill -9`` can tear the last
line; a disk error or a hand edit can spoil any line. One policy for every reader: a line that
is not a JSON object with an integer ``step`` (if it has one) is bad; it is skipped, its number
returned, and nothing else of the file is lost. :func:`read_records` returns the good records and
the bad lines' numbers; :func:`truncate_records` keeps every good record up to a step (a resumed
run relogs what came after its checkpoint) and drops the bad lines, rewriting the file
atomically (``procdsl.atomic``); :func:`rotate` moves an old log aside (``metrics.jsonl`` →
``metrics.jsonl.1``, an older ``.1`` → ``.2`` …) when a run starts over without a checkpoint.

>>> import tempfile
>>> run = tempfile.mkdtemp()
>>> path = os.path.join(run, METRICS_FILE)
>>> _ = open(path, "w").write('{"step": 1}\\n{"st\\n{"step": 2}\\n{"step": 3}\\n{"step"')
>>> [r["step"] for r in read_metrics(run)]
[1, 2, 3]
>>> truncate_records(path, 2)
(2, [2, 5])
>>> open(path).read()
'{"step": 1}\\n{"step": 2}\\n'
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from procdsl.atomic import atomic_write
from procdsl.errors import UsageError

PLAN_FILE = "plan.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"
LOGS = "logs"
LOCK_FILE = "run.lock"


def rank_log(rank: int) -> str:
    """The path of rank ``rank``'s log inside a run directory.

    >>> rank_log(1)
    'logs/rank_1.log'
    """
    return f"{LOGS}/rank_{rank}.log"


def _parse(raw: bytes) -> Any:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step", 0), int) else None


def default_out(plan_name: str) -> str:
    """``runs/<plan name>`` (a sweep variant's ``/`` and ``=`` kept as nested folders).

    >>> default_out("quickstart")
    'runs/quickstart'
    """
    return os.path.join("runs", *plan_name.split("/"))


def variant_dir(plan: Any) -> str:
    """A sweep variant's directory name: its ``key=value`` part as one safe name (no separator,
    never ``..``: :func:`procdsl.files.safe_name`).

    >>> from types import SimpleNamespace
    >>> variant_dir(SimpleNamespace(name="c/seed=0,warm.mix={ a: 100% }"))
    'seed=0,warm.mix=a-100%'
    >>> variant_dir(SimpleNamespace(name='c/sources.d.path="/../../etc"'))
    'sources.d.path=_.._.._etc'
    """
    from procdsl.files import safe_name

    return safe_name(plan.name.split("/", 1)[-1])


@dataclass(frozen=True)
class Targets:
    """The plans ``procdsl run`` trains and where: ``base`` is the run directory, or for a sweep
    the folder of its variants' directories (each ``base/<variant_dir>``)."""

    plans: list[Any]
    base: str
    sweep: bool

    def dir_of(self, plan: Any) -> str:
        return os.path.join(self.base, variant_dir(plan)) if self.sweep else self.base

    @property
    def name(self) -> str:
        """What a job running them is called: the plan's name, or the sweep's."""
        return self.plans[0].name if len(self.plans) == 1 else self.plans[0].name.split("/", 1)[0]


def targets(plans: Sequence[Any], *, variant: Optional[str] = None, out: Optional[str] = None) -> Targets:
    """Which of a compiled file's plans to run (``--variant``: a variant's name, its
    ``key=value`` part or its directory name), under ``out`` (default :func:`default_out`).
    A file with a sweep puts each variant in its own directory, even a sweep of one (its name
    holds .curr values); UsageError names the variants when ``variant`` matches none.

    >>> from types import SimpleNamespace as P
    >>> sweep = [P(name="c/lr=0.1", variant={"lr": 0.1}), P(name="c/lr=0.2", variant={"lr": 0.2})]
    >>> chosen = targets(sweep, variant="lr=0.2")
    >>> [p.name for p in chosen.plans], chosen.dir_of(chosen.plans[0]), chosen.name
    (['c/lr=0.2'], 'runs/c/lr=0.2', 'c/lr=0.2')
    """
    chosen = list(plans)
    if variant is not None:
        chosen = [p for p in plans if variant in (p.name, p.name.split("/", 1)[-1], variant_dir(p))]
        if not chosen:
            names = "\n  ".join(p.name for p in plans)
            raise UsageError(f"no variant {variant!r}; the variants are:\n  {names}")
    base = out if out is not None else default_out(plans[0].name.split("/", 1)[0])
    return Targets(chosen, base, sweep=any(p.variant for p in plans))


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


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
    """The good records of ``run_dir``'s ``metrics.jsonl``, in order (none if there is no file)."""
    path = os.path.join(run_dir, METRICS_FILE)
    return read_records(path)[0] if os.path.isfile(path) else []


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
    return (
        f"warning: {path}: {len(bad)} unreadable line{plural} dropped (line{plural} {shown}); "
        "every other record is kept"
    )
