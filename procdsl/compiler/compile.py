"""The compiler's entry points: a .curr file (or text) → a :class:`CompileResult`.

>>> text = '''curriculum tiny {
...   model = gpt2(layers=2, heads=2, dim=32)
...   context = 128
...   batch = 8
...   source s = sort(length=16, vocab=20)
...   phase warm { tokens = 100K  mix = { s: 100% } }
... }'''
>>> result = compile_text(text, "tiny.curr")
>>> result.ok, result.plan.phases[0].steps, result.plan.phases[0].tokens, len(result.plan.hash)
(True, 98, 100352, 64)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import ValidationError

from procdsl.compiler.checks import Context, run_checks
from procdsl.compiler.lengths import assign_lengths
from procdsl.compiler.load import Program, load, load_text
from procdsl.compiler.overrides import Override, apply_overrides
from procdsl.compiler.phases import ElabPhase, elaborate_phase, read_schedule
from procdsl.compiler.scope import Scope, build_scope
from procdsl.compiler.settings import (
    CURRICULUM_KEYS,
    build_model,
    build_runtime,
    build_tokenizer,
    unique_settings,
)
from procdsl.compiler.sources import RuleResolver, build_source
from procdsl.compiler.sweep import expand_sweep
from procdsl.compiler.values import Reader
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import CompileError, Diagnostic, Span, errors, sort_key
from procdsl.plan import MixRamp, Phase, Plan, with_hash
from procdsl.plan.model import default_layout
from procdsl.plan.sources import SourceBase


@dataclass
class CompileResult:
    """What compiling one file gives: its plan(s) or the reasons there is none."""

    file: str
    plans: list[Plan] = field(default_factory=list)  # one per sweep variant (one without sweep)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # every file read, for rendering frames
    sources: dict[str, SourceBase] = field(default_factory=dict)  # valid sources (libraries too)
    is_library: bool = False

    @property
    def ok(self) -> bool:
        return not errors(self.diagnostics)

    @property
    def plan(self) -> Optional[Plan]:
        return self.plans[0] if self.plans else None


def compile_file(path: str, overrides: Sequence[str] = ()) -> CompileResult:
    """Compile ``path`` (and its imports), applying ``--set`` style overrides."""
    return _guarded(path, lambda: _compile(load(path), path, overrides))


def compile_text(text: str, file: str, overrides: Sequence[str] = ()) -> CompileResult:
    """Compile ``text`` as if it were the file ``file`` (imports are read relative to it)."""
    return _guarded(file, lambda: _compile(load_text(text, file), file, overrides))


def compile_program(program: Program, file: str) -> CompileResult:
    """Compile a program already loaded with :func:`~procdsl.compiler.load.load_text`: the
    language server keeps the parsed modules (definitions, spans) and must not parse twice."""
    return _guarded(file, lambda: _compile(program, file, ()))


def compile_plan(path: str, overrides: Sequence[str] = ()) -> Plan:
    """The single plan of a file; raises CompileError with every diagnostic if there is none."""
    result = compile_file(path, overrides)
    if not result.ok or result.plan is None:
        raise CompileError(
            errors(result.diagnostics)
            or [Diagnostic(codes.MISSING_REQUIRED, "the file has no curriculum", Span.point(path))]
        )
    return result.plan


def _guarded(file: str, build: Callable[[], CompileResult]) -> CompileResult:
    """A compiler bug is a diagnostic (E399) located at the file, not a traceback: ``check DIR``
    goes on with the next file and ``--format json`` still prints a record for it."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - the last line of defence, by design
        if os.environ.get("PROCDSL_DEBUG"):
            raise
        what = f"{type(exc).__name__}: {exc}"
        return CompileResult(
            file,
            diagnostics=[
                Diagnostic(
                    codes.INTERNAL_ERROR,
                    f"internal error: {what[:200]}",
                    Span.point(file),
                    help="please report this with the file (PROCDSL_DEBUG=1 shows the traceback)",
                )
            ],
        )


