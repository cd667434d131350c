"""A plan over time: phases × mixture shares × learning rate, as a figure or in characters.

``procdsl plan FILE --plot timeline.png`` (or ``.svg``, ``.pdf``) draws two panels over the
run's global steps — the mixture's token shares, stacked (a ramped mix moves linearly within
its phase), and the learning rate each step trains with — with the phase boundaries marked and
named. ``--plot -`` prints :func:`terminal_timeline` instead.

The learning rate follows TorchTitan's warm-up/stable/decay schedule exactly as the runtime
configures it (``procdsl.runtime.jobconfig.schedule_config``): :func:`lr_factor` is that
function, torch-free. ``optimizer = continue`` keeps the previous phase's peak rate.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 32 batch = 2
...   source a = sort(length=3) source b = reverse(length=3)
...   phase warm { steps = 4  mix = { a: 100% } }
...   phase main { steps = 8  mix = ramp({ a: 50%, b: 50% }, { b: 100% })  schedule = cosine(warmup=2) } }''', "c.curr").plan
>>> print(terminal_timeline(plan, width=8))
warm  steps 1–4   a ████          100%  lr ████ 5e-04
main  steps 5–12  a ▄▃▃▂▂▁▁      50→0%  lr ▄██▇▆▄▂▁ 5e-04
                  b ▄▅▅▆▆▇▇█   50→100%
"""

from __future__ import annotations

import math
from typing import Any

from procdsl.plan.model import Phase, Plan

BLOCKS = " ▁▂▃▄▅▆▇█"


def lr_factor(schedule: Any, step: int, steps: int) -> float:
    """The multiplier of the peak lr at 0-based ``step`` of a phase of ``steps`` steps: TorchTitan's
    ``linear_warmup_stable_decay`` (with its virtual last step) under the runtime's configuration.

    >>> from procdsl.plan.model import Constant, Cosine, Wsd
    >>> [round(lr_factor(Cosine(warmup=2, min=0.1), s, 6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.868, 0.55, 0.232]
    >>> [lr_factor(Wsd(decay=2), s, 4) for s in range(4)], lr_factor(Constant(), 99, 100)
    ([1.0, 1.0, 1.0, 0.5], 1.0)
    """
    warmup = min(schedule.warmup, steps)
    if schedule.kind == "constant":
        decay = 0
    elif schedule.kind == "wsd":
        decay = min(round(steps * min(schedule.decay / steps, 1.0)), steps - warmup)
    else:
        decay = steps - warmup
    stable = steps + 1 - warmup - decay
    if step < warmup:
        return (step + 1) / warmup
    if step < warmup + stable:
        return 1.0
    progress = (step + 1 - warmup - stable) / decay
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule.kind == "cosine" else 1 - progress
    low = getattr(schedule, "min", 0.0)
    return low + (1 - low) * shape


def peak_lrs(plan: Plan) -> list[float]:
    """Each phase's peak lr (``continue`` keeps the one before; the first phase has one)."""
    peaks, current = [], 5e-4
    for phase in plan.phases:
        current = getattr(phase.optimizer, "lr", current)
        peaks.append(current)
    return peaks


def shares_at(phase: Phase, fraction: float) -> dict[str, float]:
    """The phase's asked token shares at ``fraction`` (0 … 1) of its way through."""
    if phase.mix_ramp is None:
        return dict(phase.mix)
    start, end = phase.mix_ramp.start, phase.mix_ramp.end
    return {s: (1 - fraction) * start.get(s, 0.0) + fraction * end.get(s, 0.0) for s in phase.mix}


def _samples(steps: int, width: int) -> list[int]:
    """``width`` 0-based steps spread over a phase (every step when it has fewer)."""
    count = min(width, steps)
    return [round(i * (steps - 1) / max(count - 1, 1)) for i in range(count)]


def _bar(values: list[float], top: float) -> str:
    """Block characters of ``values`` on a scale to ``top``; any value above 0 shows."""
    return "".join(BLOCKS[max(int(v > 0), min(8, round(v / top * 8)))] if top else " " for v in values)


def _share_text(phase: Phase, source: str) -> str:
    first, last = shares_at(phase, 0.0)[source], shares_at(phase, 1.0)[source]
    return f"{first * 100:.3g}%" if first == last else f"{first * 100:.3g}→{last * 100:.3g}%"


