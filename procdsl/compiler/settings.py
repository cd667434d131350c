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
"""

from __future__ import annotations

import os
from typing import Any, Optional

from procdsl.compiler.suggest import did_you_mean
from procdsl.compiler.values import Reader, describe
from procdsl.lang import nodes as n
from procdsl.plan.model import (BpeTokenizer, BytesTokenizer, CharTokenizer, FileTokenizer, Fsdp,
                                Gpt2Model, Gpt2Tokenizer, LlamaModel, Runtime)

CURRICULUM_KEYS = ("seed", "model", "tokenizer", "context", "batch", "budget")
RUNTIME_KEYS = ("dtype", "compile", "checkpoint_every", "activation_checkpoint", "parallel")
MODELS = {"gpt2": Gpt2Model, "llama": LlamaModel}
TOKENIZER_WORDS = {"bytes": BytesTokenizer, "char": CharTokenizer, "gpt2": Gpt2Tokenizer}
FLAGS = ("compile", "activation_checkpoint")  # runtime keys that may stand alone, meaning true
DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp32": "float32", "float32": "float32"}


def unique_settings(settings: tuple[n.Setting, ...], allowed: tuple[str, ...], where: str,
                    reader: Reader) -> dict[str, n.Setting]:
    """Index settings by key: unknown keys are E104 (with a suggestion), repeats E312."""
    out: dict[str, n.Setting] = {}
    for setting in settings:
        if setting.key not in allowed:
            reader.unknown(f"{where} setting", setting.key, setting.key_span, allowed)
        elif setting.key in out:
            reader.error("E312", f"`{setting.key}` is set twice in this {where}", setting.key_span,
                         help="keep one of them", notes=(("first set", out[setting.key].key_span),))
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
        reader.error("E106" if shown else "E201",
                     f"unknown model `{shown}`" if shown else f"`model` expects a call, found {describe(call)}",
                     call.name_span if isinstance(call, n.Call) else call.span,
                     help=hint or "write e.g. `gpt2(layers=12, heads=12, dim=768)` or `llama(layers=16, heads=16, dim=2048)`")
        return None
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
        reader.error("E205", "`bpe` needs a vocabulary size and a training source", expr.span,
                     help="write `bpe(vocab=8192, train_on=SOURCE)`")
        return None
    return TOKENIZER_WORDS[word]() if word else None


def build_runtime(block: Optional[n.RuntimeBlock], reader: Reader) -> Optional[Runtime]:
    if block is None:
        return Runtime()
    settings = unique_settings(block.settings, RUNTIME_KEYS, "runtime", reader)
    values: dict[str, Any] = {}
    for key, setting in settings.items():
        value = setting.value
        if value is None and key not in FLAGS:
            reader.error("E201", f"`{key}` needs a value", setting.span, help=f"write `{key} = …`")
            values[key] = None
        elif key == "dtype":
            values[key] = DTYPES.get(reader.word(value, "dtype", tuple(DTYPES)) or "")
        elif key == "compile":
            values[key] = reader.boolean(value, "compile")
        elif key == "checkpoint_every":
            values[key] = reader.count(value, "checkpoint_every", "steps")
        elif key == "activation_checkpoint":
            if value is None:
                values[key] = "full"
            else:
                word = reader.word(value, "activation_checkpoint", ("true", "false", "none", "full", "selective"))
                values[key] = {"true": "full", "false": "none"}.get(word or "", word)
        elif key == "parallel":
            call = reader.resolve(value) if value is not None else None
            if isinstance(call, n.Name) and call.name == "fsdp":
                values[key] = Fsdp()
            elif isinstance(call, n.Call) and call.name == "fsdp":
                values[key] = reader.bind(call, Fsdp, "fsdp")
            else:
                reader.error("E206", "`parallel` must be `fsdp` or `fsdp(shard=N)`",
                             (call or setting).span)
                values[key] = None
    if any(v is None for v in values.values()):
        return None
    return Runtime(**values)
