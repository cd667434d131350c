"""Documents → token arrays, in chunks, on ``workers`` processes, in order.

``encode_chunk`` turns a chunk of documents into what a store part appends: the ids of every
document followed by EOS, in the store's dtype; each document's length; and, for sources with
answers, the target mask — exactly the units' tokens and targets of the streaming path
(``TextUnits._encode``): plain documents through ``encode_batch``, documents with an answer
through ``encode_document``.

>>> from procdsl.data import ByteTokenizer, Document
>>> ids, lengths, mask = encode_chunk(ByteTokenizer(), [("hi", None), ("Q?\\n4", 3)], "uint16", True)
>>> ids.tolist(), lengths.tolist(), mask.tolist()
([104, 105, 256, 81, 63, 10, 52, 256], [3, 5], [1, 1, 1, 0, 0, 0, 1, 1])

``encoded`` runs it over a stream of documents: in this process, or on a pool of forked
workers with at most two chunks per worker in flight, so an endless source is never read ahead
further than that.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Optional

import numpy as np

from procdsl.data.document import Document
from procdsl.data.tokenizer import encode_document

#: characters of documents per chunk (one commit of a store part): the first chunks are
#: smaller, doubling up to the largest, so a small bound never reads far past what it needs
CHUNK_CHARS = 4 << 20
FIRST_CHUNK_CHARS = 1 << 16

Chunk = list[tuple[str, Optional[int]]]
Encoded = tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]

_WORKER: dict[str, Any] = {}  # the tokenizer a forked worker inherits


def encode_chunk(tokenizer: Any, chunk: Chunk, dtype: str, masked: bool) -> Encoded:
    """``(ids, lengths, mask)`` of ``(text, answer_start)`` documents (mask None unless ``masked``)."""
    eos = np.array([tokenizer.eos_id], np.int32)
    plain = iter(tokenizer.encode_batch([text for text, answer in chunk if answer is None]))
    ids: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for text, answer in chunk:
        if answer is None:
            ids.append(np.concatenate([next(plain), eos]))
            masks.append(np.ones(len(ids[-1]), np.uint8))
        else:
            tokens, target = encode_document(tokenizer, Document(text, answer_start=answer))
            ids.append(tokens)
            masks.append(target.astype(np.uint8))
    lengths = np.array([len(x) for x in ids], np.int64)
    flat = np.concatenate(ids).astype(dtype) if ids else np.zeros(0, dtype)
    return flat, lengths, (np.concatenate(masks) if masks else np.zeros(0, np.uint8)) if masked else None


def chunks(
    documents: Iterable[Document], chunk_chars: int = CHUNK_CHARS, first_chars: int = FIRST_CHUNK_CHARS
) -> Iterator[Chunk]:
    """Documents grouped into chunks of ``first_chars`` characters, doubling up to
    ``chunk_chars`` (at least one document each).

    >>> [len(c) for c in chunks([Document("ab")] * 9, chunk_chars=8, first_chars=2)]
    [1, 2, 4, 2]
    """
    chunk: Chunk = []
    size, limit = 0, min(first_chars, chunk_chars)
    for doc in documents:
        chunk.append((doc.text, doc.answer_start))
        size += len(doc.text)
        if size >= limit:
            yield chunk
            chunk, size, limit = [], 0, min(2 * limit, chunk_chars)
    if chunk:
        yield chunk


class Encoder:
    """Encodes chunks in order, on ``workers`` processes (1: in this process)."""

    def __init__(self, tokenizer: Any, *, workers: int = 1):
        self.tokenizer = tokenizer
        self.workers = max(1, workers)
        self._pool = None
        if self.workers > 1:
            # the workers inherit the tokenizer; 🤗 tokenizers must not also spawn threads
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            _WORKER["tokenizer"] = tokenizer
            self._pool = multiprocessing.get_context("fork").Pool(self.workers)

    def encoded(self, stream: Iterable[Chunk], *, dtype: str, masked: bool) -> Iterator[Encoded]:
        """The encoding of every chunk of ``stream``, in order."""
        if self._pool is None:
            for chunk in stream:
                yield encode_chunk(self.tokenizer, chunk, dtype, masked)
            return
        pending: deque = deque()
        for chunk in stream:
            pending.append(self._pool.apply_async(_encode_in_worker, (chunk, dtype, masked)))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _encode_in_worker(chunk: Chunk, dtype: str, masked: bool) -> Encoded:
    return encode_chunk(_WORKER["tokenizer"], chunk, dtype, masked)