def _compile(program: Program, file: str, overrides: Sequence[str]) -> CompileResult:
    result = CompileResult(file, texts=program.texts)
    result.diagnostics += program.diagnostics
    root = program.root
    if root is None or errors(program.diagnostics):
        return _finish(result)
    parsed: list[Override] = []
    if overrides:
        parsed, problems = Override.parse_all(overrides, result.texts)
        result.diagnostics += problems
        if problems:
            return _finish(result)
    curriculum = root.curriculum
    if curriculum is None:  # a library (it has no extra curricula either)
        result.is_library = True
        diagnostics: list[Diagnostic] = []
        result.sources = _definitions(program, diagnostics)[1]
        result.diagnostics += diagnostics
        return _finish(result)
    for extra in root.extra_curricula:
        result.diagnostics.append(
            Diagnostic(
                codes.DUPLICATE_NAME,
                f"a second curriculum `{extra.name}` in one file",
                extra.name_span,
                help="put each curriculum in its own file; share definitions with `import`",
                notes=(("the first curriculum", curriculum.name_span),),
            )
        )
    variants = (
        expand_sweep(curriculum, result.diagnostics) if curriculum.sweep else [(curriculum.name, {}, [])]
    )
    found: list[list[Diagnostic]] = []
    for name, variant, sweep_overrides in variants:
        diagnostics = []
        patched = apply_overrides(curriculum, list(sweep_overrides) + parsed, diagnostics)
        if patched is not None:
            plan = _compile_curriculum(program, patched, name, variant, diagnostics, result)
            if plan is not None:
                result.plans.append(plan)
        found.append(diagnostics)
    result.diagnostics += _merge_variants(found)
    if errors(result.diagnostics):
        result.plans = []
    return _finish(result)


def _merge_variants(found: list[list[Diagnostic]]) -> list[Diagnostic]:
    """Each error once, from whichever variant has it; a warning only if every variant has it
    (a sweep over `mix` leaves each source unused in some variant, yet the file uses them all)."""
    key = lambda d: (d.code, d.message, d.span)  # noqa: E731
    in_all = set.intersection(*({key(d) for d in ds} for ds in found)) if found else set()
    merged, seen = [], set()
    for d in (d for ds in found for d in ds):
        if key(d) in seen or (d.severity == "warning" and key(d) not in in_all):
            continue
        seen.add(key(d))
        merged.append(d)
    return merged


def _finish(result: CompileResult) -> CompileResult:
    result.diagnostics.sort(key=sort_key)
    return result


def _definitions(
    program: Program, diagnostics: list[Diagnostic], curriculum: Optional[n.Curriculum] = None
) -> tuple[Scope, dict[str, SourceBase], Reader]:
    """Scope, validated sources and the reader, for a root module (its curriculum patched)."""
    root = program.root
    if curriculum is not None and root is not None:
        program = Program(
            root=n.Module(root.file, root.imports, root.definitions, curriculum, root.body),
            modules=program.modules,
            texts=program.texts,
            imports=program.imports,
        )
    scope = build_scope(program, diagnostics)
    reader = Reader(scope.lets, diagnostics)
    rules = RuleResolver(scope, reader)
    for definition in scope.rules.values():
        rules.chain(n.Name(definition.name, definition.name_span))
    for definition in scope.lets.values():
        reader.resolve(n.Name(definition.name, definition.name_span))
    sources: dict[str, SourceBase] = {}
    for name, definition in scope.sources.items():
        built = build_source(definition, rules, reader)
        if built is not None:
            sources[name] = built
    return scope, sources, reader


