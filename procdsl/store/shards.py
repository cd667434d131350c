"""A source's documents in shards: the units of parallel (and multi-node) preparation.

The shards of a source, read in order, are exactly the documents ``iter_documents`` yields
(the streaming path), so a store built shard by shard holds the same documents in the same
order:

* ``hf``: the dataset's own shards (its files; ``datasets``' ``IterableDataset.shard``);
* ``jsonl``, ``text``, ``parquet``: consecutive files, grouped until a group holds
  ``SHARD_BYTES`` (one big file is one shard);
* ``python_code``, ``dm_math``: one shard (small, or generated without end).

A shard is described by JSON-able data (kept in the store's ``source.json``):

>>> import tempfile, os
>>> from procdsl.plan.sources import JsonlSource
>>> d = tempfile.mkdtemp()
>>> for name in "abc":
...     _ = open(os.path.join(d, name + ".jsonl"), "w").write('{"text": "%s"}\\n' % name)
>>> source = JsonlSource(path=os.path.join(d, "*.jsonl"))
>>> shards = list_shards(source, shard_bytes=20)
>>> [[os.path.basename(f) for f in s["files"]] for s in shards]
[['a.jsonl', 'b.jsonl'], ['c.jsonl']]
>>> [doc.text for s in shards for doc in shard_documents(source, "all", None, s)]
['a', 'b', 'c']
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any, Optional

from procdsl.data.document import Document
from procdsl.data.files import expand_paths, is_glob
from procdsl.data.readers import iter_documents
from procdsl.data.split import Split

#: bytes of files grouped into one shard of a file source
SHARD_BYTES = 256 << 20


def list_shards(source: Any, *, shard_bytes: Optional[int] = None) -> list[dict[str, Any]]:
    """The shards of ``source``, in order (DataError when its files or dataset are missing)."""
    if source.kind == "hf":
        from procdsl.data.hf import hf_shards

        count = hf_shards(source)
        return [{"hf": [i, count]} for i in range(count)]
    if source.kind not in ("jsonl", "text", "parquet"):
        return [{}]
    shard_bytes = shard_bytes or SHARD_BYTES
    groups: list[dict[str, Any]] = []
    files: list[str] = []
    size = 0
    for path in expand_paths(source.path):
        files.append(path)
        size += os.path.getsize(path)
        if size >= shard_bytes:
            groups.append({"files": files})
            files, size = [], 0
    if files:
        groups.append({"files": files})
    return groups


def shard_documents(
    source: Any, split: Split, seed: Optional[int], shard: dict[str, Any], *, start: int = 0
) -> Iterator[Document]:
    """The documents of ``split`` in ``shard``, from its ``start``-th on."""
    if "hf" in shard:
        index, count = shard["hf"]
        return iter_documents(source, split, start=start, shard=(index, count))
    if "files" in shard:
        parts = (
            iter_documents(source.model_copy(update={"path": _literal(path)}), split)
            for path in shard["files"]
        )
        return islice(chain.from_iterable(parts), start, None)
    return iter_documents(source, split, seed=seed or 0, start=start)


def _literal(path: str) -> str:
    """``path`` as a pattern that matches only itself (a file name may hold ``[``)."""
    return glob.escape(path) if is_glob(path) else path
