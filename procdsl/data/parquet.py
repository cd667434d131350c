"""``parquet(path, field=)``: the string column ``field`` of a parquet file or glob of files.

Rows are read in file then row order, in record batches (``pyarrow``, imported on first use).
A document's origin is ``path#row`` (0-based row). A missing column, a non-string column or a
null value is a DataError naming the file (and row).

>>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq
>>> from procdsl.plan.sources import ParquetSource
>>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
>>> pq.write_table(pa.table({"text": ["a", "b"], "n": [1, 2]}), path)
>>> [(d.text, d.origin[-6:]) for d in read_parquet(ParquetSource(path=path))]
[('a', 'quet#0'), ('b', 'quet#1')]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

from procdsl.data.document import Document, ReadStats, SourceInfo, decode_utf8
from procdsl.data.errors import DataError
from procdsl.data.files import check_nonempty, expand_paths
from procdsl.plan.sources import ParquetSource

BATCH_ROWS = 1024


def read_parquet(source: ParquetSource, stats: Optional[ReadStats] = None) -> Iterator[Document]:
    """Every row's ``field`` value, file by file; an empty file (no rows) is a DataError."""
    import pyarrow as pa

    for path in expand_paths(source.path):
        handle = _open(path, source.field)
        if stats is not None:
            stats.files += 1
        if handle.metadata.num_rows == 0:
            raise DataError("file has no rows", path=path)
        row = 0
        try:
            batches = handle.iter_batches(batch_size=BATCH_ROWS, columns=[source.field])
            for batch in batches:
                for value in batch.column(0).to_pylist():
                    yield _document(value, source.field, path, row)
                    row += 1
        except (OSError, pa.ArrowException) as err:  # a corrupt page or footer
            raise DataError(f"cannot be read at row {row}: {err}", path=path) from None


def validate_parquet(source: ParquetSource) -> SourceInfo:
    """Open each file's metadata, check the column, and read the first value of the first file."""
    paths = expand_paths(source.path)
    total = 0
    for path in paths:
        total += check_nonempty(path)
        handle = _open(path, source.field)
        if handle.metadata.num_rows == 0:
            raise DataError("file has no rows", path=path)
    first = next(_open(paths[0], source.field).iter_batches(batch_size=1, columns=[source.field]))
    _document(first.column(0)[0].as_py(), source.field, paths[0], 0)
    return SourceInfo(
        "parquet",
        f"parquet {source.path}: {len(paths)} file(s), {total:,} bytes, column {source.field!r}",
        tuple(paths),
        total,
    )


def _open(path: str, field: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"not a readable parquet file ({err})", path=path) from None
    schema = handle.schema_arrow
    if field not in schema.names:
        raise DataError(f"has no column {field!r} (its columns: {', '.join(schema.names)})", path=path)
    kind = schema.field(field).type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    ):
        raise DataError(f"column {field!r} holds {kind}, not strings", path=path)
    return handle


def _document(value, field: str, path: str, row: int) -> Document:
    if value is None:
        raise DataError(f"row {row}: column {field!r} is null", path=path)
    replaced = 0
    if isinstance(value, bytes):
        value, replaced = decode_utf8(value)
    return Document(value, origin=f"{path}#{row}", replaced=replaced)
