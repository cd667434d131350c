"""How a command refuses: the two exceptions any module may raise for the command line.

:class:`UsageError` — the request cannot be served as given (an unknown phase, source or
variant; options that exclude each other): ``error: …`` on stderr, exit 2.
:class:`CommandError` — the request is well formed but cannot be carried out (a package
missing, a run directory locked, a file not writable): ``error: …`` on stderr, exit 1.

The modules that own a command's logic raise them; only :mod:`procdsl.cli` turns them into
output and exit codes (errors are values until the CLI prints them).
"""

from __future__ import annotations


class UsageError(Exception):
    """A request the command cannot serve as given (exit 2)."""


class CommandError(Exception):
    """A well-formed request that failed (exit 1)."""
