"""The data checks of a run before its first step: every source opens, every eval has held-out
documents, and what the data is (its fingerprint, for the checkpoints).

A missing file found at phase 3, or an eval source whose held-out split is empty found at the
first eval, costs the steps before it; :func:`check_data` finds both before training and
raises a ``DataError`` naming the source and its files. Procedural sources need no check: they
are generated.

>>> import os, tempfile
>>> from procdsl.compiler import compile_text
>>> path = os.path.join(tempfile.mkdtemp(), "a.jsonl")
>>> _ = open(path, "w").write('{"text": "one"}\\n')
>>> plan = compile_text(f'''curriculum c {{
...   model = gpt2(layers=1, heads=2, dim=16)
...   context = 32
...   batch = 4
...   source s = sort(length=4, vocab=8)
...   source j = jsonl("{path}", heldout=0.01)
...   phase p {{ steps = 2  mix = {{ s: 100% }}  eval every 1 steps {{ perplexity(j) }} }}
... }}''', "c.curr").plan
>>> check_data(plan)
Traceback (most recent call last):
  ...
procdsl.data.errors.DataError: .../a.jsonl: eval source `j` has no held-out documents: none of its 1 documents falls in the held-out 1% (raise `heldout`, or add documents)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from procdsl.data import DataError, iter_documents, validate

from .fingerprint import FileHashes, source_fingerprint


def data_sources(plan: Any) -> dict[str, Any]:
    """The non-procedural sources some phase trains on or evaluates, by name, in plan order."""
    used = dict.fromkeys(name for phase in plan.phases for name in phase.sources_read())
    return {name: plan.sources[name] for name in used if not plan.sources[name].procedural}


def eval_sources(plan: Any) -> set[str]:
    return {e.source for phase in plan.phases for e in phase.eval}


def check_data(plan: Any, *, note: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Open every data source (``procdsl.data.validate``) and read the held-out split of each one
    an eval reads; ``{name: SourceInfo}``. DataError (naming the file) otherwise."""
    infos = {}
    evaluated = eval_sources(plan)
    for name, source in data_sources(plan).items():
        info = validate(source)
        note(f"source {name}: {info.description}")
        if name in evaluated and source.kind != "dm_math":
            _check_heldout(name, source, info)
        infos[name] = info
    return infos


def _check_heldout(name: str, source: Any, info: Any) -> None:
    if next(iter_documents(source, "heldout"), None) is not None:
        return
    count = sum(1 for _ in iter_documents(source, "all"))
    where = (
        info.files[0]
        if len(info.files) == 1
        else getattr(source, "path", None) or getattr(source, "dataset", name)
    )
    raise DataError(
        f"eval source `{name}` has no held-out documents: none of its {count:,} documents "
        f"falls in the held-out {source.heldout:.0%} (raise `heldout`, or add documents)",
        path=where,
    )


def fingerprints(plan: Any, infos: dict[str, Any], cache_path: Optional[str] = None) -> dict[str, Any]:
    """``{name: fingerprint}`` of the data sources ``check_data`` found (``procdsl.runtime.fingerprint``)."""
    hashes = FileHashes(cache_path)
    found = {}
    for name, info in infos.items():
        printed = source_fingerprint(plan.sources[name], info, hashes)
        if printed is not None:
            found[name] = printed
    try:
        hashes.save()
    except OSError:  # the cache only saves time
        pass
    return found


__all__ = ["check_data", "data_sources", "eval_sources", "fingerprints"]