def terminal_timeline(plan: Plan, width: int = 40) -> str:
    """One line per phase and source: the share over the phase and the lr, in block characters
    (each phase at most ``width`` characters, whatever its length, so a short warm-up stays visible)."""
    peaks = peak_lrs(plan)
    top = max(peaks)
    lines, start = [], 1
    name_width = max(len(p.name) for p in plan.phases)
    span_width = len(f"steps {plan.total_steps - plan.phases[-1].steps + 1}–{plan.total_steps}")
    source_width = max(len(s) for p in plan.phases for s in p.mix)
    for phase, peak in zip(plan.phases, peaks):
        samples = _samples(phase.steps, width)
        lr = _bar([peak * lr_factor(phase.schedule, s, phase.steps) for s in samples], top)
        span = f"steps {start}–{start + phase.steps - 1}"
        for i, source in enumerate(phase.mix):
            share = [shares_at(phase, s / max(phase.steps - 1, 1))[source] for s in samples]
            head = (
                f"{phase.name:<{name_width}}  {span:<{span_width}}"
                if i == 0
                else " " * (name_width + 2 + span_width)
            )
            tail = f"  lr {lr} {peak:.0e}" if i == 0 else ""
            lines.append(
                f"{head}  {source:<{source_width}} {_bar(share, 1.0):<{width}} "
                f"{_share_text(phase, source):>9}{tail}".rstrip()
            )
        start += phase.steps
    return "\n".join(lines)


def draw_timeline(plan: Plan, path: str) -> str:
    """The figure (module docstring) written to ``path``; its format follows the extension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from procdsl.report.style import paper_style, step_formatter

    peaks = peak_lrs(plan)
    sources = list(dict.fromkeys(s for p in plan.phases for s in p.mix))
    with paper_style():
        fig, (mix_ax, lr_ax) = plt.subplots(
            2, 1, sharex=True, figsize=(7, 4.2), gridspec_kw={"height_ratios": [2, 1]}
        )
        start = 0
        colors = {s: f"C{i % 10}" for i, s in enumerate(sources)}
        for index, (phase, peak) in enumerate(zip(plan.phases, peaks)):
            steps = _samples(phase.steps, 200)
            x: list[float] = [start + s + 1 for s in steps]
            shares = [shares_at(phase, s / max(phase.steps - 1, 1)) for s in steps]
            if len(x) == 1:  # a one-step phase: a bar one step wide
                x, shares = [x[0] - 0.5, x[0] + 0.5], shares * 2
            mix_ax.stackplot(
                x,
                [[sh.get(s, 0.0) * 100 for sh in shares] for s in sources],
                colors=[colors[s] for s in sources],
            )
            lr_ax.plot(
                x, [peak * lr_factor(phase.schedule, s, phase.steps) for s in steps], color="black", lw=1.2
            )
            if index:
                for ax in (mix_ax, lr_ax):
                    ax.axvline(start + 0.5, color="grey", ls="--", lw=0.8)
            mix_ax.text(start + phase.steps / 2, 102, phase.name, ha="center", va="bottom", fontsize=8)
            start += phase.steps
        mix_ax.set_ylim(0, 100)
        mix_ax.set_ylabel("mixture (% of tokens)")
        handles = [
            matplotlib.patches.Patch(
                color=colors[s],
                label=f"{s} "
                + ", ".join(dict.fromkeys(_share_text(p, s) for p in plan.phases if s in p.mix)),
            )
            for s in sources
        ]
        mix_ax.set_xlim(0.5, plan.total_steps + 0.5)
        mix_ax.legend(handles=handles, fontsize=8, loc="lower right", framealpha=0.9)
        lr_ax.set_ylabel("learning rate")
        lr_ax.set_ylim(bottom=0)
        lr_ax.set_xlabel("step")
        lr_ax.xaxis.set_major_formatter(step_formatter())
        count = len(plan.phases)
        mix_ax.set_title(
            f"{plan.name}: {count} phase{'s' * (count != 1)}, {plan.total_steps:,} steps, "
            f"{plan.total_tokens:,} tokens",
            fontsize=9,
            pad=14,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=150)
        plt.close(fig)
    return path


def save_timeline(plan: Plan, path: str) -> str:
    """``plan --plot FILE``: :func:`draw_timeline` to a ``.png``, ``.svg`` or ``.pdf`` file,
    creating its folder; the path written. UsageError for another extension, CommandError
    without matplotlib or when the file cannot be written."""
    import os

    from procdsl.errors import CommandError, UsageError

    if os.path.splitext(path)[1].lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: name a .png, .svg or .pdf file, or - for the terminal")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError(
            "--plot FILE needs matplotlib: pip install 'procdsl[report]' (or - for the terminal)"
        ) from None
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return draw_timeline(plan, path)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
