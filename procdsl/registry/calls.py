"""Everything written as a call — source kinds, models, ``bpe``, optimizers, schedules,
evaluations, ``fsdp``, perturbations — with parameters read off the plan's pydantic models.

Types, defaults and bounds come from the models themselves (so they cannot drift from what the
compiler validates); the one-line docs are the tables below, and a test fails when a model gains
a parameter without one.

>>> dyck = next(c for c in CALLS if c.name == "dyck")
>>> dyck.signature()
'dyck(k=64, length=none, p_open=0.5, max_depth=none)'
>>> p = dyck.param("p_open")
>>> p.type, p.default, p.range
('number, range or ramp', '0.5', '0 … 1')
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from procdsl.plan.base import TUNABLE, Bounds, Ramp, Range
from procdsl.plan.model import (
    AdamW,
    BpeTokenizer,
    Constant,
    Cosine,
    Eval,
    Fsdp,
    Gpt2Model,
    Linear,
    LlamaModel,
    LmEval,
    Perturb,
    Wsd,
)
from procdsl.plan.sources import SOURCE_KINDS
from procdsl.registry.items import Item, Param

#: one line per call
CALL_DOCS = {
    "task": "an algorithmic rule (or a `>>` chain of unary rules) on random symbols",
    "dyck": "complete balanced k-Dyck strings",
    "shuffle_dyck": "the shuffle of k Dyck-1 languages, cut at `length`",
    "eca": "rows of an elementary cellular automaton from a random first row",
    "ww": "a random string written twice: `w w`",
    "haystack": "find the value paired with a query key in a key–value list (probe)",
    "addition": "`a + b = c`, most-significant digit first (probe)",
    "reversed_addition": "addition with every number least-significant digit first (probe)",
    "multiplication": "`a * b = c` (probe)",
    "sorting": "the sorting probe, answer-only loss",
    "hf": "a 🤗 datasets dataset, streamed (hub name, local directory or packaged builder)",
    "jsonl": "one JSON object per line; the text is in `field`",
    "text": "each file matching a path or glob is one document",
    "parquet": "a text column of a parquet file (or a glob of files)",
    "python_code": "the Python standard library's source: a real, offline code corpus",
    "dm_math": "DeepMind-mathematics-style question/answer pairs, generated locally",
    "gpt2": "GPT-2: learned positions, LayerNorm, GELU (the paper's architecture)",
    "gpt2_124m": "GPT-2 124M (12 layers, 12 heads, dim 768: Hugging Face gpt2, the paper's model)",
    "gpt2_350m": "GPT-2 350M (24 layers, 16 heads, dim 1024: gpt2-medium's shape)",
    "gpt2_1_3b": "GPT-2 1.3B (24 layers, 16 heads, dim 2048: the paper's largest)",
    "llama": "TorchTitan's llama3 at any size: RoPE, RMSNorm, SwiGLU",
    "bpe": "a byte-level BPE trained locally on a sample of a source",
    "adamw": "AdamW with gradient clipping; its state is reset at the phase start",
    "constant": "a constant learning rate after an optional linear warm-up",
    "cosine": "linear warm-up, then cosine decay to `min` × the peak",
    "linear": "linear warm-up, then linear decay to `min` × the peak",
    "wsd": "warm-up, stable, then linear decay over the last `decay` steps",
    "perplexity": "held-out perplexity of a source",
    "accuracy": "held-out accuracy on the answer tokens of a source",
    "attention_entropy": "mean attention entropy of every layer and head on a source",
    "lm_eval": "lm-evaluation-harness tasks on the phase's final model, once at its end: `eval { lm_eval(…) }`",
    "fsdp": "fully sharded data parallelism",
    "tp": "tensor parallelism: each layer split over N ranks (llama only)",
    "shuffle": "permute the entries of each tensor of the component",
    "noise": "add Gaussian noise of `amount` × each tensor's standard deviation",
    "scale": "multiply the component's weights by `amount`",
}

#: one line per parameter; ``"call.param"`` overrides ``"param"`` for one call
PARAM_DOCS = {
    "rule": "the rule, or a `>>` chain of unary rules",
    "length": "symbols per input sequence",
    "vocab": "symbols are 1 … vocab-1",
    "k": "number of bracket types",
    "dyck.length": "tokens per string (even); none: the phase's context",
    "shuffle_dyck.length": "tokens per string; none: the phase's context",
    "p_open": "probability of opening a bracket when both moves are possible",
    "max_depth": "deepest nesting allowed",
    "eca.rule": "Wolfram rule number",
    "width": "cells per row",
    "steps": "rows after the first; none: as many as fit in `length`",
    "eca.length": "tokens per example when `steps` is not given; none: the phase's context",
    "pairs": "key–value pairs per example",
    "haystack.vocab": "keys are 0 … vocab/2-1, values the rest",
    "digits": "digits per operand",
    "sorting.length": "numbers to sort",
    "heldout": "share of documents set aside for evaluation",
    "dataset": "hub name, local directory or builder (`json`, `parquet`, `text`)",
    "name": "the dataset's configuration",
    "split": "which split to stream",
    "field": "the field holding the text",
    "revision": "a git revision of the dataset",
    "data_files": "files a packaged builder reads",
    "path": "a file (or glob), relative to the .curr file",
    "modules": "which problem modules to generate",
    "layers": "transformer blocks",
    "heads": "attention heads (must divide dim)",
    "dim": "model width",
    "mlp_ratio": "feed-forward width as a multiple of dim",
    "tie_embeddings": "share the input embedding with the output head",
    "dropout": "dropout probability",
    "kv_heads": "key/value heads (grouped-query attention); none: as many as heads",
    "multiple_of": "the feed-forward width is rounded up to a multiple of this",
    "ffn_dim_multiplier": "scales the feed-forward width",
    "rope_theta": "base of the rotary position frequencies",
    "bpe.vocab": "tokens in the trained vocabulary",
    "train_on": "the source whose text trains it",
    "lr": "peak learning rate",
    "betas": "Adam's moment decay rates",
    "weight_decay": "decoupled weight decay",
    "eps": "Adam's epsilon",
    "clip": "gradient norm clipping; none: no clipping",
    "warmup": "warm-up steps, or a share of the phase (`10%`)",
    "min": "final learning rate as a fraction of the peak",
    "decay": "decay steps at the end, or a share of the phase",
    "source": "the source to evaluate on (held-out split)",
    "batches": "batches per evaluation",
    "tasks": "lm-eval task names",
    "limit": "at most this many examples per task; none: all",
    "include_path": "a folder of lm-eval task YAML files (local tasks, offline), relative to the .curr file",
    "batch_size": "lm-eval's batch size",
    "shard": "ranks per shard group; none: all ranks",
    "tp": "tensor-parallel degree",
    "amount": "σ for noise, the factor for scale",
}

#: where a field's Python type or default says less than the language does
TYPE_OVERRIDES = {
    "task.rule": "rule | rule >> rule …",
    "source": "source name",
    "train_on": "source name",
    "modules": "list of module names",
}
DEFAULT_OVERRIDES = {"noise.amount": "required", "scale.amount": "required"}

_CALL_MODELS: tuple[tuple[str, str, type[BaseModel], tuple[str, ...], tuple[str, ...]], ...] = (
    *((kind, "source kind", model, model.positional, ("kind",)) for kind, model in SOURCE_KINDS.items()),
    ("gpt2", "model", Gpt2Model, (), ("kind",)),
    *(
        (name, "model", Gpt2Model, (), ("kind", "layers", "heads", "dim", "mlp_ratio"))
        for name in ("gpt2_124m", "gpt2_350m", "gpt2_1_3b")
    ),
    ("llama", "model", LlamaModel, (), ("kind",)),
    ("bpe", "tokenizer", BpeTokenizer, (), ("kind",)),
    ("adamw", "optimizer", AdamW, (), ("kind",)),
    ("constant", "schedule", Constant, (), ("kind",)),
    ("cosine", "schedule", Cosine, (), ("kind",)),
    ("linear", "schedule", Linear, (), ("kind",)),
    ("wsd", "schedule", Wsd, (), ("kind",)),
    *(
        (kind, "evaluation", Eval, ("source",), ("kind", "every"))
        for kind in ("perplexity", "accuracy", "attention_entropy")
    ),
    ("lm_eval", "evaluation", LmEval, (), ()),
    ("fsdp", "parallel", Fsdp, (), ("kind", "tp")),
    ("tp", "parallel", Fsdp, ("tp",), ("kind", "shard")),
    ("shuffle", "perturbation", Perturb, (), ("kind", "amount")),
    *((kind, "perturbation", Perturb, ("amount",), ("kind",)) for kind in ("noise", "scale")),
)


def _override(table: dict[str, str], call: str, name: str) -> str | None:
    return table.get(f"{call}.{name}") or table.get(name)


#: shown for a parameter added to a model without a doc here; tests/test_registry.py fails on it
MISSING_DOC = "(undocumented: add it to procdsl/registry/calls.py)"


def build_call(
    name: str, category: str, model: type[BaseModel], positional: tuple[str, ...], skip: tuple[str, ...]
) -> Item:
    """The registry item of one call, its parameters read from ``model``'s fields."""
    params = []
    order = list(positional) + [f for f in model.model_fields if f not in positional]
    for field in order:
        if field in skip:
            continue
        info = model.model_fields[field]
        type_ = _override(TYPE_OVERRIDES, name, field) or type_text(info)
        default = _override(DEFAULT_OVERRIDES, name, field) or default_text(info)
        params.append(
            Param(
                field,
                type_,
                default,
                range_text(info),
                _override(PARAM_DOCS, name, field) or MISSING_DOC,
                positional=field in positional,
            )
        )
    return Item(name, category, CALL_DOCS.get(name, MISSING_DOC), params=tuple(params), callable=True)


