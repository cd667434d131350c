"""One entry point for every data source: ``iter_documents`` reads a split, ``validate`` checks it.

Each source kind has a reader in its own module (``jsonl``, ``text``, ``parquet``, ``hf``,
``python_code``, ``dm_math``); this module dispatches on ``source.kind``, applies the
train/held-out selection (``procdsl.data.split``: a stable hash of the document's text against
``source.heldout``; ``dm_math`` splits by its problems' numbers itself), skips empty documents
and keeps the counters.

>>> import tempfile, os
>>> from procdsl.plan.sources import JsonlSource
>>> path = os.path.join(tempfile.mkdtemp(), "a.jsonl")
>>> _ = open(path, "w").write("".join(f'{{"text": "doc {i}"}}\\n' for i in range(200)))
>>> source = JsonlSource(path=path, heldout=0.1)
>>> train = [d.text for d in iter_documents(source, "train")]
>>> held = [d.text for d in iter_documents(source, "heldout")]
>>> len(train) + len(held), set(train) & set(held)
(200, set())
>>> validate(source).description
"jsonl .../a.jsonl: 1 file(s), 3,890 bytes, field 'text'"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import NamedTuple, Optional, cast

from procdsl.data.dm_math import generate, validate_dm_math
from procdsl.data.document import Document, ReadStats, SourceInfo
from procdsl.data.hf import read_hf, validate_hf
from procdsl.data.jsonl import read_jsonl, validate_jsonl
from procdsl.data.parquet import read_parquet, validate_parquet
from procdsl.data.python_code import read_python_code, validate_python_code
from procdsl.data.split import Split, check_split, in_split
from procdsl.data.text import read_text, validate_text
from procdsl.plan.sources import DataSourceBase, DmMathSource, SourceBase


class Reader(NamedTuple):
    """How to read one source kind: every document in order, and the fail-fast check."""

    read: Callable[..., Iterator[Document]]
    validate: Callable[..., SourceInfo]


#: source kind -> reader (``dm_math`` is absent: it generates and splits on its own)
READERS: dict[str, Reader] = {
    "hf": Reader(read_hf, validate_hf),
    "jsonl": Reader(read_jsonl, validate_jsonl),
    "text": Reader(read_text, validate_text),
    "parquet": Reader(read_parquet, validate_parquet),
    "python_code": Reader(read_python_code, validate_python_code),
}

#: the kinds ``iter_documents`` accepts
DATA_KINDS: tuple[str, ...] = (*READERS, "dm_math")


def iter_documents(
    source: SourceBase,
    split: Split = "train",
    *,
    seed: int = 0,
    start: int = 0,
    stats: Optional[ReadStats] = None,
    shard: Optional[tuple[int, int]] = None,
) -> Iterator[Document]:
    """The documents of ``split`` (``"train"``, ``"heldout"`` or ``"all"``) of a data source.

    Deterministic: the same source and arguments give the same documents in the same order.
    File sources are finite (one pass; the caller starts a new iterator for another epoch);
    ``dm_math`` is infinite and depends on ``seed`` (files ignore it). ``start`` skips that
    many documents of the split (to resume). ``stats`` accumulates counts as documents are
    read. Raises DataError (naming the file and line) on bad data, lazily, when the reader
    reaches it; ``validate`` finds most problems up front. ``shard=(i, n)`` (``hf`` only) reads
    shard ``i`` of the dataset's ``n`` (``procdsl.data.hf``).
    """
    check_split(split)
    kind = _kind(source)
    if shard is not None and kind != "hf":
        raise ValueError(f"only hf sources read by shard, not {kind}")
    if kind == "dm_math":
        return generate(cast(DmMathSource, source), split, seed=seed, start=start, stats=stats)
    read = READERS[kind].read(source, stats, shard=shard) if shard else READERS[kind].read(source, stats)
    documents = _select(read, split, cast(DataSourceBase, source).heldout, stats)
    return islice(documents, start, None) if start else documents


def validate(source: SourceBase) -> SourceInfo:
    """Fail fast, before training: open the files (or the dataset) and read a first record.

    Returns what was found, with a one-line description for the run log (how many files and
    bytes; for ``python_code``, which Python's standard library). Raises DataError otherwise.
    """
    kind = _kind(source)
    if kind == "dm_math":
        return validate_dm_math(cast(DmMathSource, source))
    return READERS[kind].validate(source)


def _select(
    documents: Iterator[Document], split: Split, heldout: float, stats: Optional[ReadStats]
) -> Iterator[Document]:
    for doc in documents:
        if not doc.text:
            if stats is not None:
                stats.empty += 1
            continue
        if not in_split(doc.text, split, heldout):
            if stats is not None:
                stats.excluded += 1
            continue
        if stats is not None:
            stats.count(doc)
        yield doc


def _kind(source: SourceBase) -> str:
    """The kind of a data source, else a TypeError; a source of a kind in DATA_KINDS is a
    DataSourceBase (``dm_math`` a DmMathSource), which the callers' casts rest on."""
    kind = getattr(source, "kind", None)
    if kind not in DATA_KINDS:
        raise TypeError(
            f"{kind!r} is not a data source (data sources: {', '.join(DATA_KINDS)}); "
            "procedural sources are generated by procdsl.generators"
        )
    return kind
