"""The mixture stream: a phase's sources → packed, sharded, resumable batches (DESIGN.md §4).

numpy only; the runtime wraps these iterables in its torch data loader. One module per job:

============  ====================================================================
vocab         :class:`PhaseVocab`: disjoint global ids of the phase's sources
progress      ramp progress of procedural examples: a pure function of the plan
units         per-source readers of units (≤ ``context`` tokens, with targets)
shares        planned token shares over the phase, and when a source is due
interleave    :class:`Interleave`: the deterministic unit stream, window by window
pack          a window → one rank's rows, and the global batch's counts
batch         :class:`Batch` and its shift convention (``inputs``/``labels``)
stream        :class:`PhaseStream`, :class:`EvalStream`: stateful, sharded
bench         throughput and memory of the whole pipeline
============  ====================================================================

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum q {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 16
...   batch = 2
...   source s = sort(length=4, vocab=10)
...   phase p { steps = 2  mix = { s: 100% } }
... }''', "q.curr").plan
>>> [batch.step for batch in PhaseStream(plan, "p")]
[0, 1]
"""

from procdsl.stream.batch import IGNORE_INDEX, Batch
from procdsl.stream.interleave import Interleave
from procdsl.stream.shares import Shares
from procdsl.stream.stream import EvalStream, PhaseStream, shard
from procdsl.stream.units import Cursor, Units
from procdsl.stream.vocab import PhaseVocab

__all__ = [
    "IGNORE_INDEX",
    "Batch",
    "Cursor",
    "EvalStream",
    "Interleave",
    "PhaseStream",
    "PhaseVocab",
    "Shares",
    "Units",
    "shard",
]
