"""The sidecar of a checkpoint, ``step-N/procdsl.json``: what it is, and proof that it is whole.

DCP writes a checkpoint as several files (``__R_0.distcp`` per rank, ``.metadata`` last); a run
killed mid-save, a full disk, a truncated copy or a flipped byte leaves a directory that looks
like a checkpoint and is not one. After DCP has finished, rank 0 writes the sidecar — last,
atomically (``procdsl.atomic``) — holding the run's own state as JSON and the size and SHA-256
of every other file of the directory::

    {"format": 1, "plan_hash": "3c57…", "plan_json": "{…}", "phase": "warm", "phase_index": 0,
     "phase_step": 8, "global_step": 8, "world": 1, "wall_time_s": 41.2,
     "data": {"code": {"kind": "python_code", "files": 1934, "bytes": 27361025, "sha256": "…"}},
     "files": {".metadata": {"bytes": 20950, "sha256": "…"}, "__0_0.distcp": {…}}}

A checkpoint is *complete* when its sidecar parses, names its own step, and every file matches
it (no file missing, none extra, none changed). Reading one never unpickles anything: the plan
hash, the step and the data fingerprints come from here, so a directory is judged before DCP
reads a byte of it (``procdsl.runtime.safeload`` reads the rest without running code).
:func:`newest_complete` skips damaged checkpoints, saying why, and returns the newest whole one.
No torch: ``procdsl run`` checks a run directory before it launches anything.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(folder, "step-4")); os.makedirs(os.path.join(folder, "step-8"))
>>> _ = open(os.path.join(folder, "step-4", "__0_0.distcp"), "wb").write(b"weights")
>>> _ = write(os.path.join(folder, "step-4"), {"global_step": 4, "plan_hash": "abc"})
>>> _ = open(os.path.join(folder, "step-8", "__0_0.distcp"), "wb").write(b"cut sh")  # no sidecar
>>> newest_complete(folder, skipped=lambda path, why: print(os.path.basename(path), why))
step-8 has no procdsl.json (the save did not finish)
(4, {...})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from typing import Any, Optional

from procdsl.atomic import atomic_write

SIDECAR = "procdsl.json"
FORMAT = 1
#: a sidecar larger than this is not ours (the plan JSON is the big part: kilobytes)
MAX_SIDECAR_BYTES = 64 << 20
_STEP = re.compile(r"step-(\d+)")
_CHUNK = 1 << 20


class Damaged(Exception):
    """The checkpoint directory is not a complete procdsl checkpoint (the message says why)."""


def checkpoint_path(folder: str, step: int) -> str:
    return os.path.join(folder, f"step-{step}")


def steps(folder: str) -> list[int]:
    """The ``N`` of every ``step-N`` directory under ``folder``, newest first (complete or not)."""
    if not os.path.isdir(folder):
        return []
    found = [
        int(m.group(1))
        for name in os.listdir(folder)
        if (m := _STEP.fullmatch(name)) and os.path.isdir(os.path.join(folder, name))
    ]
    return sorted(found, reverse=True)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _regular_files(path: str) -> dict[str, os.stat_result]:
    """The files of a checkpoint directory (the sidecar aside); anything else makes it damaged."""
    found = {}
    for entry in os.scandir(path):
        if entry.name == SIDECAR:
            continue
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            raise Damaged(f"{entry.name} is not a regular file")
        found[entry.name] = info
    return found


def digests(path: str) -> dict[str, dict[str, Any]]:
    """``{file: {"bytes", "sha256"}}`` of every file in ``path`` but the sidecar."""
    return {
        name: {"bytes": info.st_size, "sha256": sha256_file(os.path.join(path, name))}
        for name, info in sorted(_regular_files(path).items())
    }


def write(path: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``path``'s sidecar: ``record`` plus the digests of the directory's files (call it
    after every rank's files and DCP's ``.metadata`` are on disk); returns what was written."""
    full = {"format": FORMAT, **record, "files": digests(path)}
    atomic_write(os.path.join(path, SIDECAR), json.dumps(full, indent=1, sort_keys=True) + "\n")
    return full


