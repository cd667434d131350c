"""The one exception of the data layer: bad or unreachable data, named precisely.

A :class:`DataError` says *where* (file and line, or dataset and row) and *what*, in words a user
can act on, and never wraps a traceback of the library that found the problem:

>>> err = DataError("not JSON (Expecting value)", path="/data/a.jsonl", line=3)
>>> str(err)
'/data/a.jsonl:3: not JSON (Expecting value)'
>>> err.path, err.line
('/data/a.jsonl', 3)
"""

from __future__ import annotations

from typing import Optional


class DataError(Exception):
    """A data source cannot be read: missing/empty file, malformed record, unreachable dataset.

    ``path`` (a file, or a dataset name) and ``line`` (1-based, for line-oriented files; a row
    number for tables) locate the problem when known; ``str(err)`` puts them in front of the
    message as ``path:line: message``, the form editors and CI annotate.
    """

    def __init__(self, message: str, *, path: Optional[str] = None, line: Optional[int] = None):
        self.message = message
        self.path = path
        self.line = line
        where = ":".join(str(part) for part in (path, line) if part is not None)
        super().__init__(f"{where}: {message}" if where else message)
