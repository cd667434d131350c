"""Train/held-out assignment: a stable hash of a document's identity, compared to a fraction.

A document is held out when ``stable_unit(key) < heldout``, where ``stable_unit`` maps the key
to ``[0, 1)`` through BLAKE2b — the same on every machine, Python version and run (unlike
``hash()``). Both splits apply the same test with opposite outcomes, so they are disjoint by
construction, and identical texts (duplicates) always land on the same side.

>>> stable_unit("hello") == stable_unit("hello")
True
>>> in_split("hello", "heldout", 1.0), in_split("hello", "train", 1.0)
(True, False)
>>> in_split("hello", "train", 0.0), in_split("hello", "all", 0.5)
(True, True)

A plan carves a held-out split out of a source only where it asks for one: where it both trains
on and evaluates on the same data (``plan_split``). A source only evaluated on (``c4_val``, a
real validation split) is read whole, not scanned for the 1% that hashes below ``heldout``; a
source only trained on loses nothing:

>>> from types import SimpleNamespace as NS
>>> from procdsl.plan.sources import HfSource, PythonCodeSource
>>> plan = NS(sources={"c4": HfSource(dataset="c4"), "c4_val": HfSource(dataset="c4", split="validation"),
...                    "code": PythonCodeSource(), "code_val": PythonCodeSource()},
...           phases=[NS(mix={"c4": 0.5, "code": 0.5},
...                      eval=(NS(source="c4_val"), NS(source="code_val")))])
>>> [plan_split(plan, name, role) for name, role in
...  (("c4", "train"), ("c4_val", "heldout"), ("code", "train"), ("code_val", "heldout"))]
['all', 'all', 'train', 'heldout']
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

Split = Literal["train", "heldout", "all"]
#: what a plan reads a source for: a phase's mix (train) or an eval block (heldout)
Role = Literal["train", "heldout"]
SPLITS: tuple[str, ...] = ("train", "heldout", "all")

_PERSON = b"procdsl/heldout"  # domain separation: these hashes mean nothing elsewhere


def stable_unit(key: str | bytes) -> float:
    """A number in ``[0, 1)`` that depends only on ``key`` (BLAKE2b, 32 bits of it)."""
    data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    digest = hashlib.blake2b(data, digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def in_split(key: str | bytes, split: Split, heldout: float) -> bool:
    """Whether the document identified by ``key`` belongs to ``split`` (``"all"``: always)."""
    if split == "all":
        return True
    held = stable_unit(key) < heldout
    return held if split == "heldout" else not held


def check_split(split: str) -> Split:
    """Reject a split name other than train / heldout / all with a clear ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split  # type: ignore[return-value]  # membership in SPLITS does not narrow a str


def plan_split(plan: Any, name: str, role: Role) -> Split:
    """The split of data source ``name`` that ``plan`` reads for training or for its evals.

    ``role`` is ``"train"`` (a phase's mix) or ``"heldout"`` (an eval block). The split is that
    role only when the plan reads the same data (the same source parameters, ``heldout`` aside)
    in the other role too, so the two must be kept apart; otherwise the whole source: ``"all"``.
    """
    if role not in ("train", "heldout"):
        raise ValueError(f"role must be train or heldout, got {role!r}")
    other = (
        {e.source for p in plan.phases for e in p.eval}
        if role == "train"
        else {n for p in plan.phases for n in p.mix}
    )
    data = _data_identity(plan.sources[name])
    if any(_data_identity(plan.sources[n]) == data for n in other):
        return role
    return "all"


def _data_identity(source: Any) -> str:
    """What data a source reads: its parameters without the held-out fraction."""
    return json.dumps(source.model_dump(mode="json", exclude={"heldout"}), sort_keys=True)