def _compile_curriculum(
    program: Program,
    curriculum: n.Curriculum,
    name: str,
    variant: dict[str, str],
    diagnostics: list[Diagnostic],
    result: CompileResult,
) -> Optional[Plan]:
    scope, sources, reader = _definitions(program, diagnostics, curriculum)
    result.sources = sources
    settings = unique_settings(curriculum.settings, CURRICULUM_KEYS, "curriculum", reader)
    for kind in (n.RuntimeBlock, n.SweepBlock):
        for extra in [b for b in curriculum.body if isinstance(b, kind)][1:]:
            reader.error(
                codes.GIVEN_TWICE,
                f"a second `{'runtime' if kind is n.RuntimeBlock else 'sweep'}` block in this curriculum",
                extra.span,
                help="merge the two blocks into one",
            )
    for key in ("model", "context", "batch"):
        if key not in settings:
            example = {
                "model": "model = gpt2(layers=12, heads=12, dim=768)",
                "context": "context = 1024",
                "batch": "batch = 32",
            }[key]
            reader.error(
                codes.MISSING_REQUIRED,
                f"curriculum `{curriculum.name}` has no `{key}`",
                curriculum.name_span,
                help=f"add `{example}`",
            )
    value = lambda key: settings[key].expr  # noqa: E731
    seed = reader.integer(value("seed"), "seed", minimum=0) if "seed" in settings else 0
    model = build_model(value("model"), reader) if "model" in settings else None
    context = reader.integer(value("context"), "context", minimum=1) if "context" in settings else None
    batch = reader.integer(value("batch"), "batch", minimum=1) if "batch" in settings else None
    budget = reader.count(value("budget"), "budget", "tokens") if "budget" in settings else None
    tokenizer = (
        build_tokenizer(value("tokenizer"), reader, settings["tokenizer"].span.file, set(scope.sources))
        if "tokenizer" in settings
        else build_tokenizer(n.Name("bytes", curriculum.name_span), reader, "", set())
    )
    runtime = build_runtime(curriculum.runtime, reader)

    if not curriculum.phases:
        reader.error(
            codes.MISSING_REQUIRED,
            f"curriculum `{curriculum.name}` has no phases",
            curriculum.name_span,
            help="add `phase NAME { steps = N  mix = { SOURCE: 100% } }`",
        )
    defaults = {"batch": batch, "context": context, "seed": seed}
    phases = [elaborate_phase(node, defaults, set(scope.sources), reader) for node in curriculum.phases]
    assign_lengths(phases, budget, settings["budget"].span if "budget" in settings else None, reader)
    schedules = [read_schedule(p.schedule_expr, p.steps, reader) if p.steps else None for p in phases]
    bpe_source = getattr(tokenizer, "train_on", None)
    diagnostics += run_checks(
        Context(
            phases,
            dict(sources),
            dict(scope.sources),
            bpe_source,
            root_file=program.root.file if program.root else None,
            tokenizer_span=settings["tokenizer"].expr.span if "tokenizer" in settings else None,
            budget=budget,
            runtime=runtime,
            runtime_block=curriculum.runtime,
            model=model,
        )
    )
    if errors(diagnostics) or None in (model, context, batch, seed, tokenizer, runtime):
        return None
    try:
        plan = Plan(
            name=name,
            seed=seed,
            model=model,
            tokenizer=tokenizer,
            context=context,
            batch=batch,
            budget=budget,
            runtime=runtime,
            sources=sources,
            phases=tuple(_phase(p, s, sources) for p, s in zip(phases, schedules)),
            total_steps=sum(p.settled_steps for p in phases),
            total_tokens=sum(p.settled_steps * p.tokens_per_step for p in phases),
            variant=variant,
        )
    except ValidationError as exc:  # the checks above should make this unreachable: say so plainly
        diagnostics.append(
            Diagnostic(
                codes.INTERNAL_ERROR,
                f"internal error: the plan failed validation: {exc.errors()[0]['msg']}",
                curriculum.name_span,
                help="please report this with the file",
            )
        )
        return None
    return with_hash(plan)


def _phase(p: ElabPhase, schedule: Any, sources: dict) -> Phase:
    mix = {e.source: e.share for e in p.mix}
    ramp = None
    if p.mix_end is not None:
        end = {e.source: e.share for e in p.mix_end}
        ramp = MixRamp(start=mix, end=end)
        mix = {
            s: (mix.get(s, 0.0) + end.get(s, 0.0)) / 2 for s in list(mix) + [s for s in end if s not in mix]
        }
    layout = p.layout or default_layout(sources[s] for s in mix)
    return Phase(
        name=p.name,
        steps=p.settled_steps,
        tokens=p.settled_steps * p.tokens_per_step,
        batch=p.batch,
        context=p.context,
        seed=p.seed,
        mix=mix,
        mix_ramp=ramp,
        loss=p.loss,
        layout=layout,
        transfer=p.transfer,
        optimizer=p.optimizer,
        schedule=schedule,
        eval=tuple(e for e, _ in p.evals),
        lm_eval=p.lm_eval,
    )
