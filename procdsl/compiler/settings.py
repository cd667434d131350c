"""Curriculum-level settings: ``seed model tokenizer context batch budget`` and ``runtime { … }``.

>>> from procdsl.compiler import compile_text
>>> text = '''curriculum c {
...   model = llama(layers=2, heads=4, dim=64)
...   tokenizer = bpe(vocab=4096, train_on=code)
...   context = 128
...   batch = 8
...   source code = python_code()
...   phase p { steps = 2  mix = { code: 100% } }
...   runtime { dtype = bf16  checkpoint_every = 100 steps  activation_checkpoint }
... }'''
>>> plan = compile_text(text, "c.curr").plan
>>> plan.model.kind, plan.tokenizer.kind, plan.runtime.dtype, plan.runtime.activation_checkpoint
('llama', 'bpe', 'bf16', 'full')

A GPT-2 preset is the plain model at that shape, the paper's defaults included:

>>> preset = compile_text(text.replace("llama(layers=2, heads=4, dim=64)", "gpt2_350m(dropout=0.0)"), "c.curr").plan
>>> preset.model.layers, preset.model.heads, preset.model.dim, preset.model.tie_embeddings, preset.model.dropout
(24, 16, 1024, True, 0.0)
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from procdsl.compiler.suggest import did_you_mean
from procdsl.compiler.values import Reader, describe, expr_text
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.plan.model import (
    BpeTokenizer,
    BytesTokenizer,
    CharTokenizer,
    FileTokenizer,
    Fsdp,
    Gpt2Model,
    Gpt2Tokenizer,
    LlamaModel,
    Runtime,
)

CURRICULUM_KEYS = ("seed", "model", "tokenizer", "context", "batch", "budget")
RUNTIME_KEYS = (
    "dtype",
    "compile",
    "checkpoint_every",
    "activation_checkpoint",
    "parallel",
    "microbatch",
    "log_every",
    "checkpoint_minutes",
    "keep",
    "async_checkpoint",
    "comm_timeout",
    "wandb",
)
#: Named GPT-2 sizes, as the paper's code spells them (``layers_heads_dim``): ``gpt2_124m`` is
#: Hugging Face ``gpt2`` (12_12_768), ``gpt2_350m`` ``gpt2-medium``'s shape (24_16_1024),
#: ``gpt2_1_3b`` the paper's 24_16_2048. A preset fixes the shape; its other parameters
#: (``tie_embeddings``, ``dropout``) default as ``gpt2``'s do. ``procdsl plan`` shows the count.
GPT2_PRESETS = {
    "gpt2_124m": {"layers": 12, "heads": 12, "dim": 768},
    "gpt2_350m": {"layers": 24, "heads": 16, "dim": 1024},
    "gpt2_1_3b": {"layers": 24, "heads": 16, "dim": 2048},
}
#: what a preset fixes: the shape cannot be passed to it
PRESET_FIXED = ("layers", "heads", "dim", "mlp_ratio")
MODELS: dict[str, type[Union[Gpt2Model, LlamaModel]]] = {
    "gpt2": Gpt2Model,
    "llama": LlamaModel,
    **{name: Gpt2Model for name in GPT2_PRESETS},
}
TOKENIZER_WORDS = {"bytes": BytesTokenizer, "char": CharTokenizer, "gpt2": Gpt2Tokenizer}
FLAGS = ("compile", "activation_checkpoint", "async_checkpoint")  # may stand alone, meaning true
DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp32": "float32", "float32": "float32"}


def unique_settings(
    settings: tuple[n.Setting, ...], allowed: tuple[str, ...], where: str, reader: Reader
) -> dict[str, n.Setting]:
    """Index settings by key: unknown keys are E104 (with a suggestion), repeats E312."""
    out: dict[str, n.Setting] = {}
    for setting in settings:
        if setting.key not in allowed:
            reader.unknown(f"{where} setting", setting.key, setting.key_span, allowed)
        elif setting.key in out:
            reader.error(
                codes.GIVEN_TWICE,
                f"`{setting.key}` is set twice in this {where}",
                setting.key_span,
                help="keep one of them",
                notes=(("first set", out[setting.key].key_span),),
            )
        else:
            out[setting.key] = setting
    return out


def build_model(expr: n.Expr, reader: Reader) -> Optional[Any]:
    call = reader.resolve(expr)
    if isinstance(call, n.Name) and call.name in MODELS:
        call = n.Call(call.name, call.span, (), (), call.span)
    if not isinstance(call, n.Call) or call.name not in MODELS:
        shown = call.name if isinstance(call, (n.Call, n.Name)) else None
        hint = did_you_mean(shown, MODELS) if shown else None
        reader.error(
            codes.UNKNOWN_KIND if shown else codes.WRONG_TYPE,
            f"unknown model `{shown}`" if shown else f"`model` expects a call, found {describe(call)}",
            call.name_span if isinstance(call, n.Call) else call.span,
            help=hint
            or "write e.g. `gpt2(layers=12, heads=12, dim=768)` or `llama(layers=16, heads=16, dim=2048)`",
        )
        return None
    if call.name in GPT2_PRESETS:
        return reader.bind(
            call, Gpt2Model, "model", skip=("kind",) + PRESET_FIXED, defaults=GPT2_PRESETS[call.name]
        )
    return reader.bind(call, MODELS[call.name], "model")


def build_tokenizer(expr: n.Expr, reader: Reader, file: str, sources: set[str]) -> Optional[Any]:
    expr = reader.resolve(expr)
    if isinstance(expr, n.String):
        base = os.path.dirname(os.path.abspath(file))
        return FileTokenizer(path=os.path.normpath(os.path.join(base, expr.value)))
    if isinstance(expr, n.Call) and expr.name == "bpe":
        built = reader.bind(expr, BpeTokenizer, "bpe")
        if built is not None and built.train_on not in sources:
            arg = next((k.value for k in expr.kwargs if k.name == "train_on"), expr)
            reader.undefined_source(built.train_on, arg.span, sources, "`train_on`")
            return None
        return built
    word = reader.word(expr, "tokenizer", tuple(TOKENIZER_WORDS) + ("bpe",))
    if word == "bpe":
        reader.error(
            codes.MISSING_REQUIRED,
            "`bpe` needs a vocabulary size and a training source",
            expr.span,
            help="write `bpe(vocab=8192, train_on=SOURCE)`",
        )
        return None
    return TOKENIZER_WORDS[word]() if word else None


def build_runtime(block: Optional[n.RuntimeBlock], reader: Reader) -> Optional[Runtime]:
    if block is None:
        return Runtime()
    settings = unique_settings(block.settings, RUNTIME_KEYS, "runtime", reader)
    values: dict[str, Any] = {}
    for key, setting in settings.items():
        value = setting.value
        # a flag (FLAGS) may stand alone; every other key needs its value
        if key == "compile":
            values[key] = reader.boolean(value, "compile")
        elif key == "async_checkpoint":
            values[key] = reader.boolean(value, "async_checkpoint")
        elif key == "activation_checkpoint":
            if value is None:
                values[key] = "full"
            else:
                word = reader.word(
                    value, "activation_checkpoint", ("true", "false", "none", "full", "selective")
                )
                values[key] = {"true": "full", "false": "none"}.get(word or "", word)
        elif value is None:
            reader.error(codes.WRONG_TYPE, f"`{key}` needs a value", setting.span, help=f"write `{key} = …`")
            values[key] = None
        elif key == "dtype":
            values[key] = DTYPES.get(reader.word(value, "dtype", tuple(DTYPES)) or "")
        elif key == "checkpoint_every":
            values[key] = reader.count(value, "checkpoint_every", "steps")
        elif key == "microbatch":
            values[key] = reader.integer(value, "microbatch", minimum=1)
        elif key == "log_every":
            values[key] = reader.count(value, "log_every", "steps")
        elif key == "wandb":
            values[key] = reader.string(value, "wandb")
        elif key == "checkpoint_minutes":
            values[key] = reader.number(value, "checkpoint_minutes", positive=True)
        elif key in ("keep", "comm_timeout"):
            values[key] = reader.integer(value, key, minimum=1)
        elif key == "parallel":
            values[key] = build_parallel(value, reader)
    if any(v is None for v in values.values()):
        return None
    return Runtime(**values)


def build_parallel(expr: n.Expr, reader: Reader) -> Optional[Fsdp]:
    """``fsdp``, ``fsdp(shard=N)``, ``tp(N)`` or a list of one of each, as one :class:`Fsdp`.

    >>> from procdsl.compiler import compile_text
    >>> text = '''curriculum c {
    ...   model = llama(layers=2, heads=4, dim=64)
    ...   context = 32
    ...   batch = 8
    ...   runtime { parallel = [fsdp(shard=2), tp(2)]  microbatch = 2 }
    ...   source s = sort(length=4, vocab=10)
    ...   phase p { steps = 2  mix = { s: 100% } }
    ... }'''
    >>> runtime = compile_text(text, "c.curr").plan.runtime
    >>> runtime.parallel.shard, runtime.parallel.tp, runtime.microbatch
    (2, 2, 2)
    """
    expr = reader.resolve(expr)
    parts = [reader.resolve(e) for e in expr.items] if isinstance(expr, n.ListExpr) else [expr]
    values: dict[str, Any] = {}
    for part in parts:
        name = part.name if isinstance(part, (n.Name, n.Call)) else None
        if name not in ("fsdp", "tp") or name in values or (name == "tp" and not isinstance(part, n.Call)):
            twice = name in values
            reader.error(
                codes.INVALID_WORD,
                f"`{name}` is given twice in `parallel`"
                if twice
                else f"`{expr_text(part)}` is not a parallel layout",
                part.span,
                help="write `fsdp`, `fsdp(shard=N)`, `tp(N)` or `[fsdp(shard=N), tp(M)]`",
            )
            return None
        if name == "fsdp":
            bound = (
                reader.bind(part, Fsdp, "fsdp", skip=("kind", "tp")) if isinstance(part, n.Call) else Fsdp()
            )
            if bound is None:
                return None
            values[name] = bound.shard
        elif not isinstance(part, n.Call) or len(part.args) != 1 or part.kwargs:  # (a tp is a call)
            reader.error(
                codes.WRONG_ARITY, "`tp` takes one number: tp(N), the tensor-parallel degree", part.span
            )
            return None
        else:
            values[name] = reader.integer(part.args[0], "tp", minimum=1)
            if values[name] is None:
                return None
    return Fsdp(shard=values.get("fsdp"), tp=values.get("tp", 1))
