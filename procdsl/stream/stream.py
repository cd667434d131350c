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
from typing import Any, Optional

import numpy as np

from procdsl.data import Tokenizer
from procdsl.data.split import Role, plan_split
from procdsl.plan.model import Phase, Plan, default_layout
from procdsl.plan.sources import LossMode
from procdsl.stream.batch import Batch
from procdsl.stream.interleave import Interleave, Piece
from procdsl.stream.pack import Layout, fill_rows, layout_rows
from procdsl.stream.progress import expected_real_tokens, final_progress, phase_progress, training_key
from procdsl.stream.shares import Shares
from procdsl.stream.units import Cursor, ProceduralUnits, StoreUnits, TextUnits, UnitReader, Units, row_length
from procdsl.stream.vocab import PhaseVocab

STATE_VERSION = 2   # 2: rows of whole units (layouts)

#: tokens of units pulled from the interleave at a time (at least a step's rows): one merge and
#: one queue update serve several steps; what is pulled but not laid out is rewound in the state
PULL_TOKENS = 1 << 19

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
        raise ValueError(f"the global batch of {batch} rows cannot be split over {world} ranks: "
                         f"the world size must divide the batch (try {listed} ranks, or change the batch)")
    return batch // world


def unit_reader(plan: Plan, name: str, *, vocab: PhaseVocab, key: str, seed: int, context: int,
                loss: LossMode, role: Role, phase: Optional[str] = None, progress=None,
                store: Optional[str] = None) -> UnitReader:
    """The reader of source ``name``: procedural (examples named ``key``), or data read for
    ``role`` (``train``/``heldout``: the split :func:`procdsl.data.split.plan_split` gives) —
    from the token store under ``store`` when given (:class:`StoreUnits`; a missing or stale
    store is a :class:`procdsl.store.StoreError` naming what to run), else by reading and
    tokenizing the files as it goes (:class:`TextUnits`)."""
    source = plan.sources[name]
    if source.procedural:
        return ProceduralUnits(source, seed=seed, key=key, context=context,
                               offset=vocab.offset(name), loss=loss, progress=progress)
    if store is not None:
        from procdsl.store import TokenStore

        opened = TokenStore.open(plan, name, role, phase=phase, cache_dir=store or None,
                                 tokenizer=vocab.tokenizer)
        return StoreUnits(opened, context=context, loss=loss, name=name)
    return TextUnits(source, vocab.text_tokenizer, split=plan_split(plan, name, role), seed=seed,
                     context=context, loss=loss, name=name)


