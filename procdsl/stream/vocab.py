"""The token ids of one phase: the text tokenizer's first, then each procedural source's own.

Sources of a phase number their tokens independently (the tokenizer's ids; every procedural
source its own ``0 … vocab_size() - 1``), so the phase gives each a disjoint range of *global*
ids: ``[0, V_text)`` for the tokenizer when the phase reads a data source (in its mix or its
evals), then one range per procedural source of the mix, in mix order, then one per procedural
eval source that is not in the mix — unless its parameters equal a mix source's, in which case
it shares that source's range (the held-out examples of the same task read the same tokens).
The runtime sizes the phase's embedding and output layer from ``size``.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum v {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 64
...   batch = 4
...   source code = python_code()
...   source s = sort(length=8, vocab=10)
...   source d = dyck(k=2)
...   source s_val = sort(length=8, vocab=10)
...   phase warm { steps = 10  mix = { s: 50%, d: 50% } }
...   phase mixed { steps = 10  mix = { code: 90%, s: 10% }
...                 eval every 5 steps { perplexity(s_val, batches=1) } }
... }''', "v.curr").plan
>>> warm = PhaseVocab.for_phase(plan, "warm")
>>> warm.size, warm.offset("s"), warm.offset("d"), warm.text_size
(17, 0, 12, 0)
>>> mixed = PhaseVocab.for_phase(plan, "mixed")
>>> mixed.size, mixed.offset("code"), mixed.offset("s"), mixed.offset("s_val")
(270, 0, 258, 258)
>>> [mixed.describe(i) for i in (104, 256, 258 + 3, 258 + 10)]
["text:'h'", "text:'<eos>'", 's:3', 's:SEP']
>>> mixed.decode([104, 105, 256, 259, 268, 259])
'hi<eos>[s: 1 SEP 1]'
>>> PhaseVocab.sized(plan, "mixed", 1000).size, PhaseVocab.sized(plan, "warm", 1000).size
(1012, 17)
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, Union

from procdsl.data import Tokenizer, build_tokenizer
from procdsl.generators import GENERATORS
from procdsl.plan.model import Phase, Plan
from procdsl.plan.sources import SourceBase

TEXT = "text"


@dataclass(frozen=True)
class IdRange:
    """Global ids ``[offset, offset + size)`` belong to ``name`` (``"text"`` or a source)."""

    name: str
    offset: int
    size: int
    source: Optional[SourceBase] = None  # the procedural source (None for text)


class PhaseVocab:
    """The global id ranges of a phase; build it with :meth:`for_phase`."""

    def __init__(
        self,
        ranges: Iterable[IdRange],
        *,
        tokenizer: Optional[Tokenizer] = None,
        data_sources: Iterable[str] = (),
        aliases: Optional[dict[str, str]] = None,
    ):
        self.ranges = tuple(ranges)
        self.tokenizer = tokenizer
        self.data_sources = frozenset(data_sources)
        self.aliases = dict(aliases or {})
        self._by_name = {r.name: r for r in self.ranges}
        self._starts = [r.offset for r in self.ranges]

    @classmethod
    def for_phase(
        cls,
        plan: Plan,
        phase: Union[str, Phase],
        *,
        tokenizer: Optional[Tokenizer] = None,
        cache_dir: Optional[str] = None,
    ) -> PhaseVocab:
        """The vocabulary of ``phase`` (a name or a Phase of ``plan``).

        The tokenizer is built from ``plan.tokenizer`` only when the phase reads a data source
        (pass ``tokenizer`` to reuse one already built).
        """
        phase = plan.phase(phase) if isinstance(phase, str) else phase
        if any(not plan.sources[n].procedural for n in phase.sources_read()):
            tokenizer = tokenizer or build_tokenizer(
                plan.tokenizer, sources=plan.sources, cache_dir=cache_dir, seed=plan.seed
            )
            return cls._laid_out(plan, phase, tokenizer.vocab_size, tokenizer)
        return cls._laid_out(plan, phase, 0, None)

    @classmethod
    def sized(cls, plan: Plan, phase: Union[str, Phase], text_size: int) -> PhaseVocab:
        """The ranges of ``phase`` as if the tokenizer had ``text_size`` ids, without building
        it (parameter and FLOP counts); it decodes no text."""
        phase = plan.phase(phase) if isinstance(phase, str) else phase
        return cls._laid_out(plan, phase, text_size, None)

    @classmethod
    def _laid_out(
        cls, plan: Plan, phase: Phase, text_size: int, tokenizer: Optional[Tokenizer]
    ) -> PhaseVocab:
        """The text range (``text_size`` ids) when the phase reads data, then the procedural ones."""
        data = [n for n in phase.sources_read() if not plan.sources[n].procedural]
        ranges = [IdRange(TEXT, 0, text_size)] if data else []
        aliases: dict[str, str] = {}
        for name in phase.sources_read():
            source = plan.sources[name]
            if not source.procedural:
                continue
            twin = next((r.name for r in ranges if name not in phase.mix and r.source == source), None)
            if twin is not None:
                aliases[name] = twin
                continue
            offset = ranges[-1].offset + ranges[-1].size if ranges else 0
            size = source.vocab_size()
            assert size is not None  # a procedural source numbers its own tokens
            ranges.append(IdRange(name, offset, size, source))
        return cls(ranges, tokenizer=tokenizer, data_sources=data, aliases=aliases)

    @property
    def size(self) -> int:
        """Every id of the phase is below this (the embedding's number of rows)."""
        last = self.ranges[-1]
        return last.offset + last.size

    @property
    def text_size(self) -> int:
        """Ids ``[0, text_size)`` are the tokenizer's (0 when the phase reads no data source)."""
        text = self._by_name.get(TEXT)
        return text.size if text else 0

    @property
    def pad_id(self) -> int:
        """The id that fills the rest of a row: the tokenizer's PAD when the phase reads text,
        else the first procedural source's last id (every generator's PAD is its last id).
        Padding is never a target and no real token attends to it, so the id only shows in
        ``procdsl sample --packed``."""
        if self.tokenizer is not None:
            return int(self.tokenizer.pad_id)
        first = self.ranges[0]
        return first.offset + first.size - 1

    def offset(self, name: str) -> int:
        """Where source ``name``'s ids start (0 for a data source: the tokenizer's range)."""
        if name in self.data_sources:
            return 0
        name = self.aliases.get(name, name)
        if name not in self._by_name or name == TEXT:
            raise KeyError(f"source {name!r} is not read in this phase")
        return self._by_name[name].offset

    def range_of(self, token: int) -> IdRange:
        """The range holding global id ``token``."""
        token = int(token)
        if not 0 <= token < self.size:
            raise ValueError(f"id {token} is outside the phase vocabulary (0 … {self.size - 1})")
        return self.ranges[bisect.bisect_right(self._starts, token) - 1]

    def describe(self, token: int) -> str:
        """``"<range>:<token>"``: the source and the token as the source names it."""
        r = self.range_of(token)
        if r.source is None:
            return f"{TEXT}:{self.text_tokenizer.decode([token], specials=True)!r}"
        return f"{r.name}:{GENERATORS[r.source.kind].token_names(r.source)(int(token) - r.offset)}"

    def decode(self, ids: Iterable[int]) -> str:
        """Text runs decoded by the tokenizer; each procedural run as ``[source: tokens]``."""
        parts: list[str] = []
        run: list[int] = []
        current: Optional[IdRange] = None
        for token in [int(i) for i in ids] + [None]:
            r = None if token is None else self.range_of(token)
            if current is not None and run and r is not current:
                parts.append(self._decode_run(current, run))
                run = []
            current = r
            if token is not None:
                run.append(token)
        return "".join(parts)

    @property
    def text_tokenizer(self) -> Tokenizer:
        """The tokenizer of the text ids; a phase that reads no data source (or a vocabulary
        built by :meth:`sized`) has none."""
        if self.tokenizer is None:
            raise ValueError("this phase vocabulary has no tokenizer (the phase reads no data source)")
        return self.tokenizer

    def _decode_run(self, r: IdRange, run: list[int]) -> str:
        if r.source is None:
            return self.text_tokenizer.decode(run, specials=True)
        name = GENERATORS[r.source.kind].token_names(r.source)
        return f"[{r.name}: {' '.join(name(t - r.offset) for t in run)}]"

    def __repr__(self) -> str:
        spans = ", ".join(f"{r.name} [{r.offset}, {r.offset + r.size})" for r in self.ranges)
        return f"<PhaseVocab {self.size}: {spans}>"
