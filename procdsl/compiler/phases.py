"""``phase NAME { … }`` → an :class:`ElabPhase`: every key read and typed, spans kept for checks.

Step counts are settled afterwards by :mod:`procdsl.compiler.lengths` (a ``rest`` phase needs
all the others first); structural checks then read the elaborated phases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from procdsl.compiler.settings import unique_settings
from procdsl.compiler.suggest import did_you_mean, one_of
from procdsl.compiler.values import Reader, describe
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lang.fmt import format_expr
from procdsl.plan.model import (
    COMPONENTS,
    AdamW,
    Constant,
    ContinueOptimizer,
    Cosine,
    Eval,
    Linear,
    LmEval,
    Perturb,
    Transfer,
    Wsd,
)

PHASE_KEYS = (
    "steps",
    "tokens",
    "share",
    "length",
    "batch",
    "context",
    "seed",
    "mix",
    "loss",
    "layout",
    "transfer",
    "optimizer",
    "schedule",
)
LENGTH_KEYS = ("steps", "tokens", "share", "length")
LOSSES = ("full", "output_only", "answer_only")
LAYOUTS = ("padded", "packed")
EVALS = ("perplexity", "accuracy", "attention_entropy", "lm_eval")
#: the evaluations of ``eval { … }`` without a period: run once, at the phase's end
END_EVALS = ("lm_eval",)
SCHEDULES: dict[str, type[Union[Constant, Cosine, Linear, Wsd]]] = {
    "constant": Constant,
    "cosine": Cosine,
    "linear": Linear,
    "wsd": Wsd,
}
TRANSFER_KEYS = ("keep", "reinit", "freeze", "embed_init", "perturb")
PERTURBATIONS = ("shuffle", "noise", "scale")


@dataclass(frozen=True)
class Length:
    """A phase's length as written: ``kind`` (``steps = N``, ``tokens = N``, ``share = P%`` or
    ``length = rest``; ``length = 500 steps`` is ``steps``), its ``amount`` (steps, tokens or a
    fraction; None for ``rest`` or a value already reported as bad), and the setting's span."""

    kind: Literal["steps", "tokens", "share", "rest"]
    amount: Optional[float]
    span: Span


@dataclass
class MixEntry:
    source: str
    span: Span
    share: float


@dataclass
class ElabPhase:
    node: n.Phase
    name: str
    batch: int
    context: int
    seed: int
    length: Optional[Length] = None  # None: missing or given twice (E309)
    steps: Optional[int] = None  # settled by lengths.assign_lengths
    mix: list[MixEntry] = field(default_factory=list)
    mix_end: Optional[list[MixEntry]] = None  # a ramp's end
    mix_span: Optional[Span] = None
    mentioned: set[str] = field(default_factory=set)  # every source the mix names, valid or not
    loss: Optional[str] = None
    layout: Optional[str] = None  # None: the default for the phase's sources (compile._phase)
    transfer: Optional[Transfer] = None
    transfer_span: Optional[Span] = None
    optimizer: Any = None
    optimizer_span: Optional[Span] = None
    schedule_expr: Optional[n.Expr] = None
    evals: list[tuple[Eval, Span]] = field(default_factory=list)
    lm_eval: Optional[LmEval] = None
    ok: bool = True

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.context

    @property
    def settled_steps(self) -> int:
        """``steps`` once :func:`~procdsl.compiler.lengths.assign_lengths` settled them: a plan
        is built only when every phase's were (a ValueError otherwise, a compiler bug)."""
        if self.steps is None:
            raise ValueError(f"phase `{self.name}` has no settled length")
        return self.steps

    def sources_used(self) -> set[str]:
        return {e.source for e in self.mix + (self.mix_end or [])} | self.mentioned


