"""A plan as a person reads it: a rich table of phases, steps, tokens, budget share, parameters, mix
and lr, and a second one of what each phase does (layout, loss, transfer, optimizer, evals, ramps).

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 2 ' \\
...        'source s = sort(length=3) phase p { steps = 4 mix = { s: 100% } } }'
>>> print(phase_rows(compile_text(text, "c.curr").plan)[0])   # params: 102·8 + 8·8 + 872 + 16, tied
('p', '4', '64', '—', '1,768', 's 100%', 'adamw 5e-04, constant')
"""

from __future__ import annotations

from rich.console import Console, JustifyMethod
from rich.table import Table

from procdsl.plan.model import COMPONENTS, Plan


def _mix(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.4g}%" for name, share in shares.items())


def _lr(phase) -> str:
    opt = phase.optimizer
    head = "continue" if opt.kind == "continue" else f"{opt.kind} {opt.lr:.0e}"
    sched = phase.schedule
    extra = ", ".join(f"{k}={v}" for k, v in sched.model_dump().items() if k != "kind" and v)
    return f"{head}, {sched.kind}" + (f"({extra})" if extra else "")


def text_vocab(plan: Plan) -> int:
    """The tokenizer's vocabulary size without training one: ``bpe(vocab=N)`` counts as ``N``
    (a corpus too small for ``N`` ids gives fewer; the run logs the real count)."""
    if plan.tokenizer.kind == "bpe":
        return plan.tokenizer.vocab
    from procdsl.data.tokenizer_spec import build_tokenizer  # reads files: only when asked

    return build_tokenizer(plan.tokenizer).vocab_size


def phase_parameters(plan: Plan, phase, text: int | None = None) -> int:
    """Parameters of the model phase ``phase`` trains: its vocabulary (the tokenizer's ids when it
    reads text, then each procedural source's) and one position table of the plan's largest context.

    >>> from procdsl.compiler import compile_text
    >>> plan = compile_text('curriculum c { model = gpt2_124m context = 1024 batch = 8 '
    ...                     'tokenizer = gpt2 source code = python_code() '
    ...                     'phase p { steps = 1 mix = { code: 100% } } }', "c.curr").plan
    >>> f"{phase_parameters(plan, plan.phases[0]):,}"               # Hugging Face gpt2, exactly
    '124,439,808'
    """
    from procdsl.runtime.flops import count_params  # torch-free: counted from the shape
    from procdsl.stream.vocab import PhaseVocab

    vocab = PhaseVocab.sized(plan, phase, text_vocab(plan) if text is None else text).size
    context = max([plan.context] + [p.context for p in plan.phases])
    return count_params(plan.model, vocab=vocab, context=context).params


def _count(count: int) -> str:
    """``1.32B``, ``124.4M``, or every digit below a million."""
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count:,}"


def phase_rows(plan: Plan) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    text = None
    if any(not plan.sources[s].procedural for p in plan.phases for s in p.sources_read()):
        text = text_vocab(plan)
    for phase in plan.phases:
        share = f"{phase.tokens / plan.budget * 100:.1f}%" if plan.budget else "—"
        mix = (
            _mix(phase.mix)
            if phase.mix_ramp is None
            else f"{_mix(phase.mix_ramp.start)} → {_mix(phase.mix_ramp.end)}"
        )
        params = _count(phase_parameters(plan, phase, text or 0))
        rows.append((phase.name, f"{phase.steps:,}", f"{phase.tokens:,}", share, params, mix, _lr(phase)))
    return rows


def _transfer(plan: Plan, index: int) -> str:
    """What a phase takes from the one before, in a few words."""
    phase = plan.phases[index]
    if index == 0:
        return "— (first phase)"
    spec = phase.transfer
    if spec is None:
        return "keep all"
    parts = ["keep " + (",".join(spec.keep) if set(spec.keep) != set(COMPONENTS) else "all")]
    if spec.reinit:
        parts.append("reinit " + ",".join(spec.reinit))
    if spec.freeze:
        parts.append("freeze " + ",".join(spec.freeze))
    if spec.perturb:
        parts.append(
            "perturb "
            + ",".join(
                f"{c} {p.kind}" + (f"({p.amount:g})" if p.amount is not None else "")
                for c, p in spec.perturb.items()
            )
        )
    if spec.embed_init != "normal":
        parts.append(f"new rows {spec.embed_init}")
    return "; ".join(parts)


def _loss(plan: Plan, phase) -> str:
    """The phase's loss, or each source's own (``loss`` unset)."""
    if phase.loss is not None:
        return phase.loss
    own = {plan.sources[s].default_loss for s in phase.mix}
    return own.pop() if len(own) == 1 else ", ".join(f"{s} {plan.sources[s].default_loss}" for s in phase.mix)


def _evals(phase) -> str:
    """``perplexity(v) every 50, lm_eval(arc_easy, piqa) at the end``."""
    shown = [f"{e.kind}({e.source}) every {e.every}" for e in phase.eval]
    if phase.lm_eval is not None:
        shown.append(f"lm_eval({', '.join(phase.lm_eval.tasks)}) at the end")
    return ", ".join(shown) or "—"