class _Queue:
    """Units pulled from the interleave and not yet laid out, in stream order."""

    def __init__(self) -> None:
        self.source = np.zeros(0, np.int64)
        self.length = np.zeros(0, np.int64)
        self.block = np.zeros(0, np.int64)   # index into ``blocks``
        self.unit = np.zeros(0, np.int64)    # unit index within its block
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
        new = [np.concatenate([np.full(len(p.index), p.source) for p in pieces]),
               np.concatenate([p.lengths for p in pieces]),
               np.concatenate([np.full(len(p.index), ids[id(p.units)]) for p in pieces]),
               np.concatenate([p.index for p in pieces])]
        self.source, self.length, self.block, self.unit = (
            np.concatenate([old, part[order]]) for old, part in
            zip((self.source, self.length, self.block, self.unit), new))

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
        return int(self.length[self.head:].sum())

    def unread(self, sources: int) -> tuple[dict[int, Cursor], np.ndarray]:
        """Per source, the cursor of its first unit not laid out yet (sources that have one),
        and the tokens of all of them (for a rewound state): O(pending) in numpy."""
        source = self.source[self.head:]
        tokens = np.bincount(source, weights=self.length[self.head:], minlength=sources).astype(np.int64)
        firsts = {}
        for k in np.unique(source):
            i = self.head + int(np.argmax(source == k))
            firsts[int(k)] = self.blocks[int(self.block[i])].cursor(int(self.unit[i]))
        return firsts, tokens

    def unit_arrays(self, first: int, stop: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Tokens and targets of queued units ``first … stop - 1``, asked of each block in
        runs of consecutive units (a lazy block makes just those)."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        blocks, units = self.block[first:stop], self.unit[first:stop]
        i = 0
        while i < len(blocks):
            j = i + 1
            while j < len(blocks) and blocks[j] == blocks[i] and units[j] == units[j - 1] + 1:
                j += 1
            out += self.blocks[int(blocks[i])].span(int(units[i]), int(units[j - 1]) + 1)
            i = j
        return out


class Packed:
    """What both streams share: the interleave laid out into global batches of ``batch`` rows
    of whole units (``layout``: ``padded`` or ``packed``), this rank's rows materialised."""

    def __init__(self, interleave: Interleave, sources: tuple[str, ...], *, batch: int,
                 context: int, rank: int, world: int, layout: str = "packed", pad_id: int = 0,
                 steps: Optional[int] = None):
        if len(sources) > 127:
            raise ValueError(f"{len(sources)} sources in one stream; at most 127 fit the int8 source ids")
        self.interleave, self.sources = interleave, sources
        self.batch, self.context = batch, context
        self.rank, self.world = rank, world
        self.rows = shard(batch, rank, world)
        self.layout, self.pad_id = layout, pad_id
        self.steps = steps          # the batches the stream is read for (bounds the read-ahead)
        self.row_len = row_length(context)
        self.step = 0
        self._queue = _Queue()
        self._ahead: deque[Layout] = deque()     # layouts of the next steps, from the queue's head

    def next_batch(self) -> Batch:
        """The next global batch, this rank's rows of it."""
        queue = self._queue
        if not self._ahead:
            self._lay_out_ahead()
        layout = self._ahead.popleft()
        head, stop = queue.head, queue.head + layout.used
        mine = self._mine(layout)
        arrays = queue.unit_arrays(head + int(mine[0]), head + int(mine[-1]) + 1) if len(mine) else []
        first_row = self.rank * self.rows
        units = [(int(queue.source[head + i]), tokens, targets, int(layout.row[i]) - first_row,
                  int(layout.col[i])) for i, (tokens, targets) in zip(mine, arrays)]
        rows = fill_rows(units, rows=self.rows, row_len=self.row_len, pad_id=self.pad_id)
        count = len(self.sources)
        tokens = np.bincount(queue.source[head:stop], weights=queue.length[head:stop], minlength=count)
        targets = np.bincount(rows.source[rows.targets], minlength=count)     # this rank's rows
        queue.head = stop
        batch = Batch(self.step, rows.tokens, rows.targets, rows.source, rows.starts,
                      self.sources, tuple(int(t) for t in tokens), tuple(int(t) for t in targets),
                      positions=rows.positions, document=rows.document,
                      pad_tokens=self.batch * self.row_len - int(tokens.sum()))
        self.step += 1
        return batch

    def _mine(self, layout: Layout) -> np.ndarray:
        """Indices (from the layout's first unit) of the units in this rank's rows."""
        first_row = self.rank * self.rows
        return np.flatnonzero((layout.row >= first_row) & (layout.row < first_row + self.rows))

    def _lay_out_ahead(self) -> None:
        """Lay out the next steps — as many as give this rank ``AHEAD_ROWS`` rows, within
        ``AHEAD_TOKENS`` and the steps left — and have each procedural source make this rank's
        examples of all of them at once. A layout depends only on the queued units' lengths,
        so laying out ahead changes no batch, and the state (units not yet in a delivered
        batch) is the same as without it."""
        queue, packed = self._queue, self.layout == "packed"
        step_tokens = self.batch * self.row_len
        left = self.steps - self.step if self.steps is not None else 1
        steps = max(1, min(AHEAD_ROWS // self.rows, AHEAD_TOKENS // step_tokens, left))
        start = queue.head
        while len(self._ahead) < steps:
            # enough units that the layout settles at once: more tokens than the rows hold
            # (packed), a unit a row (padded)
            enough = (int(queue.length[start:].sum()) > step_tokens if packed
                      else len(queue.length) - start >= self.batch)
            layout = layout_rows(queue.length, start=start, rows=self.batch, row_len=self.row_len,
                                 packed=packed) if enough else None
            if layout is None:
                ahead = start - queue.head
                queue.extend(self.interleave.pull(self._pull_size(len(self._ahead))))
                start = queue.head + ahead       # (extending renumbers the queue)
                continue
            self._ahead.append(layout)
            start += layout.used
        self._prefetch()

    def _prefetch(self) -> None:
        """This rank's units in the steps laid out ahead, made per source in one call."""
        queue, start = self._queue, self._queue.head
        wanted: dict[int, tuple[object, list[np.ndarray]]] = {}
        for layout in self._ahead:
            mine = start + self._mine(layout)
            for block in np.unique(queue.block[mine]):
                units = queue.blocks[int(block)]
                reader = getattr(units, "reader", None)
                if reader is not None:
                    items = units.items[queue.unit[mine[queue.block[mine] == block]]]
                    wanted.setdefault(id(reader), (reader, []))[1].append(items)
            start += layout.used
        for reader, items in wanted.values():
            reader.prefetch(np.concatenate(items))

    def _pull_size(self, ahead: int = 0) -> int:
        """Tokens to pull: a step's rows at least, up to ``PULL_TOKENS`` but never past what the
        remaining steps (after ``ahead`` laid out already) can hold (a token store holds what
        the plan can read, plus a step)."""
        step_tokens = self.batch * self.row_len
        remaining = ((self.steps - self.step - ahead) * step_tokens if self.steps is not None
                     else PULL_TOKENS)
        return max(step_tokens, min(PULL_TOKENS, remaining))

    def interleave_state(self) -> dict[str, Any]:
        """The interleave's state at the first unit not yet in a batch."""
        return self.interleave.rewound(*self._queue.unread(len(self.sources)))

    def load_interleave_state(self, state: dict[str, Any]) -> None:
        self.interleave.load_state_dict(state)
        self._queue = _Queue()
        self._ahead.clear()


class PhaseStream(Packed):
    """The training batches of one phase of ``plan`` for rank ``rank`` of ``world``.

    Iterating yields the remaining batches of the phase (up to ``phase.steps``);
    :meth:`next_batch` goes on past the end (at the end shares) if asked. ``totals`` holds the
    labels and target labels each source has delivered so far (global, from step 0).
    """

    def __init__(self, plan: Plan, phase_name: str, rank: int = 0, world: int = 1,
                 cache_dir: Optional[str] = None, *, tokenizer: Optional[Tokenizer] = None,
                 store: Optional[str] = None):
        phase = plan.phase(phase_name)
        self.plan, self.phase, self.store = plan, phase, store
        self.vocab = PhaseVocab.for_phase(plan, phase, tokenizer=tokenizer, cache_dir=cache_dir)
        sources = tuple(phase.mix)
        readers = [self._reader(name) for name in sources]
        total = expected_real_tokens(phase, plan.sources) if phase.mix_ramp else None
        super().__init__(Interleave(readers, Shares.for_phase(phase, total)), sources, batch=phase.batch,
                         context=phase.context, rank=rank, world=world, layout=phase.layout,
                         pad_id=self.vocab.pad_id, steps=phase.steps)
        self.totals = {"tokens": [0] * len(sources), "targets": [0] * len(sources)}
        self.pad_total = 0

    def _reader(self, name: str) -> UnitReader:
        phase, source = self.phase, self.plan.sources[name]
        progress = phase_progress(phase, name, source, self.plan.sources) if source.procedural else None
        return unit_reader(self.plan, name, vocab=self.vocab, key=training_key(name, phase),
                           seed=phase.seed, context=phase.context, phase=phase.name,
                           loss=phase.loss or source.default_loss, role="train", progress=progress,
                           store=self.store)

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
        return {"version": STATE_VERSION, "plan": self.plan.hash, "phase": self.phase.name,
                "sources": list(self.sources), "step": self.step,
                "totals": {key: list(value) for key, value in self.totals.items()},
                "pad": self.pad_total, **self.interleave_state()}

    def load_state_dict(self, state: dict[str, Any], *, strict: bool = True) -> None:
        """Continue from ``state``. ``strict=False`` accepts a state written under another plan
        hash (``--force-replan``) as long as the phase and its sources are the same."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"stream state version {state.get('version')} is not {STATE_VERSION}")
        if state["phase"] != self.phase.name or list(state["sources"]) != list(self.sources):
            raise ValueError(f"stream state is for phase {state['phase']!r} with sources "
                             f"{state['sources']}, not phase {self.phase.name!r} with {list(self.sources)}")
        if strict and state["plan"] != self.plan.hash:
            raise ValueError("stream state was written for another plan (hash differs); "
                             "pass strict=False to continue anyway")
        self.load_interleave_state(state)
        self.pad_total = int(state.get("pad", 0))
        self.step = int(state["step"])
        self.totals = {key: [int(v) for v in state["totals"][key]] for key in ("tokens", "targets")}


class EvalStream:
    """``batches`` held-out batches of ``source`` (``batch`` rows of ``context``), always the same.

    Ids follow the vocabulary of ``phase`` (default: the first phase that evaluates the source,
    else the first that trains on it, else the source alone). Data sources read what the plan
    evaluates on (their ``heldout`` split where the plan also trains on the same data, else the
    whole source; restarting it if it is shorter than the batches need); procedural ones
    generate examples named ``f"{source}/heldout"`` under the plan's seed at the end of every
    ramp. ``loss`` defaults to the source's own.
    """

    def __init__(self, plan: Plan, source: str, batches: int, context: int, batch: int, *,
                 phase: Optional[str] = None, rank: int = 0, world: int = 1,
                 cache_dir: Optional[str] = None, tokenizer: Optional[Tokenizer] = None,
                 loss: Optional[LossMode] = None, store: Optional[str] = None):
        if source not in plan.sources:
            raise KeyError(f"no source named {source!r} in the plan")
        self.plan, self.source, self.batches, self.store = plan, source, batches, store
        self.context, self.batch, self.rank, self.world = context, batch, rank, world
        self.rows = shard(batch, rank, world)
        self.loss = loss or plan.sources[source].default_loss
        self.layout = default_layout([plan.sources[source]])
        self.vocab = PhaseVocab.for_phase(plan, _eval_phase(plan, source, phase),
                                          tokenizer=tokenizer, cache_dir=cache_dir)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Batch]:
        reader = unit_reader(self.plan, self.source, vocab=self.vocab, key=f"{self.source}/heldout",
                             seed=self.plan.seed, context=self.context, loss=self.loss,
                             role="heldout", progress=final_progress, store=self.store)
        packed = Packed(Interleave([reader], Shares([1.0], [1.0], total=1)), (self.source,),
                        batch=self.batch, context=self.context, rank=self.rank, world=self.world,
                        layout=self.layout, pad_id=self.vocab.pad_id, steps=self.batches)
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