def elaborate_phase(
    phase: n.Phase, defaults: Mapping[str, Optional[int]], sources: set[str], reader: Reader
) -> ElabPhase:
    """Read one phase; ``defaults`` holds the curriculum's ``batch``, ``context`` and ``seed``."""
    before = len(reader.diagnostics)
    settings = unique_settings(phase.settings, PHASE_KEYS, "phase", reader)
    inherited = {}
    for key, minimum in (("batch", 1), ("context", 1), ("seed", None)):
        if key in settings:
            inherited[key] = reader.integer(settings[key].expr, key, minimum=minimum)
        else:
            inherited[key] = defaults.get(key)
    out = ElabPhase(
        phase,
        phase.name,
        inherited["batch"] or 1,
        inherited["context"] or 1,
        inherited["seed"] if inherited["seed"] is not None else 0,
    )
    _read_length(out, settings, reader)
    if "mix" in settings:
        _read_mix(out, settings["mix"], sources, reader)
    else:
        reader.error(
            codes.MISSING_REQUIRED,
            f"phase `{phase.name}` has no `mix`",
            phase.name_span,
            help="say what it trains on, e.g. `mix = { dyck: 100% }`",
        )
    if "loss" in settings:
        out.loss = reader.word(settings["loss"].expr, "loss", LOSSES)
    if "layout" in settings:
        out.layout = reader.word(settings["layout"].expr, "layout", LAYOUTS)
    if "transfer" in settings:
        out.transfer_span = settings["transfer"].span
        out.transfer = read_transfer(settings["transfer"].expr, reader)
    out.optimizer, out.optimizer_span = AdamW(), phase.name_span
    if "optimizer" in settings:
        out.optimizer_span = settings["optimizer"].span
        out.optimizer = read_optimizer(settings["optimizer"].expr, reader)
    out.schedule_expr = settings["schedule"].expr if "schedule" in settings else None
    for block in phase.evals:
        if block.every is None:
            _read_end_evals(block, out, reader)
        else:
            out.evals += _read_evals(block, block.every, sources, reader)
    out.ok = len(reader.diagnostics) == before and all(v is not None for v in inherited.values())
    return out


def _read_length(out: ElabPhase, settings: dict[str, n.Setting], reader: Reader) -> None:
    given = [settings[k] for k in LENGTH_KEYS if k in settings]
    if not given:
        reader.error(
            codes.LENGTH_NOT_ONCE,
            f"phase `{out.name}` has no length",
            out.node.name_span,
            help="add one of `steps = N`, `tokens = N`, `share = P%` or `length = rest`",
        )
        return
    if len(given) > 1:
        reader.error(
            codes.LENGTH_NOT_ONCE,
            f"phase `{out.name}` gives its length twice (`{given[0].key}` and `{given[1].key}`)",
            given[1].span,
            help="keep exactly one of steps, tokens, share, length",
        )
        return
    setting = given[0]
    value = reader.resolve(setting.expr)
    key = setting.key
    if key == "length":
        if isinstance(value, n.Name) and value.name == "rest":
            out.length = Length("rest", None, setting.span)
            return
        if isinstance(value, n.Quantity):
            key = value.unit
        elif isinstance(value, n.Percent):
            key = "share"
        else:
            reader.error(
                codes.WRONG_TYPE,
                f"`length` expects `rest`, a quantity or a share, found {describe(value)}",
                value.span,
                help="write `length = rest`, `length = 500 steps` or `length = 10%`",
            )
            return
    if key == "steps":
        out.length = Length("steps", reader.count(value, "steps", "steps"), setting.span)
    elif key == "tokens":
        out.length = Length("tokens", reader.count(value, "tokens", "tokens"), setting.span)
    elif key == "share":
        share = reader.fraction(value, "share")
        if share is not None and share <= 0:
            reader.error(codes.BELOW_MINIMUM, "`share` must be positive", value.span)
            share = None
        out.length = Length("share", share, setting.span)


