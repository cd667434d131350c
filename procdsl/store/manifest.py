"""The store's JSON files, each written atomically: ``source.json``, ``progress.json``, ``manifest.json``.

A JSON file is written to a temporary sibling, flushed to disk, then renamed over its name, so a
reader sees the old file or the new one, never half of one. ``manifest.json`` is written last,
when every array it describes is complete: its presence is what makes a store complete.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "progress.json")
>>> write_json(path, {"documents": 3, "tokens": 41})
>>> read_json(path), read_json(path + ".missing")
({'documents': 3, 'tokens': 41}, None)
>>> _ = open(path, "w").write('{"documents": 3, "tok')        # a torn write from elsewhere
>>> read_json(path)
Traceback (most recent call last):
  ...
ValueError: .../progress.json is not valid JSON (Unterminated string starting at: line 1 column 18 (char 17))
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

MANIFEST = "manifest.json"
SOURCE = "source.json"
PROGRESS = "progress.json"


def write_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` atomically and durably (temporary file, fsync, rename)."""
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    _sync_dir(os.path.dirname(path) or ".")


def read_json(path: str) -> Optional[Any]:
    """The data in ``path``, None when it does not exist; ValueError when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None


def _sync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
