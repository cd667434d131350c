"""E301: a phase's mix names a source and its shares sum to 100% (both ends of a ramp).

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 ' \\
...        'source a = sort(length=3) source b = reverse(length=3) phase p { steps = 1 mix = { a: 60%, b: 30% } } }'
>>> [(d.code, d.message) for d in compile_text(text, "x.curr").diagnostics]
[('E301', 'mix shares sum to 90%, not 100%')]
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def _percent(x: float) -> str:
    """A share as a percentage, with as many digits as it takes not to read as 100%.

    >>> _percent(0.9), _percent(0.9999999), _percent(1.00000000001)
    ('90%', '99.99999%', '100.000000001%')
    """
    for digits in range(6, 18):
        shown = f"{x * 100:.{digits}g}"
        if shown != "100" or x == 1:
            break
    return shown + "%"


def mix_sums_to_one(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        ramp = phase.mix_end is not None
        empty = [
            which
            for entries, which in (
                (phase.mix, " at the start of the ramp"),
                (phase.mix_end, " at the end of the ramp"),
            )
            if entries is not None and not entries and (ramp or not phase.mentioned)
        ]
        if phase.mix_span is not None and empty:
            out += [
                Diagnostic(
                    codes.MIX_SHARES,
                    f"the mix of phase `{phase.name}` names no source{which if ramp else ''}",
                    phase.mix_span,
                    help="say what the phase trains on, e.g. `mix = { dyck: 100% }`",
                )
                for which in empty
            ]
            continue
        for entries, which in ((phase.mix, ""), (phase.mix_end or [], " at the end of the ramp")):
            if not entries:
                continue
            total = sum(e.share for e in entries)
            if abs(total - 1) > 1e-9:
                gap = 1 - total
                fix = (
                    f"add {_percent(gap)} to a source"
                    if gap > 0
                    else f"remove {_percent(-gap)} from the sources"
                )
                span = entries[0].span.to(entries[-1].span) if which else phase.mix_span
                out.append(
                    Diagnostic(
                        codes.MIX_SHARES,
                        f"mix shares sum to {_percent(total)}{which}, not 100%",
                        span,
                        help=f"{fix}, or change the shares",
                    )
                )
    return out
