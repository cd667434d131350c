"""``jsonl(path, field=)``: one JSON object per line, the document's text in ``field``.

``path`` is a file or a glob (files in sorted order); blank lines are skipped. Each record
becomes a document whose origin is ``path:line``. Files are read line by line, never whole, so
a file larger than memory streams. Errors name the file and the 1-based line:

>>> import tempfile, os
>>> from procdsl.plan.sources import JsonlSource
>>> path = os.path.join(tempfile.mkdtemp(), "a.jsonl")
>>> _ = open(path, "w").write('{"text": "one"}\\n\\n{"text": "two"}\\n{"body": 3}\\n')
>>> docs = read_jsonl(JsonlSource(path=path))
>>> next(docs).text, next(docs).origin.endswith("a.jsonl:3")
('one', True)
>>> next(docs)
Traceback (most recent call last):
  ...
procdsl.data.errors.DataError: .../a.jsonl:4: the record has no field 'text' (its fields: body)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

from procdsl.data.document import Document, ReadStats, SourceInfo, decode_utf8
from procdsl.data.errors import DataError
from procdsl.data.files import check_nonempty, expand_paths
from procdsl.plan.sources import JsonlSource


def read_jsonl(source: JsonlSource, stats: Optional[ReadStats] = None) -> Iterator[Document]:
    """Every record of every file, in file then line order (no train/held-out selection)."""
    for path in expand_paths(source.path):
        if stats is not None:
            stats.files += 1
        records = 0
        for number, line in read_lines(path):
            if not line.strip():
                continue
            records += 1
            text, replaced = decode_utf8(line)
            value = _field(_parse(text, path, number), source.field, path, number)
            yield Document(value, origin=f"{path}:{number}", replaced=replaced)
        if records == 0:
            raise DataError("file has no JSON record", path=path)


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """``(1-based number, line)`` of a file, read line by line; lines end at ``\\n``, ``\\r\\n``
    or ``\\r`` (as ``bytes.splitlines``). A DataError names the file when it cannot be read."""
    number = 0
    try:
        with open(path, "rb") as handle:
            for piece in handle:
                for line in piece.splitlines():
                    number += 1
                    yield number, line
    except OSError as err:
        raise DataError(f"cannot be read: {err.strerror or err}", path=path) from None


def validate_jsonl(source: JsonlSource) -> SourceInfo:
    """Check every file exists and is non-empty, and that its first record has ``field``."""
    paths = expand_paths(source.path)
    total = 0
    for path in paths:
        total += check_nonempty(path)
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    _field(_parse(decode_utf8(line)[0], path, number), source.field, path, number)
                    break
            else:
                raise DataError("file has no JSON record", path=path)
    return SourceInfo(
        "jsonl",
        f"jsonl {source.path}: {len(paths)} file(s), {total:,} bytes, field {source.field!r}",
        tuple(paths),
        total,
    )


def _parse(text: str, path: str, line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"not JSON ({err.msg} at column {err.colno})", path=path, line=line) from None


def _field(record: Any, field: str, path: str, line: int) -> str:
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", path=path, line=line)
    if field not in record:
        fields = ", ".join(sorted(map(str, record))) or "none"
        raise DataError(f"the record has no field {field!r} (its fields: {fields})", path=path, line=line)
    value = record[field]
    if not isinstance(value, str):
        raise DataError(f"field {field!r} is {type(value).__name__}, not a string", path=path, line=line)
    return value
