"""The store's JSON files, each written atomically: ``source.json``, ``progress.json``, ``manifest.json``.

A JSON file is written through ``procdsl.atomic`` (a temporary sibling, flushed to disk, then
renamed over its name), so a reader sees the old file or the new one, never half of one. ``manifest.json`` is written last,
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
from typing import Any, Optional

from procdsl.atomic import atomic_write

MANIFEST = "manifest.json"
SOURCE = "source.json"
PROGRESS = "progress.json"


def write_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` atomically and durably (``procdsl.atomic``)."""
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True))


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
