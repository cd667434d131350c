"""Which files a command may read and where it may write: the command line's path rules.

``check`` and ``fmt`` walk directories without following symlinks out of the tree they were
given (a link inside the tree to a file inside it is fine); run directories are named only by
safe names, so no value in a ``.curr`` file can choose where a run writes; ``--out`` and ``-o``
are checked before anything is written.

>>> import os, tempfile
>>> root = tempfile.mkdtemp(); outside = tempfile.mkdtemp()
>>> _ = open(os.path.join(root, "a.curr"), "w"), open(os.path.join(outside, "b.curr"), "w")
>>> os.symlink(os.path.join(outside, "b.curr"), os.path.join(root, "link.curr"))
>>> found = curr_files([root])
>>> [os.path.basename(f) for f in found.files], [os.path.basename(f) for f in found.skipped]
(['a.curr'], ['link.curr'])
>>> safe_name('seed=0,warm.mix={ a: 100% }'), safe_name('x="/../../etc"'), safe_name("..")
('seed=0,warm.mix=a-100%', 'x=_.._.._etc', '_')
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Found:
    files: list[str] = field(default_factory=list)  # in a stable (sorted) order
    skipped: list[str] = field(default_factory=list)  # symlinks leading out of the walked tree
    missing: list[str] = field(default_factory=list)  # paths given that do not exist


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def curr_files(paths: Sequence[PathLike]) -> Found:
    """Every ``*.curr`` under ``paths``: files as given, directories walked without entering
    symlinked directories and without taking a symlinked file whose target is outside the tree."""
    found = Found()
    for given in (os.fspath(path) for path in paths):
        if not os.path.isdir(given):
            (found.files if os.path.lexists(given) else found.missing).append(given)
            continue
        root = os.path.realpath(given)
        walked = []
        for folder, _dirs, names in os.walk(given):  # followlinks=False: linked directories are not entered
            for name in names:
                full = os.path.join(folder, name)
                if not name.endswith(".curr") or os.path.isdir(full):
                    continue
                if os.path.islink(full) and not _inside(os.path.realpath(full), root):
                    found.skipped.append(full)
                else:
                    walked.append(full)
        found.files += sorted(walked)
    return found


_REPLACE = (
    (" ", ""),
    ("{", ""),
    ("}", ""),
    ("[", ""),
    ("]", ""),
    ("(", ""),
    (")", ""),
    ('"', ""),
    (":", "-"),
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,%+@-]")
MAX_NAME_BYTES = 200  # file systems allow 255; room for a temporary file's prefix and suffix


def safe_name(text: str) -> str:
    """One directory name for ``text``: readable, never a path separator, never ``.`` or ``..``,
    never hidden, at most :data:`MAX_NAME_BYTES` (a long name ends in a hash of the whole)."""
    name = text
    for old, new in _REPLACE:
        name = name.replace(old, new)
    name = _UNSAFE.sub("_", name)
    if name.startswith("."):
        name = "_" + name.lstrip(".")
    name = name or "_"
    if len(name) > MAX_NAME_BYTES:
        name = name[: MAX_NAME_BYTES - 13] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return name


def out_dir_problem(out: str) -> Optional[str]:
    """Why ``out`` cannot be a run directory, or None: it must be a directory or not exist yet."""
    if not out.strip():
        return "--out is empty: name a directory (or leave --out out for runs/<name>)"
    if os.path.lexists(out) and not os.path.isdir(out):
        return f"--out {out} exists and is not a directory: name a directory"
    return None


def format_files(
    files: Sequence[str], *, check_only: bool, say: Callable[[str], None], warn: Callable[[str], None]
) -> tuple[int, int]:
    """``procdsl fmt``: each file in the canonical layout (:mod:`procdsl.lang.fmt`), rewritten
    whole or not at all — or with ``check_only`` left as it is; ``say`` names each file that
    changed (or would), ``warn`` each that cannot be read, parsed or written. Returns
    ``(changed, failed)``."""
    from procdsl.atomic import atomic_write
    from procdsl.compiler.load import read_source
    from procdsl.lang.diagnostics import render_text
    from procdsl.lang.fmt import format_text
    from procdsl.lang.parse import SyntaxDiagnostic

    changed = failed = 0
    for file in files:
        text, reason = read_source(file)
        if text is None:
            warn(f"{file}: cannot read: {reason}")
            failed += 1
            continue
        try:
            formatted = format_text(text, file)
        except SyntaxDiagnostic as exc:
            warn(render_text(exc.diagnostic, text))
            failed += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if check_only:
            say(f"would reformat {file}")
            continue
        try:
            atomic_write(file, formatted)  # a full disk leaves the file as it was
        except OSError as exc:
            warn(f"{file}: cannot write: {exc.strerror or exc}")
            failed += 1
            continue
        say(f"reformatted {file}")
    return changed, failed


def write_output(path: Union[str, os.PathLike[str]], text: str) -> None:
    """Write an output file the user named (``-o``) whole or not at all, creating its folder;
    UsageError when it cannot be a file, CommandError when the write fails."""
    from procdsl.atomic import atomic_write
    from procdsl.errors import CommandError, UsageError

    if problem := output_file_problem(str(path)):
        raise UsageError(problem)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, text)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def output_file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be written as an output file, or None."""
    if not path.strip():
        return "-o is empty: name a file"
    if os.path.isdir(path):
        return f"-o {path} is a directory: name a file, e.g. {os.path.join(path, 'plan.json')}"
    return None


__all__ = [
    "Found",
    "MAX_NAME_BYTES",
    "curr_files",
    "format_files",
    "out_dir_problem",
    "output_file_problem",
    "safe_name",
    "write_output",
]
