"""Read a .curr file and, transitively, every file it imports.

Each file is parsed and lowered once. Imports resolve against the importing file's directory;
a missing or unreadable file or one not named ``*.curr`` (E108), a cycle (E307, naming the
cycle) or a chain deeper than :data:`~procdsl.limits.MAX_IMPORT_DEPTH` (E314) is a diagnostic at
the import, so the text of a file that is not a library is never read, let alone quoted.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.curr").write_text('import "b.curr"\\n')
>>> _ = (d / "b.curr").write_text('import "a.curr"\\n')
>>> [x.code for x in load(str(d / "a.curr")).diagnostics]
['E307']
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic, Span
from procdsl.lang.nodes import Module
from procdsl.lang.parse import BOM, SyntaxDiagnostic, parse_module
from procdsl.limits import MAX_IMPORT_DEPTH, MAX_SOURCE_BYTES


@dataclass
class Program:
    """The root module and everything it imports, with each file's text for rendering."""

    root: Optional[Module]
    modules: dict[str, Module] = field(default_factory=dict)  # display path -> module
    texts: dict[str, str] = field(default_factory=dict)  # display path -> text
    imports: dict[str, list[str]] = field(default_factory=dict)  # display path -> imported paths
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: texts that stand for files on disk (an editor's unsaved buffers), keyed by real path
    open_files: Mapping[str, str] = field(default_factory=dict)
    parsed: set[str] = field(default_factory=set)  # real paths of the modules (each file once)


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, word in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a fifo (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def read_source(path: str) -> tuple[Optional[str], Optional[str]]:
    """(text, None) or (None, reason) — a file that cannot be read is a diagnostic, not a crash.

    Only a regular file of at most :data:`~procdsl.limits.MAX_SOURCE_BYTES` of UTF-8 text without
    NUL bytes is read (``/dev/zero`` or a fifo would never end); a leading byte-order mark is
    dropped, so line and column numbers match what an editor shows.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a fifo must not block the open
    except FileNotFoundError:
        return None, "file not found"
    except IsADirectoryError:
        return None, "is a directory"
    except OSError as exc:
        return None, exc.strerror or str(exc)
    except ValueError:  # e.g. a NUL byte in the path
        return None, "not a valid path"
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return None, f"{_kind(mode)}, not a regular file"
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        return None, exc.strerror or str(exc)
    finally:
        os.close(fd)
    if len(data) > MAX_SOURCE_BYTES:
        return None, f"larger than {MAX_SOURCE_BYTES // 2**20} MiB, the limit for a .curr file"
    nul = data.find(0)
    if nul >= 0:
        return None, f"a binary file, not .curr text (a NUL byte at {nul})"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    return (text[1:] if text.startswith(BOM) else text), None


def load_text(
    text: str, path: str, program: Optional[Program] = None, *, open_files: Optional[Mapping[str, str]] = None
) -> Program:
    """Load ``text`` as if it were the file ``path``. Its imports are read from disk, except
    those in ``open_files`` (:func:`real_path` → text: what an editor shows of a file that is
    open and perhaps not saved), whose text stands for the file's."""
    program = program or Program(root=None)
    if open_files is not None:
        program.open_files = open_files
    program.root = _load(program, path, text, stack=[])
    return program


def load(path: str) -> Program:
    text, reason = read_source(path)
    program = Program(root=None)
    if text is None:
        program.diagnostics.append(
            Diagnostic(
                codes.UNREADABLE_FILE,
                f"cannot read {path}: {reason}",
                Span.point(path),
                help="check the path",
            )
        )
        return program
    return load_text(text, path, program)


def real_path(path: str) -> str:
    """The key of a file among others: its real path (links resolved), so two names of one
    file are one file."""
    try:
        return os.path.realpath(path)
    except ValueError:  # a NUL byte: no real file can have this name, so it is its own key
        return path


def _load(program: Program, path: str, text: str, stack: list[str]) -> Optional[Module]:
    program.texts[path] = text
    try:
        module, _ = parse_module(text, path, comments=False)
    except SyntaxDiagnostic as exc:
        program.diagnostics.append(exc.diagnostic)
        return None
    program.modules[path] = module
    program.imports[path] = []
    key = real_path(path)
    program.parsed.add(key)
    chain = stack + [key]
    for imp in module.imports:
        target = os.path.normpath(os.path.join(os.path.dirname(path), imp.path))
        program.imports[path].append(target)
        target_key = real_path(target)
        if target_key in chain:
            names = [os.path.basename(p) for p in chain[chain.index(target_key) :]]
            cycle = " → ".join(names + [os.path.basename(target)])
            program.diagnostics.append(
                Diagnostic(
                    codes.IMPORT_CYCLE,
                    f"import cycle: {cycle}",
                    imp.span,
                    help="move the shared definitions into a library file that both import",
                )
            )
            continue
        if target_key in program.parsed:
            continue
        if len(chain) >= MAX_IMPORT_DEPTH:
            program.diagnostics.append(
                Diagnostic(
                    codes.IMPORTS_TOO_DEEP,
                    f"imports nest more than {MAX_IMPORT_DEPTH} files deep",
                    imp.span,
                    help="import the libraries you need directly from this file instead of through a chain",
                )
            )
            continue
        if not target.endswith(".curr"):
            program.diagnostics.append(
                Diagnostic(
                    codes.UNREADABLE_IMPORT,
                    f'cannot import "{imp.path}": only .curr files can be imported',
                    imp.span,
                    help="name a library file ending in `.curr`",
                )
            )
            continue
        imported = program.open_files.get(target_key)
        if imported is None:
            imported, reason = read_source(target)
        if imported is None:
            program.diagnostics.append(
                Diagnostic(
                    codes.UNREADABLE_IMPORT,
                    f'cannot import "{imp.path}": {reason} ({target})',
                    imp.span,
                    help="import paths are relative to the importing file's directory",
                )
            )
            continue
        _load(program, target, imported, chain)
    return module
