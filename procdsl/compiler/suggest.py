"""“Did you mean …?” for every unknown name.

>>> did_you_mean("dyk", ["dyck", "sort", "set"])
'did you mean `dyck`?'
>>> did_you_mean("zzz", ["dyck"]) is None
True
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Optional


def closest(word: str, candidates: Iterable[str]) -> Optional[str]:
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> Optional[str]:
    match = closest(word, candidates)
    return f"did you mean `{match}`?" if match else None


def one_of(candidates: Iterable[str], limit: int = 12) -> str:
    """``a``, ``b`` or ``c`` — for help lines listing what is allowed."""
    items = [f"`{c}`" for c in sorted(set(candidates))]
    if len(items) > limit:
        items = items[:limit] + ["…"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
