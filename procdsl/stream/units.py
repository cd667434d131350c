"""Units: what the mixture interleaves — whole examples, or pieces of documents, of one source.

A unit is one procedural example, or one piece of a tokenized document (EOS appended), in the
phase's global ids (:mod:`procdsl.stream.vocab`), with its targets: ``targets[t]`` is True when
token ``t`` is a training target, predicted from token ``t - 1``. A unit fits one row of
``context + 1`` tokens (:func:`row_length`): documents longer than a row are cut into pieces of
a row (the last one shorter); a procedural example is never cut (check E308 makes every example
fit a row; an example that does not is an error here, not a silent split).

Targets, by the phase's ``loss`` (else the source's ``default_loss``):

* ``full``: every token of the unit but its first;
* ``output_only`` / ``answer_only``: procedural sources keep the generator's mask; documents
  with an answer (``dm_math``) mark the answer and its EOS; documents without one, all tokens;
* whatever the mode, the first token of a unit is never a target: the token before it in the
  packed stream belongs to another unit (or, for a piece, to a row that may be far away).

Each unit has a :class:`Cursor` ``(epoch, item, chunk)``: the example index or document index
within the split, and the piece of it. A reader's ``read(cursor)`` returns a block of
consecutive units from that cursor on, so a stream resumes from three integers per source.

>>> from procdsl.plan.base import Range
>>> from procdsl.plan.sources import TaskSource
>>> reader = ProceduralUnits(TaskSource(rule=("reverse",), length=Range(low=2, high=4), vocab=10),
...                          seed=1, key="rev/p", context=8, offset=100, loss="output_only")
>>> units = reader.read(Cursor(0, 0, 0))
>>> for j in range(3): print(units.cursor(j), *[t.tolist() for t in units[j]])
Cursor(epoch=0, item=0, chunk=0) [102, 107, 110, 107, 102] [False, False, False, True, True]
Cursor(epoch=0, item=1, chunk=0) [105, 106, 108, 110, 108, 106, 105] [False, False, False, False, True, True, True]
Cursor(epoch=0, item=2, chunk=0) [105, 107, 105, 102, 110, 102, 105, 107, 105] [False, False, False, False, False, True, True, True, True]
>>> reader.read(Cursor(0, 2, 0))[0][0].tolist()                    # resume at an example
[105, 107, 105, 102, 110, 102, 105, 107, 105]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, Optional, Protocol

import numpy as np

from procdsl.data import Document, Tokenizer, encode_document, iter_documents
from procdsl.data.split import Split
from procdsl.generators import BLOCK, generate, generate_at, generate_lengths
from procdsl.plan.sources import LossMode, SourceBase
from procdsl.stream.progress import Progress

#: characters of documents a text reader gathers per block (at least one whole document)
TEXT_BLOCK_CHARS = 1 << 16


def row_length(context: int) -> int:
    """Tokens in a row: ``context`` inputs, and the last token only a label."""
    return context + 1


class Cursor(NamedTuple):
    """Where a unit sits in its source: ``epoch``, ``item`` (example / document), ``chunk``."""

    epoch: int
    item: int
    chunk: int


@dataclass(frozen=True)
class Units:
    """Consecutive units of one source, flattened: unit ``j`` is ``tokens[offsets[j]:offsets[j+1]]``.

    ``items[j]``/``chunks[j]`` (and ``epoch``) form unit ``j``'s cursor; ``end`` is the cursor
    of the unit after the last one.
    """

    tokens: np.ndarray  # int32, global ids
    targets: np.ndarray  # bool
    offsets: np.ndarray  # int64, (n + 1,)
    items: np.ndarray  # int64, (n,)
    chunks: np.ndarray  # int64, (n,)
    epoch: int
    end: Cursor

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[j], self.offsets[j + 1]
        return self.tokens[a:b], self.targets[a:b]

    def cursor(self, j: int) -> Cursor:
        """Cursor of unit ``j`` (``end`` for ``j == len(self)``)."""
        if j == len(self):
            return self.end
        return Cursor(self.epoch, int(self.items[j]), int(self.chunks[j]))

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def run(self, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, targets)`` of units ``first … stop - 1`` concatenated (what a rank's rows copy)."""
        a, b = self.offsets[first], self.offsets[stop]
        return self.tokens[a:b], self.targets[a:b]