def _mix_entries(
    expr: n.Expr, sources: set[str], reader: Reader, mentioned: set[str]
) -> Optional[list[MixEntry]]:
    expr = reader.resolve(expr)
    if not isinstance(expr, n.MapExpr):
        reader.error(
            codes.WRONG_TYPE,
            f"`mix` expects a map of source shares, found {describe(expr)}",
            expr.span,
            help="write e.g. `mix = { dyck: 60%, c4: 40% }`",
        )
        return None
    entries: list[MixEntry] = []
    ok, seen, rest = True, set(), []
    for entry in expr.entries:
        mentioned.add(entry.key)
        if entry.key not in sources:
            reader.undefined_source(entry.key, entry.key_span, sources, "mix")
            ok = False
            continue
        if entry.key in seen:
            reader.error(codes.GIVEN_TWICE, f"source `{entry.key}` appears twice in this mix", entry.key_span)
            ok = False
            continue
        seen.add(entry.key)
        value = reader.resolve(entry.value)
        if isinstance(value, n.Name) and value.name == "rest":
            rest.append(len(entries))
            entries.append(MixEntry(entry.key, entry.key_span.to(value.span), 0.0))
            continue
        share = reader.fraction(entry.value, f"mix share of {entry.key}")
        if share is None:
            ok = False
            continue
        entries.append(MixEntry(entry.key, entry.key_span.to(entry.value.span), share))
    return entries if ok and _fill_rest(entries, rest, reader) else None


def _fill_rest(entries: list[MixEntry], rest: list[int], reader: Reader) -> bool:
    """``{ code: rest, dyck: 0.3% }``: the ``rest`` source takes what the others leave (99.7%).
    At most one ``rest`` per map, and it must be left something (E301); False on an error.

    >>> from procdsl.compiler import compile_text
    >>> text = 'curriculum c {{ model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 ' \\
    ...        'source a = sort(length=3) source b = reverse(length=3) phase p {{ steps = 1 mix = {} }} }}'
    >>> compile_text(text.format('{ a: rest, b: 0.3% }'), "x.curr").plan.phases[0].mix
    {'a': 0.997, 'b': 0.003}
    >>> [d.message for d in compile_text(text.format('{ a: rest, b: rest }'), "x.curr").diagnostics]
    ['two sources take `rest` in one mix (`a` and `b`)']
    """
    if not rest:
        return True
    if len(rest) > 1:
        first, second = entries[rest[0]], entries[rest[1]]
        reader.error(
            codes.MIX_SHARES,
            f"two sources take `rest` in one mix (`{first.source}` and `{second.source}`)",
            second.span,
            help="give all but one of them a share",
        )
        return False
    left = 1 - sum(e.share for i, e in enumerate(entries) if i != rest[0])
    if left <= 1e-12:
        entry = entries[rest[0]]
        reader.error(
            codes.MIX_SHARES,
            f"`{entry.source}: rest` gets nothing: the other shares already sum to {(1 - left) * 100:.6g}%",
            entry.span,
            help="lower the other shares, or drop this source from the mix",
        )
        return False
    entries[rest[0]].share = round(left, 12)  # 1 - 0.003 is 0.997000…0001 in binary
    return True


def _read_mix(out: ElabPhase, setting: n.Setting, sources: set[str], reader: Reader) -> None:
    expr = reader.resolve(setting.expr)
    out.mix_span = expr.span
    if isinstance(expr, n.Call) and expr.name == "ramp":
        if len(expr.args) != 2 or expr.kwargs:
            reader.error(codes.WRONG_ARITY, "a mix ramp takes two maps: ramp({…}, {…})", expr.span)
            return
        start, end = (_mix_entries(a, sources, reader, out.mentioned) for a in expr.args)
        if start is not None and end is not None:
            out.mix, out.mix_end = start, end
        return
    out.mix = _mix_entries(expr, sources, reader, out.mentioned) or []


