"""Bare words with a fixed meaning: built-in rules, tokenizer names, loss modes, model components,
and the two words a setting may take on its own (``rest``, ``continue``).

>>> next(w for w in RULES if w.name == "set").doc
'x without repeats, first occurrences in order (unary)'
"""

from __future__ import annotations

from procdsl.registry.items import Item

_RULE = "rule"

RULES = (
    Item("identity", _RULE, "x copied unchanged (unary)"),
    Item("reverse", _RULE, "x reversed (unary)"),
    Item("sort", _RULE, "x sorted in ascending order (unary)"),
    Item("set", _RULE, "x without repeats, first occurrences in order (unary)"),
    Item("union", _RULE, "the union of a and b, first occurrences in order (binary: does not compose)"),
    Item("delete", _RULE, "x without the first occurrence of t (binary: does not compose)"),
    Item(
        "stack",
        _RULE,
        "the final stack, top to bottom, after a sequence of pushes and pops (does not compose)",
    ),
)

TOKENIZERS = (
    Item("bytes", "tokenizer", "UTF-8 bytes as ids 0–255; EOS and PAD from 256"),
    Item("char", "tokenizer", "one id per printable ASCII character, tab or newline (97); UNK for the rest"),
    Item("gpt2", "tokenizer", "GPT-2's byte-level BPE (50,257 tokens), shipped offline"),
)

LOSSES = (
    Item("full", "loss", "every token is a target"),
    Item("output_only", "loss", "only the output after SEP is a target (algorithmic tasks' default)"),
    Item("answer_only", "loss", "only the answer tokens are targets (the probes' default)"),
)

COMPONENTS = (
    Item("embed", "component", "the token embedding"),
    Item("pos", "component", "the learned position embedding (GPT-2)"),
    Item("attn", "component", "the attention layers"),
    Item("mlp", "component", "the feed-forward layers"),
    Item("norm", "component", "the normalisation layers"),
    Item("head", "component", "the output projection to the vocabulary"),
)

OTHER = (
    Item(
        "rest",
        "length",
        "the phase takes what the budget leaves after every other phase, rounded down; "
        "as a mix share (`{ code: rest, dyck: 0.3% }`), what the other shares leave",
    ),
    Item("continue", "optimizer", "keep the previous phase's optimizer and its state"),
)

WORDS = RULES + TOKENIZERS + LOSSES + COMPONENTS + OTHER
