"""``procdsl prepare``: tokenize every data source a plan reads into token stores, once.

For each store a plan needs (``procdsl.store.needs``), under the cache root:

1. under the store's lock: a complete store that covers the plan is left alone (a re-run is a
   no-op); a store whose source files or tokenizer changed is emptied and begun again;
2. shard by shard (``procdsl.store.shards``), each shard a *part* under a lock of its own,
   written in committed chunks (``procdsl.store.writer``), tokenized on ``workers`` processes:
   a killed preparer's next run resumes every part from its last commit;
3. under the store's lock again: ``manifest.json``, written last and atomically, lists the parts
   that cover the plan's bound (or the whole split, if it is smaller).

Many processes — ``workers`` aside, the nodes of a job, told apart by ``RANK``/``WORLD_SIZE``
(or ``SLURM_PROCID``/``SLURM_NTASKS``) — may prepare the same plan at once on a shared file
system: each takes the free parts, its own first (shard ``i`` belongs to node ``i mod W``), and
waits for parts others hold, so every part is written once and a dead holder's part is taken
over. A part is filled to the end of its shard unless every part before it is complete; then it
stops at the bound, so a single preparer writes only what the plan needs.

The worked example is in ``procdsl.store``'s docstring.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, TextIO

import numpy as np

from procdsl.data.errors import DataError
from procdsl.store.encode import Encoder, chunks
from procdsl.store.errors import PREPARE_HINT, StoreError
from procdsl.store.identity import FORMAT, cache_root, content_fingerprint, store_folder, tokenizer_identity
from procdsl.store.lock import LOCK, hold, try_hold
from procdsl.store.manifest import MANIFEST, PROGRESS, SOURCE, read_json, write_json
from procdsl.store.needs import Need, plan_needs
from procdsl.store.progress import ProgressLine
from procdsl.store.reader import TokenStore
from procdsl.store.shards import list_shards, shard_documents
from procdsl.store.writer import PartWriter

#: seconds between looks at parts other processes hold
POLL = 0.5


@dataclass(frozen=True)
class Prepared:
    """What ``prepare_plan`` did for one store."""

    label: str
    folder: str
    documents: int
    tokens: int
    exhausted: bool
    written: int  # tokens written by this call (0: the store was up to date)
    seconds: float

    def describe(self) -> str:
        what = "the whole split" if self.exhausted else "the plan's bound"
        done = f"prepared {self.written:,} tokens in {self.seconds:.1f}s" if self.written else "up to date"
        return (
            f"{self.label}: {self.documents:,} documents, {self.tokens:,} tokens ({what}); "
            f"{done} → {self.folder}"
        )


def prepare_plan(
    plan: Any,
    *,
    cache_dir: Optional[str] = None,
    workers: int = 1,
    rank: Optional[int] = None,
    world: Optional[int] = None,
    progress: bool = True,
    stream: Optional[TextIO] = None,
    hint: str = PREPARE_HINT,
) -> list[Prepared]:
    """Prepare every store ``plan`` reads; StoreError (a DataError) names what failed."""
    needs = plan_needs(plan)
    if not needs:
        return []
    root = cache_dir or cache_root()
    from procdsl.data import build_tokenizer

    tokenizer = build_tokenizer(plan.tokenizer, sources=plan.sources, seed=plan.seed)
    node, nodes = node_rank(os.environ) if rank is None or world is None else (rank, world)
    with Encoder(tokenizer, workers=workers) as encoder:
        return [
            _Preparer(need, tokenizer, root, encoder, node, nodes, hint, stream if progress else None).run()
            for need in needs
        ]


def prepare_plans(
    plans: Sequence[Any], *, cache_dir: Optional[str] = None, workers: int = 1, hint: str = PREPARE_HINT
) -> Iterator[str]:
    """``procdsl prepare``: :func:`prepare_plan` for each of a file's plans (a sweep's variants),
    yielding a line per store prepared or found complete, or that a plan reads no data."""
    for plan in plans:
        done = prepare_plan(plan, cache_dir=cache_dir, workers=workers, hint=hint)
        for store in done:
            yield store.describe()
        if not done:
            yield f"{plan.name}: reads no data source; nothing to prepare"


def node_rank(environ: Mapping[str, str]) -> tuple[int, int]:
    """``(rank, world)`` of this preparer among a job's: torchrun's, else SLURM's, else (0, 1).

    >>> node_rank({"RANK": "3", "WORLD_SIZE": "8"}), node_rank({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"})
    ((3, 8), (1, 2))
    """
    for rank, world in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if environ.get(rank) and environ.get(world):
            return int(environ[rank]), max(int(environ[world]), 1)
    return 0, 1


class _Preparer:
    """Prepares one store (see the module docstring)."""

    def __init__(
        self,
        need: Need,
        tokenizer: Any,
        root: str,
        encoder: Encoder,
        rank: int,
        world: int,
        hint: str,
        stream: Optional[TextIO],
    ):
        self.need, self.root, self.encoder, self.hint = need, root, encoder, hint
        self.rank, self.world = rank % world, world
        self.label = need.label
        self.tokenizer_id = tokenizer_identity(tokenizer)
        self.folder = store_folder(root, need, self.tokenizer_id)
        self.dtype = "uint16" if self.tokenizer_id["vocab_size"] <= 1 << 16 else "uint32"
        self.stream = stream
        self.written = 0

    def run(self) -> Prepared:
        started = time.monotonic()
        self.content = self._data(self._content)
        with hold(self.folder):
            store = self._complete()
            if store is not None:
                return self._result(store, started)
            self.shards = self._begin()
        line = ProgressLine(self.label, total=self.need.tokens, stream=self.stream or sys.stderr)
        self.line = line if self.stream is not None else None
        while not self._work():
            time.sleep(POLL)
        with hold(self.folder):
            store = self._complete()
            if store is None:
                self._write_manifest()
                store = self._checked()
        if self.line is not None:
            self.line.done()
        return self._result(store, started)

    # -------------------------------------------------------------------------- the store

    def _complete(self) -> Optional[TokenStore]:
        try:
            return self._checked()
        except StoreError:
            return None

    def _checked(self) -> TokenStore:
        """The store just completed; its StoreError if it still fails its checks."""
        return TokenStore.for_need(self.need, self.tokenizer_id, self.root, hint=self.hint)

    def _identity(self) -> dict[str, Any]:
        need = self.need
        return {
            "format": FORMAT,
            "source": need.source.model_dump(mode="json"),
            "split": need.split,
            "seed": need.seed,
            "tokenizer": self.tokenizer_id,
            "content": self.content,
            "dtype": self.dtype,
            "masked": need.masked,
        }

    def _begin(self) -> list[dict[str, Any]]:
        """The shards, from ``source.json``; a store of other content is emptied first."""
        identity = self._identity()
        try:
            known = read_json(os.path.join(self.folder, SOURCE))
        except ValueError:
            known = None
        if isinstance(known, dict) and {k: known.get(k) for k in identity} == identity:
            self._repair(len(known["shards"]))
            return known["shards"]
        _empty(self.folder)
        shards = self._data(lambda: list_shards(self.need.source))
        write_json(os.path.join(self.folder, SOURCE), {**identity, "shards": shards})
        return shards

    def _repair(self, count: int) -> None:
        """Empty every part whose arrays are shorter than its progress says (a damaged store);
        a part another process is writing is left to it."""
        for i in range(count):
            folder = os.path.join(self.folder, _part_dir(i))
            if not os.path.isdir(folder):
                continue
            with try_hold(folder) as mine:
                if not mine:
                    continue
                try:
                    PartWriter(folder, dtype=self.dtype, masked=self.need.masked, label=self.label).close()
                except StoreError:
                    _empty(folder)

    def _write_manifest(self) -> None:
        states = self._states()
        parts, documents, tokens = [], 0, 0
        for i, state in enumerate(states):
            parts.append({"dir": _part_dir(i), **state})
            documents += state["documents"]
            tokens += state["tokens"]
            if tokens > self.need.tokens or not state["exhausted"]:
                break
        exhausted = len(parts) == len(states) and all(p["exhausted"] for p in parts)
        write_json(
            os.path.join(self.folder, MANIFEST),
            {
                **self._identity(),
                "documents": documents,
                "tokens": tokens,
                "exhausted": exhausted,
                "parts": parts,
                "bound": self.need.tokens,
            },
        )

    def _result(self, store: TokenStore, started: float) -> Prepared:
        return Prepared(
            self.label,
            self.folder,
            store.documents,
            store.n_tokens,
            store.exhausted,
            self.written,
            time.monotonic() - started,
        )

    # -------------------------------------------------------------------------- the parts

    def _states(self) -> list[dict[str, Any]]:
        states = []
        for i in range(len(self.shards)):
            try:
                state = read_json(os.path.join(self.folder, _part_dir(i), PROGRESS)) or {}
            except ValueError:
                state = {}
            states.append(
                {
                    "documents": int(state.get("documents", 0)),
                    "tokens": int(state.get("tokens", 0)),
                    "exhausted": bool(state.get("exhausted", False)),
                }
            )
        return states

    def _work(self) -> bool:
        """Fill parts until the bound is covered (True), or until every part left is held by
        another process (False: wait and look again)."""
        while True:
            states = self._states()
            if _covered(states, self.need.tokens):
                return True
            first = next(i for i, s in enumerate(states) if not s["exhausted"])
            order = sorted(range(first, len(states)), key=lambda i: (i % self.world != self.rank, i))
            for i in order:
                done = sum(s["tokens"] for s in states[:i])
                limit = self.need.tokens - done if i == first else None
                if states[i]["exhausted"] or (limit is not None and states[i]["tokens"] > limit):
                    continue
                with try_hold(os.path.join(self.folder, _part_dir(i))) as mine:
                    if mine:
                        self._fill(i, limit)
                        break
            else:
                return False

    def _fill(self, index: int, limit: Optional[int]) -> None:
        """Append shard ``index``'s documents to its part, up to ``limit`` tokens (None: all)."""
        folder = os.path.join(self.folder, _part_dir(index))
        try:
            part = PartWriter(folder, dtype=self.dtype, masked=self.need.masked, label=self.label)
        except StoreError:  # damaged arrays: this part starts again
            _empty(folder)
            part = PartWriter(folder, dtype=self.dtype, masked=self.need.masked, label=self.label)
        try:
            if part.exhausted or (limit is not None and part.tokens > limit):
                return
            need = self.need
            documents = shard_documents(
                need.source, need.split, need.seed, self.shards[index], start=part.documents
            )
            encoded = self.encoder.encoded(chunks(documents), dtype=self.dtype, masked=need.masked)
            while True:
                item = self._data(lambda: next(encoded, None))
                if item is None:
                    part.commit(exhausted=True)
                    return
                ids, lengths, mask = item
                ends = part.tokens + np.cumsum(lengths)
                full = False
                if limit is not None and len(ends) and ends[-1] > limit:
                    full = True  # keep the documents up to the one that crosses the bound
                    keep = int(np.searchsorted(ends, limit, side="right")) + 1
                    cut = int(ends[keep - 1] - part.tokens)
                    ids, lengths = ids[:cut], lengths[:keep]
                    mask = mask[:cut] if mask is not None else None
                before = part.tokens
                part.append(ids, lengths, mask)
                part.commit()
                self.written += part.tokens - before
                if self.line is not None:
                    self.line.update(self.written)
                if full:
                    return
        finally:
            part.close()

    def _content(self) -> dict[str, Any]:
        """What the source reads (:func:`content_fingerprint`), after checking that it reads."""
        _validate(self.need.source)
        return content_fingerprint(self.need.source)

    def _data(self, action):
        """Run ``action``; a DataError from the data becomes a StoreError naming the source."""
        try:
            return action()
        except StoreError:
            raise
        except DataError as err:
            raise StoreError(self.label, str(err), hint=None) from None


def _covered(states: list[dict[str, Any]], bound: int) -> bool:
    """Whether the parts' complete prefix holds more than ``bound`` tokens, or everything."""
    tokens = 0
    for state in states:
        tokens += state["tokens"]
        if tokens > bound:
            return True
        if not state["exhausted"]:
            return False
    return True


def _validate(source: Any) -> None:
    from procdsl.data import validate

    validate(source)


def _part_dir(index: int) -> str:
    return f"part-{index:05d}"


def _empty(folder: str) -> None:
    """Remove everything in ``folder`` but its lock (which a holder may be using)."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name == LOCK:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
