"""The stateful streams the runtime reads: a phase's training batches, and held-out batches.

``PhaseStream(plan, phase)`` yields the phase's ``steps`` batches (:class:`Batch`): the
interleave of its mix (:mod:`procdsl.stream.interleave`), laid out into rows of ``context + 1``
tokens of whole units by the phase's ``layout`` (:mod:`procdsl.stream.pack`;
:mod:`procdsl.stream.batch` states the shift convention), ``phase.batch`` rows per step
globally, of which rank ``r`` of ``W`` gets rows ``[r·b, (r + 1)·b)``, ``b = batch / W``.

Every rank computes the layout of the same global batch — which unit lands in which row
depends on the lengths of all before it — and materialises only its own rows. The global batch
of a step is the same for 1, 2 or 64 ranks, and a checkpoint written by one world size resumes
on another. ``state_dict()`` is a small JSON-able dict (step, per-source cursors of the first
unit not yet in a batch, delivered tokens), equal on every rank; loading it yields exactly the
batch the uninterrupted stream would have yielded next.

Data sources read their ``train`` split (the whole source when no eval reads the same data);
:class:`EvalStream` reads held-out data only (``heldout`` split; procedural examples under the
name ``f"{source}/heldout"``), the same batches each time it is iterated. ``store``: read data
from the token store under that cache root (``procdsl prepare``; ``""`` = the default root)
instead of reading and tokenizing files as the stream goes.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum s {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 32
...   batch = 4
...   source a = sort(length=8, vocab=10)
...   source b = reverse(length=8, vocab=10)
...   phase p { steps = 3  mix = { a: 75%, b: 25% } }
... }''', "s.curr").plan
>>> stream = PhaseStream(plan, "p", rank=1, world=2)
>>> batch = next(iter(stream))
>>> batch.tokens.shape, batch.inputs.shape, batch.labels.dtype, stream.vocab.size
((2, 33), (2, 32), dtype('int64'), 24)
>>> stream.phase.layout, batch.source_tokens  # the global batch: 4 padded rows, one 17-token example each
('padded', (51, 17))
>>> batch.pad_tokens                        # 4 rows × 33 tokens − 68
64
>>> state = stream.state_dict()
>>> resumed = PhaseStream(plan, "p", rank=0, world=1)
>>> resumed.load_state_dict(state)
>>> following = next(iter(resumed))
>>> following.step, bool((following.tokens[2:] == next(iter(stream)).tokens).all())
(1, True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import fields
from typing import Any, Optional

import numpy as np

from procdsl.data import Tokenizer
from procdsl.data.split import Role, plan_split
from procdsl.generators.core import SHORT_EXAMPLE
from procdsl.plan.model import Phase, Plan, default_layout
from procdsl.plan.sources import LossMode
from procdsl.stream.batch import Batch
from procdsl.stream.interleave import Interleave, Piece, spans
from procdsl.stream.pack import Rows, fill_rows, row_bounds
from procdsl.stream.progress import expected_real_tokens, final_progress, phase_progress, training_key
from procdsl.stream.shares import Shares
from procdsl.stream.units import (
    Cursor,
    LazyUnits,
    ProceduralUnits,
    StoreUnits,
    TextUnits,
    UnitReader,
    Units,
    row_length,
)
from procdsl.stream.vocab import PhaseVocab

STATE_VERSION = 2  # 2: rows of whole units (layouts)

#: the generators' block contract a state was written under (``procdsl.generators.core``):
#: 2 = examples over ``SHORT_EXAMPLE`` tokens in blocks of at most ``LONG_BLOCK_TOKENS``; a state
#: without it had every source in blocks of 512, the same examples only for short ones
BLOCKS_VERSION = 2

#: rows of its own a rank lays out ahead, at most (and global tokens, at most): the layout is
#: cheap, and the procedural examples of all those rows are then made in one vectorised call
#: (:meth:`Packed._lay_out_ahead`), so a rank with one row a step pays per row what a rank
#: with a wide batch pays
AHEAD_ROWS = 512
AHEAD_TOKENS = 1 << 24


def shard(batch: int, rank: int, world: int) -> int:
    """Rows per rank; a clear error unless ``world`` divides ``batch`` and ``rank`` fits.

    >>> shard(8, 3, 4)
    2
    >>> shard(6, 0, 4)
    Traceback (most recent call last):
      ...
    ValueError: the global batch of 6 rows cannot be split over 4 ranks: the world size must
    divide the batch (try 1, 2, 3 or 6 ranks, or change the batch)
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    if batch % world:
        divisors = [d for d in range(1, batch + 1) if batch % d == 0]
        listed = ", ".join(map(str, divisors[:-1])) + f" or {divisors[-1]}" if len(divisors) > 1 else "1"
        raise ValueError(
            f"the global batch of {batch} rows cannot be split over {world} ranks: "
            f"the world size must divide the batch (try {listed} ranks, or change the batch)"
        )
    return batch // world