def read_transfer(expr: n.Expr, reader: Reader) -> Optional[Transfer]:
    expr = reader.resolve(expr)
    if not isinstance(expr, n.MapExpr):
        reader.error(
            codes.WRONG_TYPE,
            f"`transfer` expects a map, found {describe(expr)}",
            expr.span,
            help="write e.g. `transfer = { keep: [attn, mlp, norm], reinit: [embed, pos, head] }`",
        )
        return None
    parts: dict[str, Any] = {}
    for entry in expr.entries:
        if entry.key not in TRANSFER_KEYS:
            reader.unknown("transfer key", entry.key, entry.key_span, TRANSFER_KEYS)
            return None
        if entry.key == "embed_init":
            parts[entry.key] = reader.word(entry.value, "embed_init", ("mean", "normal"))
        elif entry.key == "perturb":
            parts[entry.key] = _read_perturb(entry.value, reader)
        else:
            listed = reader.names(entry.value, "component", COMPONENTS)
            parts[entry.key] = tuple(name for name, _ in listed) if listed is not None else None
    if any(v is None for v in parts.values()):
        return None
    keep, reinit = parts.get("keep"), parts.get("reinit")
    if keep is None:
        keep = COMPONENTS if reinit is None else tuple(c for c in COMPONENTS if c not in reinit)
    if reinit is None:
        reinit = tuple(c for c in COMPONENTS if c not in keep)
    both = sorted(set(keep) & set(reinit))
    neither = [c for c in COMPONENTS if c not in keep and c not in reinit]
    if both or neither:
        problem = (
            f"{', '.join(both)} both kept and re-initialised"
            if both
            else f"{', '.join(neither)} neither kept nor re-initialised"
        )
        reader.error(
            codes.BAD_TRANSFER,
            f"transfer: {problem}",
            expr.span,
            help="each of embed, pos, attn, mlp, norm, head is either kept or re-initialised",
        )
        return None
    perturb = parts.get("perturb", {})
    not_kept = [c for c in perturb if c not in keep]
    if not_kept:
        reader.error(
            codes.BAD_TRANSFER,
            f"transfer: {', '.join(not_kept)} perturbed but not kept",
            expr.span,
            help="a perturbation changes kept weights; keep the component or drop its perturbation",
        )
        return None
    order = lambda names: tuple(c for c in COMPONENTS if c in names)  # noqa: E731 - canonical order
    return Transfer(
        keep=order(keep),
        reinit=order(reinit),
        freeze=order(parts.get("freeze", ())),
        embed_init=parts.get("embed_init") or "normal",
        perturb={c: perturb[c] for c in COMPONENTS if c in perturb},
    )


def _read_perturb(expr: n.Expr, reader: Reader) -> Optional[dict[str, Perturb]]:
    """``{ attn: shuffle, mlp: noise(0.1) }`` → {component: Perturb}."""
    expr = reader.resolve(expr)
    if not isinstance(expr, n.MapExpr):
        reader.expected("perturb", "a map of component: shuffle | noise(σ) | scale(f)", expr)
        return None
    out: dict[str, Perturb] = {}
    for entry in expr.entries:
        if entry.key not in COMPONENTS:
            reader.unknown("component", entry.key, entry.key_span, COMPONENTS)
            return None
        value = reader.resolve(entry.value)
        call = (
            value
            if isinstance(value, n.Call)
            else n.Call(getattr(value, "name", ""), value.span, (), (), value.span)
        )
        if call.name not in PERTURBATIONS:
            reader.error(
                codes.INVALID_WORD,
                f"`{format_expr(value)}` is not a perturbation",
                value.span,
                help=did_you_mean(call.name, PERTURBATIONS) or "use shuffle, noise(σ) or scale(f)",
            )
            return None
        built = reader.bind(call, Perturb, call.name, positional=("amount",), extra={"kind": call.name})
        if built is None:
            return None
        out[entry.key] = built
    return out


