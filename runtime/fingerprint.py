"""Fingerprints of a plan's data sources, so that a resume notices when the data changed.

A run resumed on other data would continue the stream at the right *position* in different
documents — silently. Each checkpoint's sidecar records, per file-backed data source (``jsonl``,
``text``, ``parquet``, ``python_code``), the number of files, their total size and a SHA-256
over every file's name, size and content hash; a resume compares them with the files as they are
now and refuses with :func:`diff` unless ``--force-replan``. Streamed (``hf``) sources are
recorded by dataset, name, split and revision; generated ones (procedural, ``dm_math``) are pure
functions of the plan and need nothing.

Hashing a large corpus at every start would be slow: per-file hashes are cached in
``DIR/cache/fingerprints.json`` under the file's path, size and modification time.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "a.txt"); _ = open(path, "w").write("hello")
>>> old = {"t": files_fingerprint("text", [path])}
>>> _ = open(path, "a").write(" world")
>>> print(diff(old, {"t": files_fingerprint("text", [path])}))
  t: 1 file, 5 bytes, sha256 4aab7dd57802… → 1 file, 11 bytes, sha256 61539f51cb6c…
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any, Optional

from procdsl.atomic import atomic_write

from .sidecar import sha256_file


class FileHashes:
    """SHA-256 of files, cached by (path, size, mtime) in a JSON file (none: no cache)."""

    def __init__(self, cache_path: Optional[str] = None):
        self.path, self.entries, self.changed = cache_path, {}, False
        if cache_path and os.path.isfile(cache_path):
            try:
                with open(cache_path, encoding="utf-8") as f:
                    loaded = json.load(f)
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.entries = {}

    def sha256(self, path: str, info: os.stat_result) -> str:
        key = os.path.abspath(path)
        stamp = [info.st_size, info.st_mtime_ns]
        cached = self.entries.get(key)
        if isinstance(cached, list) and cached[:2] == stamp and len(cached) == 3:
            return cached[2]
        digest = sha256_file(path)
        self.entries[key] = [*stamp, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.path and self.changed:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            atomic_write(self.path, json.dumps(self.entries, sort_keys=True))


def files_fingerprint(kind: str, files: Iterable[str], hashes: Optional[FileHashes] = None) -> dict[str, Any]:
    """``{"kind", "files", "bytes", "sha256"}`` over the files' base names, sizes and contents."""
    hashes = hashes or FileHashes()
    digest, count, total = hashlib.sha256(), 0, 0
    for path in files:
        info = os.stat(path)
        digest.update(f"{os.path.basename(path)}\0{info.st_size}\0{hashes.sha256(path, info)}\n".encode())
        count, total = count + 1, total + info.st_size
    return {"kind": kind, "files": count, "bytes": total, "sha256": digest.hexdigest()}


def source_fingerprint(
    source: Any, info: Any, hashes: Optional[FileHashes] = None
) -> Optional[dict[str, Any]]:
    """The fingerprint of one data source from what ``procdsl.data.validate`` found (None for
    sources that are generated)."""
    if source.kind == "hf":
        return {
            "kind": "hf",
            "dataset": source.dataset,
            "name": source.name,
            "split": source.split,
            "revision": source.revision,
            "data_files": list(source.data_files or ()),
        }
    if info.files:
        return files_fingerprint(source.kind, info.files, hashes)
    return None


def _describe(print_: Optional[dict[str, Any]]) -> str:
    if print_ is None:
        return "absent"
    if "sha256" in print_:
        files = print_.get("files")
        return (
            f"{files} file{'s' if files != 1 else ''}, {print_.get('bytes'):,} bytes, "
            f"sha256 {str(print_.get('sha256'))[:12]}…"
        )
    return ", ".join(f"{k} {v}" for k, v in sorted(print_.items()) if k != "kind")


def diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """One line per source whose fingerprint changed (empty when none did)."""
    lines = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            lines.append(f"  {name}: {_describe(old.get(name))} → {_describe(new.get(name))}")
    return "\n".join(lines)