def type_text(info: Any) -> str:
    """A field's type as a person reads it: ``int``, ``number, range or ramp``, ``a | b``."""
    if TUNABLE in info.metadata or _has(info.annotation, TUNABLE):
        base = next(a for a in _flat(info.annotation) if a in (int, float))
        return f"{_scalar(base)}, range or ramp"
    return _annotation_text(info.annotation)


def _annotation_text(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType) and len(args) == 1:
        return _annotation_text(args[0])
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_annotation_text(args[0])}s"
        return "(" + ", ".join(_annotation_text(a) for a in args) + ")"
    if get_args(annotation) and hasattr(annotation, "__metadata__"):  # Annotated[…]
        return _annotation_text(get_args(annotation)[0])
    return _scalar(annotation)


def _scalar(kind: Any) -> str:
    return {int: "int", float: "number", str: "string", bool: "true | false"}.get(
        kind, getattr(kind, "__name__", str(kind))
    )


def default_text(info: Any) -> str:
    """The default as .curr text: ``64``, ``"train"``, ``(0.9, 0.95)``, ``none``, or ``required``."""
    value = info.default
    if value is PydanticUndefined:
        return "required" if info.default_factory is None else _value(info.default_factory())
    return _value(value)


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        if value and all(isinstance(v, str) for v in value):
            return f"all {len(value)}"
        return "(" + ", ".join(_value(v) for v in value) + ")"
    if isinstance(value, Range):
        return f"{_value(value.low)}..{_value(value.high)}"
    if isinstance(value, Ramp):
        return f"ramp({_value(value.start)}, {_value(value.end)})"
    if isinstance(value, dict):
        return "none" if not value else str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(info: Any) -> str:
    """Allowed values: ``≥ 1``, ``0 … 1``, ``> 0``, ``≥ 2, even`` (empty when unbounded)."""
    # numbers in practice; annotated_types types its bounds as protocols (SupportsGe, …)
    low: Any = None
    high: Any = None
    low_open = high_open = even = False
    for meta in list(info.metadata) + [
        m for a in _flat(info.annotation) for m in getattr(a, "__metadata__", ())
    ]:
        if isinstance(meta, Bounds):
            low, high, even = (
                meta.ge if meta.ge is not None else low,
                meta.le if meta.le is not None else high,
                meta.even,
            )
        elif isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            low, low_open = meta.gt, True
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
        elif isinstance(meta, annotated_types.Lt):
            high, high_open = meta.lt, True
    if low is not None and high is not None and not (low_open or high_open):
        text = f"{low:g} … {high:g}"
    else:
        parts = ([f"{'>' if low_open else '≥'} {low:g}"] if low is not None else []) + (
            [f"{'<' if high_open else '≤'} {high:g}"] if high is not None else []
        )
        text = ", ".join(parts)
    return text + (", even" if even else "")


def _flat(annotation: Any) -> list[Any]:
    """The annotation and every type nested in it."""
    out = [annotation]
    for arg in get_args(annotation):
        out += _flat(arg)
    return out


def _has(annotation: Any, marker: Any) -> bool:
    return any(marker in getattr(a, "__metadata__", ()) for a in _flat(annotation))


CALLS: tuple[Item, ...] = tuple(build_call(*spec) for spec in _CALL_MODELS)