def read_optimizer(expr: n.Expr, reader: Reader) -> Any:
    expr = reader.resolve(expr)
    if isinstance(expr, n.Name) and expr.name == "continue":
        return ContinueOptimizer()
    if isinstance(expr, n.Name) and expr.name == "adamw":
        return AdamW()
    if isinstance(expr, n.Call) and expr.name == "adamw":
        return reader.bind(expr, AdamW, "adamw")
    name = expr.name if isinstance(expr, (n.Name, n.Call)) else None
    reader.error(
        codes.UNKNOWN_KIND,
        f"unknown optimizer `{name}`" if name else f"`optimizer` expects a call, found {describe(expr)}",
        expr.span,
        help=did_you_mean(name or "", ("adamw", "continue")) or "use `adamw(lr=…)` or `continue`",
    )
    return None


def read_schedule(expr: Optional[n.Expr], steps: int, reader: Reader) -> Any:
    """The schedule of a phase of ``steps`` steps; ``warmup``/``decay`` may be a share of it."""
    if expr is None:
        return Constant()
    expr = reader.resolve(expr)
    if isinstance(expr, n.Name) and expr.name in SCHEDULES:
        return SCHEDULES[expr.name]()
    if not isinstance(expr, n.Call) or expr.name not in SCHEDULES:
        name = expr.name if isinstance(expr, (n.Name, n.Call)) else ""
        reader.error(
            codes.UNKNOWN_KIND,
            f"unknown schedule `{name}`"
            if name
            else f"`schedule` expects a schedule, found {describe(expr)}",
            expr.span,
            help=did_you_mean(name, SCHEDULES) or f"schedules are {one_of(SCHEDULES)}",
        )
        return None
    kwargs = []
    for kw in expr.kwargs:
        value = reader.resolve(kw.value)
        if kw.name in ("warmup", "decay"):
            if isinstance(value, n.Percent):  # a share of the phase's steps
                value = n.Number(round(value.value * steps), value.text, value.span)
            elif isinstance(value, n.Quantity) and value.unit == "steps":
                value = n.Number(value.value, value.text, value.span)
        kwargs.append(n.KwArg(kw.name, kw.name_span, value))
    call = n.Call(expr.name, expr.name_span, expr.args, tuple(kwargs), expr.span)
    schedule = reader.bind(call, SCHEDULES[expr.name], expr.name)
    if schedule is not None and schedule.warmup + getattr(schedule, "decay", 0) > steps:
        reader.error(
            codes.OUT_OF_RANGE,
            f"schedule warm-up and decay ({schedule.warmup + getattr(schedule, 'decay', 0)} steps) "
            f"exceed the phase's {steps} steps",
            expr.span,
        )
        return None
    return schedule


def _read_evals(
    block: n.EvalBlock, period: n.Expr, sources: set[str], reader: Reader
) -> list[tuple[Eval, Span]]:
    """``eval every PERIOD { … }``: the evaluations run every ``period`` steps."""
    every = reader.count(period, "eval every", "steps")
    out = []
    for call in block.calls:
        if not _known_eval(call, reader):
            continue
        if call.name in END_EVALS:
            reader.error(
                codes.EVAL_WRONG_BLOCK,
                f"`{call.name}` runs once, at the phase's end, not every N steps",
                call.name_span,
                help=f'put it in an eval block without a period: `eval {{ {call.name}(tasks=["…"]) }}`',
            )
            continue
        if not call.args:
            reader.error(
                codes.MISSING_REQUIRED,
                f"`{call.name}` needs a source",
                call.span,
                help=f"write `{call.name}(SOURCE, batches=20)`",
            )
            continue
        source = reader.resolve(call.args[0])
        if not isinstance(source, n.Name):
            reader.expected(call.name, "a source name", source)
            continue
        if source.name not in sources:
            reader.undefined_source(source.name, source.span, sources, f"`{call.name}`")
            continue
        rest = n.Call(call.name, call.name_span, call.args[1:], call.kwargs, call.span)
        if every is None:
            continue
        built = reader.bind(
            rest,
            Eval,
            call.name,
            skip=("kind", "source", "every"),
            extra={"kind": call.name, "source": source.name, "every": every},
        )
        if built is not None:
            out.append((built, call.span))
    return out