@dataclass(frozen=True, eq=False)
class LazyUnits(Units):
    """Units whose lengths are known before their tokens: ``tokens``/``targets`` are empty and
    :meth:`run` asks ``make(first, stop)`` for the tokens and targets of units ``first …
    stop - 1`` only (the layout of a global batch needs every unit's length; a rank needs only
    the tokens of its own rows). A procedural source makes just those examples (or hands over
    the ones its ``reader`` made ahead, :meth:`ProceduralUnits.prefetch`); a token store slices
    its memory map.
    """

    make: Callable[[int, int], tuple[np.ndarray, np.ndarray]]
    reader: Optional[ProceduralUnits] = None  # who can make units ahead (``prefetch``)

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        return self.make(j, j + 1)

    def run(self, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return self.make(first, stop)


class UnitReader(Protocol):
    """A source of units: ``read(cursor)`` gives a non-empty block of units from ``cursor`` on."""

    def read(self, cursor: Cursor) -> Units: ...


def piece_starts(item_offsets: np.ndarray, *, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each unit starts when items (``item_offsets``) are cut into pieces of at most
    ``context`` tokens: ``(starts, items, chunks)`` — only offsets, no tokens.

    >>> [a.tolist() for a in piece_starts(np.array([0, 2, 7]), context=3)]
    [[0, 2, 5], [0, 1, 1], [0, 0, 1]]
    """
    lengths = np.diff(item_offsets)
    if lengths.max(initial=0) <= context:
        return item_offsets[:-1], np.arange(len(lengths)), np.zeros(len(lengths), np.int64)
    pieces = -(-lengths // context)
    items = np.repeat(np.arange(len(lengths)), pieces)
    chunks = np.arange(len(items)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return item_offsets[items] + chunks * context, items, chunks


def cut_units(
    tokens: np.ndarray,
    targets: np.ndarray,
    item_offsets: np.ndarray,
    *,
    context: int,
    first_item: int,
    epoch: int,
    end: Cursor,
    skip: int = 0,
) -> Units:
    """Cut items (``item_offsets``) into units of at most ``context`` tokens.

    Marks every unit's first token as no target and drops the first ``skip`` units (the pieces
    of the first item before a cursor's ``chunk``).

    >>> u = cut_units(np.arange(7, dtype=np.int32), np.ones(7, bool), np.array([0, 2, 7]),
    ...               context=3, first_item=5, epoch=0, end=Cursor(0, 7, 0))
    >>> u.offsets.tolist(), u.items.tolist(), u.chunks.tolist(), u.targets.astype(int).tolist()
    ([0, 2, 5, 7], [5, 6, 6], [0, 0, 1], [0, 1, 0, 1, 1, 0, 1])
    """
    starts, items, chunks = piece_starts(item_offsets, context=context)
    targets = targets.copy()
    targets[starts] = False
    base = int(starts[skip]) if skip < len(starts) else len(tokens)
    offsets = np.append(starts[skip:], len(tokens)) - base
    return Units(
        tokens[base:],
        targets[base:],
        offsets.astype(np.int64),
        items[skip:] + first_item,
        chunks[skip:].astype(np.int64),
        epoch,
        end,
    )


class ProceduralUnits:
    """Units of a procedural source: its examples, ids shifted by ``offset``.

    ``key`` names the examples (``f"{source}/{phase}"`` for training, ``f"{source}/heldout"``
    for evaluation), so two phases, or training and evaluation, never share examples.
    ``read`` gives :class:`LazyUnits` whenever the examples' lengths are known without making
    them (fixed by the parameters, or the generator's lengths path): only the examples a rank's
    rows hold are made. A family without a lengths path is made whole to learn its lengths.
    """

    def __init__(
        self,
        source: SourceBase,
        *,
        seed: int,
        key: str,
        context: int,
        offset: int,
        loss: LossMode,
        progress: Optional[Progress] = None,
    ):
        self.source, self.seed, self.key, self.context = source, seed, key, context
        self.offset, self.full, self.progress = offset, loss == "full", progress
        self._made: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # made ahead, not read yet
        self._lazy_reads = False  # whether read gives LazyUnits (lengths known before examples)

    def read(self, cursor: Cursor) -> Units:
        start = cursor.item
        count = BLOCK - start % BLOCK  # up to the end of the generator's block
        lengths = self._lengths(start, count) if cursor.chunk == 0 else None
        if lengths is not None:
            self._fits(int(lengths.max(initial=0)))
            self._lazy_reads = True
            return self._lazy(start, lengths)
        ex = generate(
            self.source,
            seed=self.seed,
            name=self.key,
            start=start,
            count=count,
            context=self.context,
            progress=self.progress,
        )
        tokens = ex.tokens + np.int32(self.offset)
        targets = np.ones(len(tokens), bool) if self.full else ex.loss_mask
        self._fits(int(np.diff(ex.offsets).max(initial=0)))
        return cut_units(
            tokens,
            targets,
            ex.offsets,
            context=row_length(self.context),
            first_item=start,
            epoch=0,
            end=Cursor(0, start + count, 0),
            skip=cursor.chunk,
        )

    def _fits(self, longest: int) -> None:
        """A clear error when an example does not fit a row (check E308 says so before a run)."""
        if longest > row_length(self.context):
            raise ValueError(
                f"an example of {self.key!r} has {longest} tokens, more than a row of "
                f"context {self.context} holds ({row_length(self.context)}): raise the "
                f"context to {longest - 1} or shorten the examples"
            )

    def _lengths(self, start: int, count: int) -> Optional[np.ndarray]:
        """Tokens of examples ``[start, start + count)`` without making them: every example's
        when the parameters fix it, else the generator's lengths path (the parameters each
        example draws); None when the family has none (then the examples are made to learn them)."""
        low, high = self.source.min_tokens(self.context), self.source.max_tokens(self.context)
        if low == high:
            return np.full(count, low, np.int64)
        return generate_lengths(
            self.source,
            seed=self.seed,
            name=self.key,
            start=start,
            count=count,
            context=self.context,
            progress=self.progress,
        )

    def prefetch(self, items: np.ndarray) -> None:
        """Make examples ``items`` (indices, any order) in one vectorised call and keep each
        until it is read: a rank that lays out many steps ahead asks here for its own examples
        of all of them at once (:class:`procdsl.stream.stream.Packed`), so a few rows a step
        still cost what a wide batch costs per row. Only sources whose lengths are known before
        their examples are made (:meth:`read` gives :class:`LazyUnits`)."""
        if not self._lazy_reads:
            return
        missing = np.setdiff1d(
            np.asarray(items, np.int64), np.fromiter(self._made, np.int64, len(self._made))
        )
        if not len(missing):
            return
        ex = generate_at(
            self.source,
            seed=self.seed,
            name=self.key,
            indices=missing,
            context=self.context,
            progress=self.progress,
        )
        tokens = ex.tokens + np.int32(self.offset)
        targets = np.ones(len(ex.tokens), bool) if self.full else ex.loss_mask.copy()
        targets[ex.offsets[:-1]] = False
        bounds = ex.offsets.tolist()
        for j, item in enumerate(missing.tolist()):
            a, b = bounds[j], bounds[j + 1]
            self._made[item] = (tokens[a:b], targets[a:b])

    def _lazy(self, start: int, lengths: np.ndarray) -> LazyUnits:
        """Units ``start …`` of the given lengths, each example made when it is read (or
        handed over from :meth:`prefetch`), and checked to have the length promised."""
        count = len(lengths)

        def make(first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            items = range(start + first, start + stop)
            self.prefetch(np.array([i for i in items if i not in self._made], np.int64))
            made = [self._made.pop(i) for i in items]  # each unit is read once
            got = np.array([len(t) for t, _ in made], np.int64)
            wrong = np.flatnonzero(got != lengths[first:stop])
            if len(wrong):
                j = int(wrong[0])
                raise ValueError(
                    f"example {start + first + j} of {self.key!r} has {got[j]} tokens, not "
                    f"the {lengths[first + j]} its parameters promised (the generator's "
                    f"lengths path disagrees with its examples)"
                )
            return (
                np.concatenate([t for t, _ in made]) if made else np.zeros(0, np.int32),
                np.concatenate([m for _, m in made]) if made else np.zeros(0, bool),
            )

        offsets = np.zeros(count + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return LazyUnits(
            np.zeros(0, np.int32),
            np.zeros(0, bool),
            offsets,
            np.arange(start, start + count, dtype=np.int64),
            np.zeros(count, np.int64),
            0,
            Cursor(0, start + count, 0),
            make=make,
            reader=self,
        )


class TextUnits:
    """Units of a data source: documents of ``split``, tokenized, EOS appended, ids unshifted.

    Finite sources start a new epoch (the same documents in the same order) when a pass ends;
    ``dm_math`` never ends. Reading on from where the previous block ended reuses the open
    document iterator; any other cursor reopens the split and skips to its document.
    """

    def __init__(
        self,
        source: SourceBase,
        tokenizer: Tokenizer,
        *,
        split: Split,
        seed: int,
        context: int,
        loss: LossMode,
        name: str = "",
    ):
        self.source, self.tokenizer, self.split, self.seed = source, tokenizer, split, seed
        self.context, self.full, self.name = context, loss == "full", name or source.kind
        self._open: Optional[tuple[int, int, Iterator[Document]]] = None  # (epoch, next doc, iterator)

    def _documents(self, epoch: int, item: int) -> Iterator[Document]:
        if self._open is None or self._open[:2] != (epoch, item):
            self._open = (epoch, item, iter_documents(self.source, self.split, seed=self.seed, start=item))
        return self._open[2]

    def read(self, cursor: Cursor) -> Units:
        epoch, item = cursor.epoch, cursor.item
        documents = self._documents(epoch, item)
        docs, size, ended = [], 0, False
        while size < TEXT_BLOCK_CHARS:
            doc = next(documents, None)
            if doc is None:
                ended = True
                break
            docs.append(doc)
            size += len(doc.text)
        if not docs:
            if item == 0:
                raise ValueError(f"data source {self.name!r} has no documents in its {self.split!r} split")
            return self.read(Cursor(epoch + 1, 0, 0))
        end = Cursor(epoch + 1, 0, 0) if ended else Cursor(epoch, item + len(docs), 0)
        self._open = None if ended else (end.epoch, end.item, documents)
        encoded = self._encode(docs)
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(ids) for ids, _ in encoded], out=offsets[1:])
        return cut_units(
            np.concatenate([ids for ids, _ in encoded]).astype(np.int32, copy=False),
            np.concatenate([mask for _, mask in encoded]),
            offsets,
            context=row_length(self.context),
            first_item=item,
            epoch=epoch,
            end=end,
            skip=cursor.chunk,
        )

    def _encode(self, docs: list[Document]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(ids + EOS, targets)`` per document; plain texts go through ``encode_batch``."""
        eos = np.array([self.tokenizer.eos_id], np.int32)
        plain = iter(self.tokenizer.encode_batch([d.text for d in docs if d.answer is None]))
        encoded = []
        for doc in docs:
            if doc.answer is None:
                ids = np.concatenate([next(plain), eos])
                encoded.append((ids, np.ones(len(ids), bool)))
            else:
                ids, answer = encode_document(self.tokenizer, doc)
                encoded.append((ids, np.ones(len(ids), bool) if self.full else answer))
        return encoded


#: tokens of documents a store reader gathers per block (at least one whole document)
STORE_BLOCK_TOKENS = 1 << 20


class StoreUnits:
    """Units of a data source read from a prepared token store (``procdsl.store.TokenStore``).

    The same units as :class:`TextUnits` over the store's split — the store holds each
    document's ids and EOS, and for sources with answers their targets — but read from memory
    maps: any cursor costs the same, however far into the source it is. An exhausted store (the
    whole split) starts a new epoch at its end; reading past the end of a bounded one raises the
    store's error (the plan reads more than was prepared).
    """

    def __init__(self, store, *, context: int, loss: LossMode, name: str = ""):
        self.store, self.context, self.full = store, context, loss == "full"
        self.name = name or store.label

    def read(self, cursor: Cursor) -> Units:
        epoch, item = cursor.epoch, cursor.item
        store = self.store
        if item >= store.documents and store.exhausted:
            if item == 0:
                raise ValueError(f"data source {self.name!r} has no documents in its {store.split!r} split")
            return self.read(Cursor(epoch + 1, 0, 0))
        stop = store.block_end(item, STORE_BLOCK_TOKENS)
        ended = store.exhausted and stop == store.documents
        end = Cursor(epoch + 1, 0, 0) if ended else Cursor(epoch, stop, 0)
        item_offsets = store.offsets(item, stop)
        starts, items, chunks = piece_starts(item_offsets, context=row_length(self.context))
        skip = cursor.chunk
        offsets = np.append(starts[skip:], item_offsets[-1]).astype(np.int64)
        unit_starts = offsets[:-1]

        masks: list = []

        def make(first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
            # only the tokens of units first … last - 1: slices of the memory map
            a, b = int(offsets[first]), int(offsets[last])
            tokens = np.asarray(store.tokens(item, stop)[a:b], np.int32)
            if not masks:
                masks.append(None if self.full else store.masks(item, stop))
            targets = np.ones(b - a, bool) if masks[0] is None else np.array(masks[0][a:b], bool)
            targets[unit_starts[first:last] - a] = False
            return tokens, targets

        return LazyUnits(
            np.zeros(0, np.int32),
            np.zeros(0, bool),
            offsets - offsets[0],
            items[skip:] + item,
            chunks[skip:].astype(np.int64),
            epoch,
            end,
            make=make,
        )
