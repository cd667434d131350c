"""E301: a phase's mix shares sum to 100% (both ends of a ramp).

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 ' \\
...        'source a = sort(length=3) source b = reverse(length=3) phase p { steps = 1 mix = { a: 60%, b: 30% } } }'
>>> [(d.code, d.message) for d in compile_text(text, "x.curr").diagnostics]
[('E301', 'mix shares sum to 90%, not 100%')]
"""

from __future__ import annotations

from procdsl.lang.diagnostics import Diagnostic


def _percent(x: float) -> str:
    return f"{x * 100:.6g}%"


def mix_sums_to_one(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        for entries, which in ((phase.mix, ""), (phase.mix_end or [], " at the end of the ramp")):
            if not entries:
                continue
            total = sum(e.share for e in entries)
            if abs(total - 1) > 1e-9:
                gap = 1 - total
                fix = (f"add {_percent(gap)} to a source" if gap > 0 else f"remove {_percent(-gap)} from the sources")
                span = entries[0].span.to(entries[-1].span) if which else phase.mix_span
                out.append(Diagnostic("E301", f"mix shares sum to {_percent(total)}{which}, not 100%",
                                      span, help=f"{fix}, or change the shares"))
    return out
