"""The stated maxima: what ``procdsl check`` refuses because no run could take it.

One table, read by the lexer (numbers, nesting), the loader (file size, import depth), the
sweep expander and the value reader; README's "Limits" paragraph lists the same numbers. Each
bound is far above any sensible curriculum and below where the runtime (int64 tensors, the BPE
trainer's allocation, a model's parameter count) would fail.

>>> SETTING_MAXIMUM["context"], FIELD_MAXIMUM["vocab"]
(1048576, 1048576)
>>> maximum_of("seed") == INT64_MAX, maximum_of("steps") == INT64_MAX
(True, True)
"""

from __future__ import annotations

from typing import Optional, Union

INT64_MAX = 2**63 - 1
#: a number literal beyond this is not a number any setting can hold (1e400 is infinite)
MAX_LITERAL = 1e300
#: brackets `( [ {` open at once, blocks included: deeper input is generated, not written
MAX_NESTING = 100
#: files on one chain of imports (a imports b imports c …)
MAX_IMPORT_DEPTH = 64
#: bytes of one .curr file (import reads only regular files up to this size)
MAX_SOURCE_BYTES = 8 * 2**20
#: variants one sweep may expand to
MAX_SWEEP_VARIANTS = 1024

#: curriculum, phase and runtime settings read as whole numbers (by the name the reader is given)
SETTING_MAXIMUM: dict[str, int] = {
    "context": 2**20,
    "batch": 2**20,
}

#: arguments of calls (models, tokenizers, sources, optimizers), by parameter name
FIELD_MAXIMUM: dict[str, Union[int, float]] = {
    "layers": 4096,
    "heads": 4096,
    "kv_heads": 4096,
    "dim": 2**17,
    "vocab": 2**20,  # bpe(vocab=…) and every procedural source's own vocabulary
    "k": 2**19,  # dyck bracket types: 2k symbols
    "lr": 10.0,
    "shard": 2**16,
    "tp": 2**16,
}


def maximum_of(setting: str) -> int:
    """The largest whole number a setting read by that name may take (int64 at most)."""
    return SETTING_MAXIMUM.get(setting, INT64_MAX)


def field_maximum(field: str) -> Optional[Union[int, float]]:
    return FIELD_MAXIMUM.get(field)


__all__ = [
    "FIELD_MAXIMUM",
    "INT64_MAX",
    "MAX_IMPORT_DEPTH",
    "MAX_LITERAL",
    "MAX_NESTING",
    "MAX_SOURCE_BYTES",
    "MAX_SWEEP_VARIANTS",
    "SETTING_MAXIMUM",
    "field_maximum",
    "maximum_of",
]
