"""E209: ``bpe(train_on=SOURCE)`` trains on text, so SOURCE must be a data source.

A procedural source has its own token ids and no text to learn merges from; the BPE trainer
would fail at the start of the run.

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 32 batch = 1 ' \\
...        'tokenizer = bpe(vocab=300, train_on=a) source a = sort(length=3) phase p { steps = 1 mix = { a: 100% } } }'
>>> [(d.code, d.message) for d in compile_text(text, "x.curr").diagnostics]
[('E209', '`bpe(train_on=a)` needs a text source; `a` is procedural (task)')]
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def bpe_trains_on_text(context) -> list[Diagnostic]:
    name = context.tokenizer_source
    source = context.sources.get(name) if name else None
    if source is None or not source.procedural:
        return []
    span = context.tokenizer_span or context.definitions[name].name_span
    return [
        Diagnostic(
            codes.BPE_NEEDS_TEXT,
            f"`bpe(train_on={name})` needs a text source; `{name}` is procedural ({source.kind})",
            span,
            help="train the tokenizer on a data source (`python_code()`, `hf(…)`, `text(…)`), "
            "or use `tokenizer = bytes`",
        )
    ]