_verified: dict[tuple, dict[str, Any]] = {}


def read(path: str) -> dict[str, Any]:
    """The sidecar of checkpoint ``path`` after checking every file against it (:class:`Damaged`
    otherwise). Verifying hashes each file; the result is remembered while nothing changes."""
    name = os.path.basename(os.path.normpath(path))
    match = _STEP.fullmatch(name)
    sidecar = os.path.join(path, SIDECAR)
    try:
        info = os.stat(sidecar, follow_symlinks=False)
    except FileNotFoundError:
        raise Damaged(f"has no {SIDECAR} (the save did not finish)") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SIDECAR_BYTES:
        raise Damaged(f"{SIDECAR} is not a regular file of at most {MAX_SIDECAR_BYTES >> 20} MB")
    files = _regular_files(path)
    key = (
        os.path.realpath(path),
        info.st_mtime_ns,
        info.st_size,
        tuple((n, i.st_size, i.st_mtime_ns) for n, i in sorted(files.items())),
    )
    if key in _verified:
        return _verified[key]
    try:
        with open(sidecar, encoding="utf-8") as f:
            record = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Damaged(f"{SIDECAR} is not JSON ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise Damaged(f"{SIDECAR} is not a procdsl checkpoint record of format {FORMAT}")
    expected = record.get("files")
    if not isinstance(expected, dict) or not isinstance(record.get("plan_hash"), str):
        raise Damaged(f"{SIDECAR} lacks its file list or plan hash")
    if match is None or record.get("global_step") != int(match.group(1)):
        raise Damaged(f"{SIDECAR} names step {record.get('global_step')!r}, not the directory's")
    missing = sorted(set(expected) - set(files))
    extra = sorted(set(files) - set(expected))
    if missing or extra:
        raise Damaged(
            f"{'missing ' + ', '.join(missing) if missing else ''}"
            f"{'; ' if missing and extra else ''}"
            f"{'files not in ' + SIDECAR + ': ' + ', '.join(extra) if extra else ''}"
        )
    for file, info_ in sorted(files.items()):
        want = expected[file]
        if not isinstance(want, dict) or want.get("bytes") != info_.st_size:
            raise Damaged(
                f"{file} has {info_.st_size:,} bytes, {SIDECAR} says "
                f"{want.get('bytes') if isinstance(want, dict) else want!r}"
            )
        if sha256_file(os.path.join(path, file)) != want.get("sha256"):
            raise Damaged(f"{file}: its SHA-256 differs from {SIDECAR} (changed or corrupt)")
    _verified[key] = record
    return record


def newest_complete(
    folder: str, *, skipped: Callable[[str, str], None] = lambda path, why: None, upto: Optional[int] = None
) -> Optional[tuple[int, dict[str, Any]]]:
    """``(step, sidecar)`` of the newest complete checkpoint under ``folder`` (at most ``upto``),
    or None; each newer damaged one is reported to ``skipped(path, reason)``."""
    for step in steps(folder):
        if upto is not None and step > upto:
            continue
        path = checkpoint_path(folder, step)
        try:
            return step, read(path)
        except Damaged as damage:
            skipped(path, str(damage))
        except OSError as error:
            skipped(path, f"cannot be read ({error.strerror or error})")
    return None


def prune(folder: str, *, keep: int, newest: int, protect: Iterable[int] = ()) -> list[str]:
    """Retention: keep the ``keep`` newest checkpoints with a sidecar up to step ``newest`` (and
    the ``protect``-ed steps, e.g. phase ends); remove every older ``step-N``. Returns the removed.

    Checkpoints newer than ``newest`` are never touched: they belong to no save of this run.
    """
    protected = set(protect)
    held = [
        s
        for s in steps(folder)
        if s <= newest and os.path.isfile(os.path.join(checkpoint_path(folder, s), SIDECAR))
    ]
    if len(held) <= keep:
        return []
    oldest_kept = held[keep - 1]
    removed = []
    for step in steps(folder):
        if step < oldest_kept and step not in protected:
            path = checkpoint_path(folder, step)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
