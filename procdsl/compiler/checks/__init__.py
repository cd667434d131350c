"""Structural checks over an elaborated curriculum, one small module per rule (graphql-core style).

Each check is a function ``(Context) -> list[Diagnostic]``; :data:`CHECKS` is the one place
they are registered, and the compiler runs them all so every error of a file is reported.
Codes that need a partly built value (a `rest` share, a transfer map, the budget arithmetic) are
raised where it is built; ``raised_in`` of :mod:`procdsl.lang.codes` says where each code is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from procdsl.compiler.phases import ElabPhase
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Diagnostic, Span
from procdsl.lang.nodes import Definition
from procdsl.plan.model import Runtime
from procdsl.plan.sources import SourceBase


@dataclass
class Context:
    phases: list[ElabPhase]
    sources: dict[str, Optional[SourceBase]]  # name -> validated model (None if invalid)
    definitions: dict[str, Definition]  # name -> its `source` definition
    tokenizer_source: Optional[str] = None  # `bpe(train_on=…)` counts as a use
    root_file: Optional[str] = None  # the file being compiled (imports are libraries)
    tokenizer_span: Optional[Span] = None  # the `tokenizer = …` setting, for E209
    budget: Optional[int] = None  # the curriculum's `budget` (None: none, or unreadable)
    runtime: Optional[Runtime] = None  # the validated `runtime { … }`
    runtime_block: Optional[n.RuntimeBlock] = None  # its block as written, for spans
    model: Any = None  # the validated model (None if invalid)


Check = Callable[[Context], list[Diagnostic]]

from procdsl.compiler.checks import budget as _budget  # noqa: E402  (registered below)
from procdsl.compiler.checks import context as _context  # noqa: E402
from procdsl.compiler.checks import granularity as _granularity  # noqa: E402
from procdsl.compiler.checks import mix as _mix  # noqa: E402
from procdsl.compiler.checks import names as _names  # noqa: E402
from procdsl.compiler.checks import runtime as _runtime  # noqa: E402
from procdsl.compiler.checks import tokenizer as _tokenizer  # noqa: E402
from procdsl.compiler.checks import transfer as _transfer  # noqa: E402
from procdsl.compiler.checks import usage as _usage  # noqa: E402

CHECKS: tuple[Check, ...] = (
    _names.phase_names_are_unique,
    _budget.one_rest_phase,
    _budget.shares_need_a_budget,
    _runtime.runtime_fits_the_plan,
    _mix.mix_sums_to_one,
    _transfer.transfer_needs_previous_phase,
    _context.context_holds_an_example,
    _usage.unused_sources,
    _usage.eval_period_within_phase,
    _usage.eval_source_not_trained_on,
    _granularity.share_is_realised,
    _tokenizer.bpe_trains_on_text,
)


def run_checks(context: Context) -> list[Diagnostic]:
    return [d for check in CHECKS for d in check(context)]