def _known_eval(call: n.Call, reader: Reader) -> bool:
    if call.name in EVALS:
        return True
    reader.error(
        codes.UNKNOWN_KIND,
        f"unknown evaluation `{call.name}`",
        call.name_span,
        help=did_you_mean(call.name, EVALS) or f"evaluations are {one_of(EVALS)}",
    )
    return False


def _read_end_evals(block: n.EvalBlock, out: ElabPhase, reader: Reader) -> None:
    """``eval { lm_eval(…) }``: the phase-end evaluations, at most one ``lm_eval`` per phase."""
    for call in block.calls:
        if not _known_eval(call, reader):
            continue
        if call.name not in END_EVALS:
            reader.error(
                codes.EVAL_WRONG_BLOCK,
                f"`{call.name}` needs a period: an eval block without `every` runs only {one_of(END_EVALS)}",
                call.name_span,
                help=f"write `eval every N steps {{ {call.name}(SOURCE) }}` (it also runs at the phase's end)",
            )
            continue
        if out.lm_eval is not None:
            reader.error(
                codes.GIVEN_TWICE,
                f"a second `lm_eval` in phase `{out.name}`",
                call.name_span,
                help='list every task in one call: `lm_eval(tasks=["a", "b"])`',
            )
            continue
        out.lm_eval = read_lm_eval(call, reader)


def read_lm_eval(call: n.Call, reader: Reader) -> Optional[LmEval]:
    """``lm_eval(tasks=[…], limit=, include_path=, batch_size=)`` → :class:`LmEval`, each
    mistake located at its argument. ``include_path`` is resolved against the ``.curr`` file's
    directory and must be a directory there.

    >>> from procdsl.compiler import compile_text
    >>> text = ('curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 '
    ...         'source a = sort(length=2) phase p { steps = 1 mix = { a: 100% } eval { CALL } } }')
    >>> compile_text(text.replace("CALL", 'lm_eval(tasks=["arc_easy"], limit=20)'), "c.curr").plan.phases[0].lm_eval
    LmEval(tasks=('arc_easy',), limit=20, include_path=None, batch_size=8)
    >>> [d.message for d in compile_text(text.replace("CALL", 'lm_eval(tasks=[arc_easy])'), "c.curr").diagnostics]
    ['`lm_eval` tasks are strings (lm-eval task names), found a name']
    """
    given = {kw.name: kw for kw in call.kwargs}
    if "tasks" in given:
        tasks = reader.resolve(given["tasks"].value)
        if not isinstance(tasks, (n.ListExpr, n.TupleExpr)):
            reader.expected("tasks", "a list of lm-eval task names", tasks, help='write `tasks=["arc_easy"]`')
            return None
        if not tasks.items:
            reader.error(
                codes.MISSING_REQUIRED,
                "`lm_eval` needs at least one task",
                tasks.span,
                help='name lm-eval tasks: `tasks=["arc_easy", "hellaswag"]`',
            )
            return None
        for item in (reader.resolve(i) for i in tasks.items):
            if not isinstance(item, n.String):
                reader.error(
                    codes.WRONG_TYPE,
                    f"`lm_eval` tasks are strings (lm-eval task names), found {describe(item)}",
                    item.span,
                    help=f'quote it: `"{format_expr(item)}"`',
                )
                return None
    for key in ("limit", "batch_size"):
        if key in given and reader.integer(given[key].value, key, minimum=1) is None:
            return None
    built = reader.bind(call, LmEval, "lm_eval", skip=())
    if built is None or built.include_path is None:
        return built
    folder = os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(call.span.file)), built.include_path)
    )
    if not os.path.isdir(folder):
        reader.error(
            codes.NOT_A_DIRECTORY,
            f"`include_path` is not a directory: {folder}",
            given["include_path"].value.span,
            help="a folder of lm-eval task YAML files, relative to this .curr file",
        )
        return None
    return built.model_copy(update={"include_path": folder})