def unit_reader(
    plan: Plan,
    name: str,
    *,
    vocab: PhaseVocab,
    key: str,
    seed: int,
    context: int,
    loss: LossMode,
    role: Role,
    phase: Optional[str] = None,
    progress=None,
    store: Optional[str] = None,
) -> UnitReader:
    """The reader of source ``name``: procedural (examples named ``key``), or data read for
    ``role`` (``train``/``heldout``: the split :func:`procdsl.data.split.plan_split` gives) —
    from the token store under ``store`` when given (:class:`StoreUnits`; a missing or stale
    store is a :class:`procdsl.store.StoreError` naming what to run), else by reading and
    tokenizing the files as it goes (:class:`TextUnits`)."""
    source = plan.sources[name]
    if source.procedural:
        return ProceduralUnits(
            source,
            seed=seed,
            key=key,
            context=context,
            offset=vocab.offset(name),
            loss=loss,
            progress=progress,
        )
    if store is not None:
        from procdsl.store import TokenStore

        opened = TokenStore.open(
            plan, name, role, phase=phase, cache_dir=store or None, tokenizer=vocab.tokenizer
        )
        return StoreUnits(opened, context=context, loss=loss, name=name)
    return TextUnits(
        source,
        vocab.text_tokenizer,
        split=plan_split(plan, name, role),
        seed=seed,
        context=context,
        loss=loss,
        name=name,
    )


