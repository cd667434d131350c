"""E310: what of ``runtime { … }`` the plan alone refutes — a ``microbatch`` that does not divide
a phase's batch, ``tp`` on GPT-2, a ``tp`` that does not divide the attention heads. The world
size is known only when the run starts; ``procdsl run`` checks the rest before training.

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 4 ' \\
...        'runtime { microbatch = 3 } source a = sort(length=3) phase p { steps = 1 mix = { a: 100% } } }'
>>> [(d.code, d.message) for d in compile_text(text, "x.curr").diagnostics]
[('E310', '`microbatch = 3` does not divide the batch of 4 rows of phase `p`')]
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def runtime_fits_the_plan(context) -> list[Diagnostic]:
    runtime, block, model = context.runtime, context.runtime_block, context.model
    if runtime is None or block is None:
        return []
    out = []
    spans = {s.key: s.span for s in block.settings}
    if runtime.microbatch is not None:
        for phase, batch in {p.name: p.batch for p in context.phases}.items():
            if batch % runtime.microbatch:
                out.append(
                    Diagnostic(
                        codes.RUNTIME_REFUTED,
                        f"`microbatch = {runtime.microbatch}` does not divide the batch "
                        f"of {batch} rows of phase `{phase}`",
                        spans["microbatch"],
                        help="the microbatch must divide batch / ranks: pick a divisor of every phase's batch",
                    )
                )
                break
    tp = runtime.parallel.tp
    if tp > 1 and model is not None:
        if model.kind != "llama":
            out.append(
                Diagnostic(
                    codes.RUNTIME_REFUTED,
                    f"tensor parallelism (`tp({tp})`) is implemented for llama only, not {model.kind}",
                    spans["parallel"],
                    help="train GPT-2 with `fsdp`",
                )
            )
        elif model.heads % tp or (model.kv_heads or model.heads) % tp:
            kv = f" and {model.kv_heads} key/value heads" if model.kv_heads else ""
            out.append(
                Diagnostic(
                    codes.RUNTIME_REFUTED,
                    f"`tp({tp})` does not divide the model's {model.heads} attention heads{kv}",
                    spans["parallel"],
                    help="use a tensor-parallel degree that divides the heads",
                )
            )
    return out
