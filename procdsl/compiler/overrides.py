"""``--set path=value`` overrides (and sweep variants), applied to the AST before elaboration.

Paths are plan paths — ``seed``, ``model.layers``, ``runtime.dtype``, ``sources.NAME.param``,
``phases.NAME.key`` (or the short ``NAME.key``), ``phases.NAME.optimizer.lr`` — and values are
.curr expressions (``500``, ``10%``, ``{dyck: 100%}``, ``cosine(min=0.1)``). Rewriting the
curriculum and compiling it again means every derived field (a phase's tokens, an inherited
seed or batch, totals, the hash) is recomputed and re-validated by the same code as a file.
Setting one of a phase's length keys replaces whichever length it had.

>>> from procdsl.compiler import compile_text
>>> text = '''curriculum c { model = gpt2(layers=2, heads=2, dim=8) context = 16 batch = 2
...   source s = sort(length=4)
...   phase warm { steps = 10 mix = { s: 100% } } }'''
>>> plan = compile_text(text, "c.curr", ["phases.warm.tokens=1000", "seed=3", "model.layers=4"]).plan
>>> plan.phases[0].steps, plan.phases[0].tokens, plan.phases[0].seed, plan.model.layers
(32, 1024, 3, 4)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional, TypeVar

from procdsl.compiler.phases import LENGTH_KEYS, PHASE_KEYS
from procdsl.compiler.settings import CURRICULUM_KEYS, RUNTIME_KEYS
from procdsl.compiler.suggest import did_you_mean, one_of
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Diagnostic, Span
from procdsl.lang.parse import SyntaxDiagnostic, parse_module

OVERRIDE_FILE = "--set"
#: settings whose default is a call, so `optimizer.lr=…` works when `optimizer` is not written
IMPLICIT_CALLS = {"optimizer": "adamw", "schedule": "constant"}


@dataclass(frozen=True)
class Override:
    path: tuple[str, ...]
    value: n.Expr
    span: Span  # the whole `path=value`, for "names nothing" errors

    @staticmethod
    def parse_all(items: Sequence[str], texts: dict[str, str]) -> tuple[list[Override], list[Diagnostic]]:
        """Parse ``path=value`` strings; their text is kept under the pseudo-file ``--set``."""
        texts[OVERRIDE_FILE] = "\n".join(items)
        out, problems = [], []
        for line, item in enumerate(items, start=1):
            whole = Span(OVERRIDE_FILE, line, 1, line, len(item) + 1)
            path, eq, value = item.partition("=")
            keys = tuple(path.strip().split("."))
            if not eq or not value.strip() or not all(k.isidentifier() for k in keys):
                problems.append(
                    Diagnostic(
                        codes.BAD_OVERRIDE,
                        f"cannot read override `{item}`",
                        whole,
                        help="write `--set path=value`, e.g. `--set phases.warmup.steps=500`",
                    )
                )
                continue
            try:
                expr = parse_value(value, line, len(path) + 2)
            except SyntaxDiagnostic as exc:
                problems.append(exc.diagnostic)
                continue
            out.append(Override(keys, expr, whole))
        return out, problems


def parse_value(text: str, line: int = 1, column: int = 1, file: str = OVERRIDE_FILE) -> n.Expr:
    """Parse a lone .curr expression, with spans placed at (line, column) of ``file``."""
    prefix = "let _="
    pad = max(0, column - 1 - len(prefix))
    source = "\n" * (line - 1) + prefix + " " * pad + text
    module, _ = parse_module(source, file, comments=False)
    return module.definitions[0].value


def apply_overrides(
    curriculum: n.Curriculum, overrides: Sequence[Override], diagnostics: list[Diagnostic]
) -> Optional[n.Curriculum]:
    """The curriculum with every override applied, or None after reporting a bad path."""
    ok = True
    for override in overrides:
        patched = _apply(curriculum, override, diagnostics)
        if patched is None:
            ok = False
        else:
            curriculum = patched
    return curriculum if ok else None


def _nothing(override: Override, why: str, diagnostics: list[Diagnostic], help: Optional[str] = None) -> None:
    diagnostics.append(
        Diagnostic(
            codes.OVERRIDE_NAMES_NOTHING,
            f"`{'.'.join(override.path)}` names nothing: {why}",
            override.span,
            help=help,
        )
    )


def _apply(cur: n.Curriculum, ov: Override, diagnostics: list[Diagnostic]) -> Optional[n.Curriculum]:
    head, rest = ov.path[0], ov.path[1:]
    phase_names = [p.name for p in cur.phases]
    if head in CURRICULUM_KEYS:
        settings = _patch_settings(cur.settings, head, rest, ov, diagnostics, span=cur.name_span)
        return None if settings is None else dataclasses.replace(cur, settings=settings)
    if head == "runtime":
        if not rest or rest[0] not in RUNTIME_KEYS:
            _nothing(
                ov, "not a runtime setting", diagnostics, help=f"runtime settings are {one_of(RUNTIME_KEYS)}"
            )
            return None
        block = cur.runtime or n.RuntimeBlock((), cur.name_span)
        settings = _patch_settings(block.settings, rest[0], rest[1:], ov, diagnostics, span=block.span)
        if settings is None:
            return None
        patched = dataclasses.replace(block, settings=settings)
        body = tuple(patched if b is block else b for b in cur.body)  # the formatter's view must agree
        return dataclasses.replace(cur, runtime=patched, body=body)
    if head == "sources":
        return _patch_source(cur, rest, ov, diagnostics)
    if head == "phases" or head in phase_names:
        keys = rest if head == "phases" else ov.path
        if not keys or keys[0] not in phase_names:
            shown = keys[0] if keys else ""
            diagnostics.append(
                Diagnostic(
                    codes.UNDEFINED_PHASE,
                    f"undefined phase `{shown}`",
                    ov.span,
                    help=did_you_mean(shown, phase_names) or f"phases are {one_of(phase_names)}",
                )
            )
            return None
        return _patch_phase(cur, keys[0], keys[1:], ov, diagnostics)
    allowed = list(CURRICULUM_KEYS) + ["runtime", "sources", "phases"] + phase_names
    _nothing(
        ov,
        f"`{head}` is not a plan field",
        diagnostics,
        help=did_you_mean(head, allowed) or f"paths start with {one_of(allowed)}",
    )
    return None


def _patch_phase(
    cur: n.Curriculum, name: str, keys: tuple[str, ...], ov: Override, diagnostics: list[Diagnostic]
) -> Optional[n.Curriculum]:
    if not keys or keys[0] not in PHASE_KEYS:
        shown = keys[0] if keys else ""
        _nothing(
            ov,
            f"phases have no `{shown}`",
            diagnostics,
            help=did_you_mean(shown, PHASE_KEYS) or f"phase keys are {one_of(PHASE_KEYS)}",
        )
        return None
    phases = list(cur.phases)
    index = next(i for i, p in enumerate(phases) if p.name == name)
    phase = phases[index]
    settings = phase.settings
    if keys[0] in LENGTH_KEYS:  # a new length replaces the old one, whatever key it used
        settings = tuple(s for s in settings if s.key not in LENGTH_KEYS)
    patched = _patch_settings(settings, keys[0], keys[1:], ov, diagnostics, span=phase.name_span)
    if patched is None:
        return None
    phases[index] = dataclasses.replace(phase, settings=patched)
    return dataclasses.replace(cur, phases=tuple(phases))


def _patch_source(
    cur: n.Curriculum, keys: tuple[str, ...], ov: Override, diagnostics: list[Diagnostic]
) -> Optional[n.Curriculum]:
    names = [d.name for d in cur.definitions if d.kind == "source"]
    if len(keys) < 2 or keys[0] not in names:
        shown = keys[0] if keys else ""
        _nothing(
            ov,
            f"no source `{shown}` defined in this curriculum",
            diagnostics,
            help=did_you_mean(shown, names)
            or "override parameters of sources defined inside the curriculum block, as `sources.NAME.param=value`",
        )
        return None
    definitions = list(cur.definitions)
    index = next(i for i, d in enumerate(definitions) if d.kind == "source" and d.name == keys[0])
    value = _patch_expr(definitions[index].value, keys[1:], ov, diagnostics)
    if value is None:
        return None
    definitions[index] = dataclasses.replace(definitions[index], value=value)
    return dataclasses.replace(cur, definitions=tuple(definitions))


def _patch_settings(
    settings: tuple[n.Setting, ...],
    key: str,
    rest: tuple[str, ...],
    ov: Override,
    diagnostics: list[Diagnostic],
    span: Span,
) -> Optional[tuple[n.Setting, ...]]:
    existing = next((s for s in settings if s.key == key), None)
    if existing is None and rest and key in IMPLICIT_CALLS:  # patch the default: `adamw` → `adamw(lr=…)`
        existing = n.Setting(key, ov.span, n.Name(IMPLICIT_CALLS[key], ov.span), ov.span)
        settings = settings + (existing,)
    if existing is None:
        if rest:
            _nothing(
                ov,
                f"`{key}` is not set, so it has no `{rest[0]}`",
                diagnostics,
                help=f"set `{key}` itself first",
            )
            return None
        return settings + (n.Setting(key, ov.span, ov.value, ov.span),)
    if (
        rest
        and isinstance(existing.value, n.Name)
        and existing.value.name == "continue"
        and key == "optimizer"
    ):
        _nothing(
            ov,
            "this phase continues the previous phase's optimizer (`optimizer = continue`), "
            f"which has no `{rest[0]}` of its own",
            diagnostics,
            help=f"change it where the optimizer is created, or replace it: "
            f'--set {".".join(ov.path[: -len(rest)])}="adamw({rest[0]}=…)"',
        )
        return None
    value = (
        _patch_expr(existing.value, rest, ov, diagnostics)
        if existing.value is not None
        else (ov.value if not rest else None)
    )
    if value is None:
        return None
    return tuple(dataclasses.replace(s, value=value) if s is existing else s for s in settings)


def _patch_expr(
    expr: n.Expr, keys: tuple[str, ...], ov: Override, diagnostics: list[Diagnostic]
) -> Optional[n.Expr]:
    """``expr`` with the value at ``keys`` (call keyword arguments, map entries) replaced."""
    if not keys:
        return ov.value
    key = keys[0]
    if isinstance(expr, n.Name):  # `schedule = cosine` → `cosine(key=…)`
        expr = n.Call(expr.name, expr.span, (), (), expr.span)
    if isinstance(expr, n.Call):
        kwargs = _patch_items(
            expr.kwargs, lambda kw: kw.name, lambda: n.KwArg(key, ov.span, ov.value), keys, ov, diagnostics
        )
        return None if kwargs is None else dataclasses.replace(expr, kwargs=kwargs)
    if isinstance(expr, n.MapExpr):
        entries = _patch_items(
            expr.entries,
            lambda entry: entry.key,
            lambda: n.Entry(key, ov.span, ov.value),
            keys,
            ov,
            diagnostics,
        )
        return None if entries is None else dataclasses.replace(expr, entries=entries)
    _nothing(ov, f"the value there has no field `{key}`", diagnostics)
    return None


Item = TypeVar("Item", n.KwArg, n.Entry)


def _patch_items(
    items: tuple[Item, ...],
    name_of: Callable[[Item], str],
    new: Callable[[], Item],
    keys: tuple[str, ...],
    ov: Override,
    diagnostics: list[Diagnostic],
) -> Optional[tuple[Item, ...]]:
    """``items`` (a call's keyword arguments or a map's entries) with the one named ``keys[0]``
    patched below, or a new one appended when it is the last key."""
    key, rest = keys[0], keys[1:]
    for i, item in enumerate(items):
        if name_of(item) == key:
            value = _patch_expr(item.value, rest, ov, diagnostics)
            if value is None:
                return None
            return items[:i] + (dataclasses.replace(item, value=value),) + items[i + 1 :]
    if rest:
        _nothing(ov, f"there is no `{key}` to descend into", diagnostics)
        return None
    return items + (new(),)
