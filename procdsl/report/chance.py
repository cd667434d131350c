"""The accuracy a probe gives without learning its task: the chance line of an accuracy figure.

For the probes, "chance" is the best a model does that only learned the *format* of the answer:

* ``haystack`` — copy one of the listed values: ``1 / pairs`` on average over the drawn number
  of pairs (4 pairs: 25%, the floor the README's haystack numbers sit on);
* ``addition``, ``reversed_addition``, ``multiplication`` — a uniformly guessed digit: 10%;
* ``sorting`` and algorithmic ``task(…)`` rules — a uniformly guessed symbol: ``1 / (vocab − 1)``.

Other sources (``dyck``, text) have no chance line: their accuracy is next-token accuracy.
Sources are read as ``plan.json`` stores them (plain dicts).

>>> chance_accuracy({"kind": "haystack", "pairs": 4, "vocab": 256})
(0.25, 'chance: copy a listed value')
>>> round(chance_accuracy({"kind": "haystack", "pairs": {"kind": "range", "low": 1, "high": 2}})[0], 3)
0.75
>>> chance_accuracy({"kind": "addition", "digits": 5})
(0.1, 'chance: a random digit')
>>> chance_accuracy({"kind": "dyck", "k": 4}) is None
True
"""

from __future__ import annotations

from typing import Any, Optional


def _values(value: Any) -> list[int]:
    """Every number a tunable parameter (as JSON) takes: a range's each value, a ramp's ends."""
    if isinstance(value, dict) and value.get("kind") == "range":
        return list(range(int(value["low"]), int(value["high"]) + 1))
    if isinstance(value, dict) and value.get("kind") == "ramp":
        return [int(value["start"]), int(value["end"])]
    return [int(value)]


def chance_accuracy(source: dict[str, Any]) -> Optional[tuple[float, str]]:
    """``(accuracy, label)`` of the chance line for ``source``, or None (module docstring)."""
    kind = source.get("kind")
    if kind == "haystack":
        pairs = _values(source.get("pairs", {"kind": "range", "low": 1, "high": 30}))
        return sum(1 / p for p in pairs) / len(pairs), "chance: copy a listed value"
    if kind in ("addition", "reversed_addition", "multiplication"):
        return 0.1, "chance: a random digit"
    if kind in ("sorting", "task"):
        return 1 / (int(source.get("vocab", 100)) - 1), "chance: a random symbol"
    return None
