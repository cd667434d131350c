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
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "heldout", "all"]
SPLITS: tuple[str, ...] = ("train", "heldout", "all")

_PERSON = b"procdsl/heldout"   # domain separation: these hashes mean nothing elsewhere


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
    return split  # type: ignore[return-value]
