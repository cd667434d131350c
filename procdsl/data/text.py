"""``text(path_or_glob)``: each matching file is one document (UTF-8; bad bytes → U+FFFD).

>>> import tempfile, os
>>> from procdsl.plan.sources import TextSource
>>> d = tempfile.mkdtemp()
>>> _ = open(os.path.join(d, "b.txt"), "wb").write(b"caf\\xe9")
>>> _ = open(os.path.join(d, "a.txt"), "w").write("hello")
>>> [(doc.text, doc.replaced) for doc in read_text(TextSource(path=os.path.join(d, "*.txt")))]
[('hello', 0), ('caf\\ufffd', 1)]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

from procdsl.data.document import Document, ReadStats, SourceInfo, decode_utf8
from procdsl.data.errors import DataError
from procdsl.data.files import check_nonempty, expand_paths, read_bytes
from procdsl.plan.sources import TextSource


def read_text(source: TextSource, stats: Optional[ReadStats] = None) -> Iterator[Document]:
    """One document per file, files in sorted path order; an empty file is a DataError."""
    yield from read_files(expand_paths(source.path), stats)


def read_files(
    paths: list[str], stats: Optional[ReadStats] = None, origins: Optional[list[str]] = None
) -> Iterator[Document]:
    """Each of ``paths`` as one document (``origins`` name them; default: the path)."""
    for index, path in enumerate(paths):
        data = read_bytes(path)
        if not data:
            raise DataError("file is empty", path=path)
        if stats is not None:
            stats.files += 1
        text, replaced = decode_utf8(data)
        yield Document(text, origin=origins[index] if origins else path, replaced=replaced)


def validate_text(source: TextSource) -> SourceInfo:
    """Check the glob matches files and that each is readable and non-empty."""
    paths = expand_paths(source.path)
    total = 0
    for path in paths:
        total += check_nonempty(path)
    return SourceInfo(
        "text", f"text {source.path}: {len(paths)} file(s), {total:,} bytes", tuple(paths), total
    )
