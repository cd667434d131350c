"""What a store is keyed by: the source, the tokenizer, and the content the source read.

* **where**: ``<cache>/store/<kind>-<split>-<key>/<tokenizer>-<tid>/`` — ``key`` hashes the
  source's parameters, split and seed (``FORMAT`` too), ``tid`` the tokenizer's identity, so a
  plan with another tokenizer finds the sibling store and says so;
* **tokenizer identity**: its name, sizes and a SHA-256 of its ``tokenizer.json`` (GPT-2, a
  trained bpe, a file) — the same ids whether tiktoken or 🤗 encodes them;
* **content**: for local files their size, modification time and a SHA-256 of their first and
  last 64 KiB (cheap to recheck at every run, unlike a hash of terabytes); for ``hf`` the dataset
  name, config, split and revision (and local ``data_files`` as files); for ``dm_math`` a hash of
  its generator's source.

The cache root is ``$PROCDSL_CACHE``, else ``$HF_HOME/procdsl``, else ``~/.cache/procdsl``:

>>> import os
>>> cache_root({"PROCDSL_CACHE": "/fast/cache", "HF_HOME": "/hf"}), cache_root({"HF_HOME": "/hf"})
('/fast/cache', '/hf/procdsl')
>>> describe_change({"files": [{"path": "a.jsonl", "size": 10, "mtime_ns": 1, "sample": "x"}]},
...                 {"files": [{"path": "a.jsonl", "size": 12, "mtime_ns": 2, "sample": "y"}]})
'a.jsonl changed (size 10 → 12 bytes)'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Optional

from procdsl.data.files import expand_paths

#: bump when the layout of a store changes: old stores are then simply not found
FORMAT = 1
#: bytes hashed at each end of a file for its content fingerprint
SAMPLE_BYTES = 1 << 16


def cache_root(environ: Optional[Mapping[str, str]] = None) -> str:
    """The default cache directory (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("PROCDSL_CACHE"):
        return env["PROCDSL_CACHE"]
    if env.get("HF_HOME"):
        return os.path.join(env["HF_HOME"], "procdsl")
    return os.path.join(os.path.expanduser("~"), ".cache", "procdsl")


def store_folder(root: str, need: Any, tokenizer_id: Mapping[str, Any]) -> str:
    """The directory of ``need``'s store for the tokenizer ``tokenizer_id``."""
    return os.path.join(
        source_folder(root, need), _slug(tokenizer_id["name"]) + "-" + _digest(tokenizer_id)[:12]
    )


def source_folder(root: str, need: Any) -> str:
    """The directory holding ``need``'s stores, one per tokenizer."""
    key = {
        "format": FORMAT,
        "source": need.source.model_dump(mode="json"),
        "split": need.split,
        "seed": need.seed,
    }
    return os.path.join(root, "store", f"{need.source.kind}-{need.split}-{_digest(key)[:16]}")


@lru_cache(maxsize=16)
def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """``{"name", "vocab_size", "eos_id", "digest"}`` of a procdsl tokenizer."""
    text = tokenizer.to_str() if hasattr(tokenizer, "to_str") else tokenizer.name
    return {
        "name": tokenizer.name,
        "vocab_size": int(tokenizer.vocab_size),
        "eos_id": int(tokenizer.eos_id),
        "digest": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def content_fingerprint(source: Any) -> dict[str, Any]:
    """What ``source`` reads, as data that changes when its content does (DataError when a
    file is missing)."""
    kind = source.kind
    if kind in ("jsonl", "text", "parquet"):
        return {"files": [file_fingerprint(p) for p in expand_paths(source.path)]}
    if kind == "python_code":
        from procdsl.data.python_code import stdlib_corpus

        return {"files": [file_fingerprint(p) for _, p in stdlib_corpus().files]}
    if kind == "hf":
        local = [p for p in source.data_files or () if os.path.exists(p)]
        return {
            "dataset": source.dataset,
            "name": source.name,
            "split": source.split,
            "revision": source.revision,
            "files": [file_fingerprint(p) for p in local],
        }
    if kind == "dm_math":
        from procdsl.data import dm_math

        with open(dm_math.__file__, "rb") as handle:
            return {"generator": hashlib.sha256(handle.read()).hexdigest()}
    raise ValueError(f"{kind!r} is not a data source")


def file_fingerprint(path: str) -> dict[str, Any]:
    """``{"path", "size", "mtime_ns", "sample"}`` of one file."""
    stat = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if stat.st_size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, stat.st_size - SAMPLE_BYTES))
            digest.update(handle.read())
    return {
        "path": os.path.abspath(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample": digest.hexdigest(),
    }


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The first difference between two content fingerprints, in words."""
    before = {f["path"]: f for f in old.get("files", ())}
    after = {f["path"]: f for f in new.get("files", ())}
    for path in sorted(set(before) | set(after)):
        if path not in after:
            return f"{path} is gone"
        if path not in before:
            return f"{path} is new"
        a, b = before[path], after[path]
        if a["size"] != b["size"]:
            return f"{path} changed (size {a['size']:,} → {b['size']:,} bytes)"
        if a != b:
            return f"{path} changed (modified since the store was prepared)"
    keys = [k for k in sorted(set(old) | set(new)) if k != "files" and old.get(k) != new.get(k)]
    if keys:
        return f"{keys[0]} changed ({old.get(keys[0])!r} → {new.get(keys[0])!r})"
    return "its content changed"


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:40] or "tokenizer"