class _Queue:
    """Units pulled from the interleave and not yet laid out, in stream order."""

    def __init__(self) -> None:
        self.source = np.zeros(0, np.int64)
        self.length = np.zeros(0, np.int64)
        self.block = np.zeros(0, np.int64)  # index into ``blocks``
        self.unit = np.zeros(0, np.int64)  # unit index within its block
        self.blocks: list[Units] = []
        self.head = 0

    def extend(self, pieces: list[Piece]) -> None:
        if not pieces:
            return
        self._compact()
        ids = {}
        for piece in pieces:
            if id(piece.units) not in ids:
                ids[id(piece.units)] = self._block_index(piece.units)
        at = np.concatenate([p.at for p in pieces])
        order = np.argsort(at, kind="stable")
        new = [
            np.concatenate([np.full(len(p.index), p.source) for p in pieces]),
            np.concatenate([p.lengths for p in pieces]),
            np.concatenate([np.full(len(p.index), ids[id(p.units)]) for p in pieces]),
            np.concatenate([p.index for p in pieces]),
        ]
        self.source, self.length, self.block, self.unit = (
            np.concatenate([old, part[order]])
            for old, part in zip((self.source, self.length, self.block, self.unit), new)
        )

    def _block_index(self, units: Units) -> int:
        for i, known in enumerate(self.blocks):
            if known is units:
                return i
        self.blocks.append(units)
        return len(self.blocks) - 1

    def _compact(self) -> None:
        """Drop laid-out units, and blocks no pending unit refers to."""
        keep = slice(self.head, None)
        self.source, self.length = self.source[keep], self.length[keep]
        self.block, self.unit = self.block[keep], self.unit[keep]
        self.head = 0
        used = np.unique(self.block)
        remap = np.zeros(len(self.blocks), np.int64)
        remap[used] = np.arange(len(used))
        self.blocks = [self.blocks[i] for i in used]
        self.block = remap[self.block] if len(self.block) else self.block

    def pending_tokens(self) -> int:
        """Tokens of the units not laid out yet."""
        return int(self.length[self.head :].sum())

    def unread(self, sources: int) -> tuple[dict[int, Cursor], list[int]]:
        """Per source, the cursor of its first unit not laid out yet (sources that have one),
        and the tokens of all of them (for a rewound state): O(pending) in numpy."""
        source = self.source[self.head :]
        tokens = np.bincount(source, weights=self.length[self.head :], minlength=sources)
        firsts = {}
        for k in np.unique(source):
            i = self.head + int(np.argmax(source == k))
            firsts[int(k)] = self.blocks[int(self.block[i])].cursor(int(self.unit[i]))
        return firsts, [int(t) for t in tokens]

    def contents(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and targets of queued units ``index`` (increasing) concatenated, asked of
        each block in runs of consecutive units (a lazy block makes or slices just those)."""
        if not len(index):
            return np.zeros(0, np.int32), np.zeros(0, bool)
        blocks, units = self.block[index], self.unit[index]
        breaks = np.flatnonzero((np.diff(blocks) != 0) | (np.diff(units) != 1)) + 1
        firsts = np.concatenate([[0], breaks]).tolist()
        lasts = np.concatenate([breaks - 1, [len(index) - 1]]).tolist()
        runs = [
            self.blocks[int(blocks[a])].run(int(units[a]), int(units[b]) + 1) for a, b in zip(firsts, lasts)
        ]
        if len(runs) == 1:
            return runs[0]
        return np.concatenate([t for t, _ in runs]), np.concatenate([m for _, m in runs])


class Packed:
    """What both streams share: the interleave laid out into global batches of ``batch`` rows
    of whole units (``layout``: ``padded`` or ``packed``), this rank's rows materialised."""

    def __init__(
        self,
        interleave: Interleave,
        sources: tuple[str, ...],
        *,
        batch: int,
        context: int,
        rank: int,
        world: int,
        layout: str = "packed",
        pad_id: int = 0,
        steps: Optional[int] = None,
    ):
        if len(sources) > 127:
            raise ValueError(f"{len(sources)} sources in one stream; at most 127 fit the int8 source ids")
        self.interleave, self.sources = interleave, sources
        self.batch, self.context = batch, context
        self.rank, self.world = rank, world
        self.rows = shard(batch, rank, world)
        self.layout, self.pad_id = layout, pad_id
        self.steps = steps  # the batches the stream is read for (bounds the read-ahead)
        self.row_len = row_length(context)
        self.step = 0
        self._queue = _Queue()
        # the next steps, laid out and materialised: (units used, tokens per source, own rows)
        self._ready: deque[tuple[int, list[int], Rows]] = deque()

    def next_batch(self) -> Batch:
        """The next global batch, this rank's rows of it."""
        if not self._ready:
            self._lay_out_ahead()
        used, tokens, rows = self._ready.popleft()
        self._queue.head += used
        targets = np.bincount(rows.source[rows.targets], minlength=len(self.sources))  # this rank's rows
        batch = Batch(
            self.step,
            rows.tokens,
            rows.targets,
            rows.source,
            rows.starts,
            self.sources,
            tuple(tokens),
            tuple(int(t) for t in targets),
            positions=rows.positions,
            document=rows.document,
            pad_tokens=self.batch * self.row_len - sum(tokens),
        )
        self.step += 1
        return batch

    def _lay_out_ahead(self) -> None:
        """Lay out the next steps — as many as give this rank ``AHEAD_ROWS`` rows, within
        ``AHEAD_TOKENS`` and the steps left — and materialise this rank's rows of all of them
        at once: each procedural source makes its examples in one vectorised call, and the
        rows are filled in one pass. A layout depends only on the queued units' lengths and
        the queue's head moves one batch per delivered step, so laying out ahead changes no
        batch and no state (the units not yet in a delivered batch)."""
        queue, packed = self._queue, self.layout == "packed"
        step_tokens = self.batch * self.row_len
        left = self.steps - self.step if self.steps is not None else 1
        steps = max(1, min(AHEAD_ROWS // self.rows, AHEAD_TOKENS // step_tokens, left))
        # enough units that the layouts settle at once: more tokens than the rows hold
        # (packed), a unit a row (padded); pulled in a few large pieces, laid out once
        tokens_needed = steps * step_tokens + 1 if packed else 0
        units_needed = 0 if packed else steps * self.batch
        while True:
            self._fill_queue(tokens_needed, units_needed)
            bounds = row_bounds(
                queue.length,
                start=queue.head,
                rows=self.batch,
                row_len=self.row_len,
                packed=packed,
                steps=steps,
            )
            if len(bounds) == steps:
                break
            tokens_needed += step_tokens  # next-fit left more room unused than guessed
        # this rank's rows [r0, r1) of every step: their units, in stream order
        r0, r1 = self.rank * self.rows, (self.rank + 1) * self.rows
        firsts, stops = bounds[:, r0], bounds[:, r1]
        index = spans(firsts, stops - firsts)
        row_starts = bounds[:, r0 : r1 + 1]
        per_row = np.diff(row_starts, axis=1).ravel()  # units in each own row
        row = np.repeat(np.arange(steps * self.rows), per_row)
        self._prefetch(index)
        tokens, targets = queue.contents(index)
        rows = fill_rows(
            tokens,
            targets,
            source=queue.source[index],
            lengths=queue.length[index],
            row=row,
            rows=steps * self.rows,
            row_len=self.row_len,
            pad_id=self.pad_id,
        )
        # every step's global tokens per source, in one bincount
        count = len(self.sources)
        used = bounds[:, -1] - bounds[:, 0]
        every = np.arange(bounds[0, 0], bounds[-1, -1])
        step_of = np.repeat(np.arange(steps), used)
        totals = (
            np.bincount(
                step_of * count + queue.source[every], weights=queue.length[every], minlength=steps * count
            )
            .reshape(steps, count)
            .astype(np.int64)
        )
        for s in range(steps):
            mine = slice(s * self.rows, (s + 1) * self.rows)
            self._ready.append(
                (
                    int(used[s]),
                    [int(t) for t in totals[s]],
                    Rows(*(getattr(rows, f.name)[mine] for f in fields(Rows))),
                )
            )

    def _fill_queue(self, tokens: int, units: int) -> None:
        """Pull until the queue holds ``tokens`` tokens and ``units`` units not laid out."""
        queue = self._queue
        pending, count = queue.pending_tokens(), len(queue.length) - queue.head
        while pending < tokens or count < units:
            # one pull (one queue update) for the whole window; what is pulled but not laid out
            # is rewound in the state
            pieces = self.interleave.pull(max(tokens - pending, (units - count) * self.row_len))
            queue.extend(pieces)
            pending += sum(int(p.lengths.sum()) for p in pieces)
            count += sum(len(p.index) for p in pieces)

    def _prefetch(self, index: np.ndarray) -> None:
        """Queued units ``index`` of procedural sources, made per source in one call."""
        queue = self._queue
        wanted: dict[int, tuple[ProceduralUnits, list[np.ndarray]]] = {}
        blocks = queue.block[index]
        for block in np.unique(blocks):
            units = queue.blocks[int(block)]
            reader = units.reader if isinstance(units, LazyUnits) else None
            if reader is not None:
                items = units.items[queue.unit[index[blocks == block]]]
                wanted.setdefault(id(reader), (reader, []))[1].append(items)
        for reader, items in wanted.values():
            reader.prefetch(np.concatenate(items))

    def interleave_state(self) -> dict[str, Any]:
        """The interleave's state at the first unit not yet in a batch."""
        return self.interleave.rewound(*self._queue.unread(len(self.sources)))

    def load_interleave_state(self, state: dict[str, Any]) -> None:
        self.interleave.load_state_dict(state)
        self._queue = _Queue()
        self._ready.clear()


class PhaseStream(Packed):
    """The training batches of one phase of ``plan`` for rank ``rank`` of ``world``.

    Iterating yields the remaining batches of the phase (up to ``phase.steps``);
    :meth:`next_batch` goes on past the end (at the end shares) if asked. ``totals`` holds the
    labels and target labels each source has delivered so far (global, from step 0).
    """

    def __init__(
        self,
        plan: Plan,
        phase_name: str,
        rank: int = 0,
        world: int = 1,
        cache_dir: Optional[str] = None,
        *,
        tokenizer: Optional[Tokenizer] = None,
        store: Optional[str] = None,
    ):
        phase = plan.phase(phase_name)
        self.plan, self.phase, self.store = plan, phase, store
        self.vocab = PhaseVocab.for_phase(plan, phase, tokenizer=tokenizer, cache_dir=cache_dir)
        sources = tuple(phase.mix)
        readers = [self._reader(name) for name in sources]
        total = expected_real_tokens(phase, plan.sources) if phase.mix_ramp else None
        super().__init__(
            Interleave(readers, Shares.for_phase(phase, total)),
            sources,
            batch=phase.batch,
            context=phase.context,
            rank=rank,
            world=world,
            layout=phase.layout,
            pad_id=self.vocab.pad_id,
            steps=phase.steps,
        )
        self.totals = {"tokens": [0] * len(sources), "targets": [0] * len(sources)}
        self.pad_total = 0

    def _reader(self, name: str) -> UnitReader:
        phase, source = self.phase, self.plan.sources[name]
        progress = phase_progress(phase, name, source, self.plan.sources) if source.procedural else None
        return unit_reader(
            self.plan,
            name,
            vocab=self.vocab,
            key=training_key(name, phase),
            seed=phase.seed,
            context=phase.context,
            phase=phase.name,
            loss=phase.loss or source.default_loss,
            role="train",
            progress=progress,
            store=self.store,
        )

    def __iter__(self) -> Iterator[Batch]:
        while self.step < self.phase.steps:
            yield self.next_batch()

    def __len__(self) -> int:
        return self.phase.steps

    def next_batch(self) -> Batch:
        batch = super().next_batch()
        for k in range(len(self.sources)):
            self.totals["tokens"][k] += batch.source_tokens[k]
            self.totals["targets"][k] += batch.source_targets[k]
        self.pad_total += batch.pad_tokens
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: ints and lists only (the same on every rank)."""
        return {
            "version": STATE_VERSION,
            "blocks": BLOCKS_VERSION,
            "plan": self.plan.hash,
            "phase": self.phase.name,
            "sources": list(self.sources),
            "step": self.step,
            "totals": {key: list(value) for key, value in self.totals.items()},
            "pad": self.pad_total,
            **self.interleave_state(),
        }

    def load_state_dict(self, state: dict[str, Any], *, strict: bool = True) -> None:
        """Continue from ``state``. ``strict=False`` accepts a state written under another plan
        hash (``--force-replan``) as long as the phase and its sources are the same."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"stream state version {state.get('version')} is not {STATE_VERSION}")
        if state["phase"] != self.phase.name or list(state["sources"]) != list(self.sources):
            raise ValueError(
                f"stream state is for phase {state['phase']!r} with sources "
                f"{state['sources']}, not phase {self.phase.name!r} with {list(self.sources)}"
            )
        if strict and state["plan"] != self.plan.hash:
            raise ValueError(
                "stream state was written for another plan (hash differs); "
                "pass strict=False to continue anyway"
            )
        long = self._long_procedural_sources()
        if strict and state.get("blocks", 1) != BLOCKS_VERSION and long:
            raise ValueError(
                f"stream state was written by a procdsl whose procedural examples over {SHORT_EXAMPLE} "
                f"tokens came from other random blocks: {', '.join(long)} would continue on other "
                "examples than the run started with; finish the run with the procdsl version that "
                "started it, or continue anyway (--force-replan)"
            )
        self.load_interleave_state(state)
        self.pad_total = int(state.get("pad", 0))
        self.step = int(state["step"])
        self.totals = {key: [int(v) for v in state["totals"][key]] for key in ("tokens", "targets")}

    def _long_procedural_sources(self) -> list[str]:
        """This phase's procedural sources whose examples can exceed ``SHORT_EXAMPLE`` tokens."""
        context = self.phase.context
        return [
            name
            for name in self.sources
            if self.plan.sources[name].procedural
            and self.plan.sources[name].max_tokens(context) > SHORT_EXAMPLE
        ]


class EvalStream:
    """``batches`` held-out batches of ``source`` (``batch`` rows of ``context``), always the same.

    Ids follow the vocabulary of ``phase`` (default: the first phase that evaluates the source,
    else the first that trains on it, else the source alone). Data sources read what the plan
    evaluates on (their ``heldout`` split where the plan also trains on the same data, else the
    whole source; restarting it if it is shorter than the batches need); procedural ones
    generate examples named ``f"{source}/heldout"`` under the plan's seed at the end of every
    ramp. ``loss`` defaults to the source's own.
    """

    def __init__(
        self,
        plan: Plan,
        source: str,
        batches: int,
        context: int,
        batch: int,
        *,
        phase: Optional[str] = None,
        rank: int = 0,
        world: int = 1,
        cache_dir: Optional[str] = None,
        tokenizer: Optional[Tokenizer] = None,
        loss: Optional[LossMode] = None,
        store: Optional[str] = None,
    ):
        if source not in plan.sources:
            raise KeyError(f"no source named {source!r} in the plan")
        self.plan, self.source, self.batches, self.store = plan, source, batches, store
        self.context, self.batch, self.rank, self.world = context, batch, rank, world
        self.rows = shard(batch, rank, world)
        self.loss = loss or plan.sources[source].default_loss
        self.layout = default_layout([plan.sources[source]])
        self.vocab = PhaseVocab.for_phase(
            plan, _eval_phase(plan, source, phase), tokenizer=tokenizer, cache_dir=cache_dir
        )

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Batch]:
        reader = unit_reader(
            self.plan,
            self.source,
            vocab=self.vocab,
            key=f"{self.source}/heldout",
            seed=self.plan.seed,
            context=self.context,
            loss=self.loss,
            role="heldout",
            progress=final_progress,
            store=self.store,
        )
        packed = Packed(
            Interleave([reader], Shares([1.0], [1.0], total=1)),
            (self.source,),
            batch=self.batch,
            context=self.context,
            rank=self.rank,
            world=self.world,
            layout=self.layout,
            pad_id=self.vocab.pad_id,
            steps=self.batches,
        )
        for _ in range(self.batches):
            yield packed.next_batch()


def _eval_phase(plan: Plan, source: str, phase: Optional[str]) -> Phase:
    if phase is not None:
        return plan.phase(phase)
    for p in plan.phases:
        if any(e.source == source for e in p.eval):
            return p
    for p in plan.phases:
        if source in p.mix:
            return p
    first = plan.phases[0]
    return first.model_copy(update={"mix": {source: 1.0}, "mix_ramp": None, "eval": ()})