def _ramps(plan: Plan, phase) -> str:
    """``mix`` when the mix ramps, and every ramped generator parameter with its ends."""
    from procdsl.plan.base import Ramp

    found = ["mix"] if phase.mix_ramp is not None else []
    for name in phase.mix:
        source = plan.sources[name]
        found += [
            f"{name}.{field} {value.start:g}→{value.end:g}"
            for field in type(source).model_fields
            if isinstance(value := getattr(source, field), Ramp)
        ]
    return ", ".join(found) or "—"


def padding(plan: Plan, phase) -> str:
    """The layout with the share of each row it is expected to pad, from example sizes alone.

    ``padded``: one unit a row, so a row pads ``1 − m / (context + 1)``, ``m`` the mean unit
    (a source's examples taken at the middle of their size range; a data source's pieces as
    filling a row): ``=`` when every size is fixed, else ``~``. ``packed``: a row closes, on
    average, half a procedural example short (text adds what its document ends leave).

    >>> from procdsl.compiler import compile_text
    >>> plan = compile_text('curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 128 '
    ...     'batch = 2 source s = sort(length=64) source r = sort(length=8..24) source t = python_code() '
    ...     'phase a { steps = 1 mix = { s: 100% } } phase b { steps = 1 mix = { r: 100% } } '
    ...     'phase c { steps = 1 mix = { t: 90%, s: 10% } } }', "c.curr").plan
    >>> [padding(plan, p) for p in plan.phases]
    ['padded, pad = 0%', 'padded, pad ~ 74%', 'packed, pad ~ 50%+']
    """
    row = phase.context + 1
    sizes = {}
    for name in phase.mix:
        source = plan.sources[name]
        low, high = (
            (source.min_tokens(phase.context), source.max_tokens(phase.context))
            if source.procedural
            else (row, row)
        )
        sizes[name] = (low, high)
    shares = {n: s for n, s in phase.mix.items() if s > 0}
    exact = all(low == high for low, high in sizes.values())
    mean = 1 / sum(s / ((sizes[n][0] + sizes[n][1]) / 2) for n, s in shares.items())
    if phase.layout == "padded":
        return f"padded, pad {'=' if exact else '~'} {max(0.0, 1 - mean / row):.0%}"
    procedural = {n: s for n, s in shares.items() if plan.sources[n].procedural}
    if not procedural:
        return "packed, pad ~ 0%+"
    mean_p = sum(procedural.values()) / sum(
        s / ((sizes[n][0] + sizes[n][1]) / 2) for n, s in procedural.items()
    )
    text = "+" if len(procedural) < len(shares) else ""
    return f"packed, pad ~ {mean_p / 2 / row:.0%}{text}"


def detail_rows(plan: Plan) -> list[tuple[str, ...]]:
    """Per phase: layout, loss, transfer (and freeze), optimizer, evals and ramps.

    >>> from procdsl.compiler import compile_text
    >>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 32 batch = 2 ' \\
    ...        'source s = sort(length=ramp(3, 9)) source v = sort(length=3) ' \\
    ...        'phase p { steps = 4 mix = { s: 100% } } ' \\
    ...        'phase q { steps = 4 mix = { s: 100% } transfer = { reinit: [head], freeze: [embed] } ' \\
    ...        'optimizer = continue eval every 2 steps { accuracy(v, batches=1) } } }'
    >>> for row in detail_rows(compile_text(text, "c.curr").plan): print(row)
    ('p', 'padded, pad ~ 61%', 'output_only', '— (first phase)', 'fresh', '—', 's.length 3→9')
    ('q', 'padded, pad ~ 61%', 'output_only', 'keep embed,pos,attn,mlp,norm; reinit head; freeze embed', 'continue', 'accuracy(v) every 2', 's.length 3→9')
    """
    return [
        (
            phase.name,
            padding(plan, phase),
            _loss(plan, phase),
            _transfer(plan, i),
            "continue" if phase.optimizer.kind == "continue" else "fresh",
            _evals(phase),
            _ramps(plan, phase),
        )
        for i, phase in enumerate(plan.phases)
    ]


def print_plan(plan: Plan, console: Console | None = None) -> None:
    console = console or Console()
    model = plan.model
    table = Table(
        title=f"{plan.name}  ·  {model.kind} {model.layers}L/{model.heads}H/{model.dim}d  ·  "
        f"tokenizer {plan.tokenizer.kind}  ·  seed {plan.seed}",
        title_justify="left",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("phase", "left"),
        ("steps", "right"),
        ("tokens", "right"),
        ("of budget", "right"),
        ("params", "right"),
        ("mix", "left"),
        ("lr schedule", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for row in phase_rows(plan):
        table.add_row(*row)
    table.add_section()
    budget = f"{plan.total_tokens / plan.budget * 100:.1f}%" if plan.budget else "—"
    table.add_row("total", f"{plan.total_steps:,}", f"{plan.total_tokens:,}", budget, "", "", "")
    console.print(table)
    details = Table(title="what each phase does", title_justify="left")
    for column in ("phase", "layout", "loss", "transfer", "optimizer", "eval", "ramps"):
        details.add_column(column)
    for row in detail_rows(plan):
        details.add_row(*row)
    console.print(details)
    console.print(f"hash {plan.hash}", style="dim")
