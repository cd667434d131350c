"""Keys written ``key = value``: curriculum settings, ``runtime { … }`` knobs, phase keys and the
keys of a ``transfer`` map — each with its type, default, allowed range and one line of doc.

This module is plain data (no pydantic), so ``procdsl plan --help`` can show it cheaply; tests keep
it equal to the keys the compiler accepts and to the plan's defaults.

>>> [s.name for s in CURRICULUM]
['seed', 'model', 'tokenizer', 'context', 'batch', 'budget']
>>> PHASE[0].doc
'phase length in optimizer steps (a phase has exactly one length key)'
"""

from __future__ import annotations

from procdsl.registry.items import Item

_C, _R, _P, _T = "curriculum setting", "runtime setting", "phase key", "transfer key"

CURRICULUM = (
    Item(
        "seed",
        _C,
        "seed of every generator, the data order and the initial weights; phases inherit it",
        type="int",
        default="0",
        range="≥ 0",
    ),
    Item(
        "model",
        _C,
        "the architecture trained by every phase",
        type="gpt2(…) | gpt2_124m | gpt2_350m | gpt2_1_3b | llama(…)",
        default="required",
    ),
    Item(
        "tokenizer",
        _C,
        "how text sources become ids; procedural sources keep their own ids",
        type='bytes | char | gpt2 | bpe(vocab=, train_on=) | "tokenizer.json"',
        default="bytes",
    ),
    Item(
        "context",
        _C,
        "tokens per sequence; a phase may override it",
        type="int",
        default="required",
        range="≥ 1",
    ),
    Item(
        "batch",
        _C,
        "sequences per optimizer step, global over all ranks; a phase may override it",
        type="int",
        default="required",
        range="≥ 1",
    ),
    Item(
        "budget",
        _C,
        "total tokens of the run; needed when a phase uses `share` or `length = rest`",
        type="tokens",
        default="none",
        range="≥ 1",
    ),
)

RUNTIME = (
    Item(
        "dtype",
        _R,
        "precision of parameters and compute (`fp32` and `bfloat16` are accepted spellings)",
        type="float32 | bf16",
        default="float32",
    ),
    Item("compile", _R, "compile the model with torch.compile", type="true | false", default="false"),
    Item(
        "checkpoint_every",
        _R,
        "save a checkpoint every N steps, besides the one at each phase end",
        type="steps",
        default="none",
        range="≥ 1",
    ),
    Item(
        "activation_checkpoint",
        _R,
        "recompute activations in the backward pass to save memory; bare means full",
        type="none | full | selective",
        default="none",
    ),
    Item(
        "parallel",
        _R,
        "how the ranks split the model: FSDP over all ranks or shard groups of N, tensor parallelism of degree N",
        type="fsdp(shard=N) | tp(N) | [fsdp(…), tp(N)]",
        default="fsdp",
    ),
    Item(
        "microbatch",
        _R,
        "rows per rank per forward pass; gradients accumulate over the rest of the batch",
        type="int",
        default="the whole local batch",
        range="≥ 1",
    ),
    Item(
        "log_every",
        _R,
        "steps between reads of the training metrics from the device (every step is recorded)",
        type="steps",
        default="10",
        range="≥ 1",
    ),
    Item(
        "checkpoint_minutes",
        _R,
        "save a checkpoint after this much wall time since the last one",
        type="number",
        default="30",
        range="> 0",
    ),
    Item(
        "keep",
        _R,
        "complete checkpoints to keep (older ones are removed; each phase's last is always kept)",
        type="int",
        default="all",
        range="≥ 1",
    ),
    Item(
        "async_checkpoint",
        _R,
        "write checkpoints in the background while training goes on; bare means true",
        type="true | false",
        default="false",
    ),
    Item(
        "comm_timeout",
        _R,
        "seconds a collective may wait for the other ranks before the run fails",
        type="int",
        default="600",
        range="≥ 1",
    ),
    Item(
        "wandb",
        _R,
        "also log every record to this Weights & Biases project (WANDB_MODE=offline keeps it on disk)",
        type="string",
        default="none",
    ),
)

PHASE = (
    Item(
        "steps",
        _P,
        "phase length in optimizer steps (a phase has exactly one length key)",
        type="steps",
        range="≥ 1",
    ),
    Item(
        "tokens",
        _P,
        "phase length in tokens, rounded up to whole steps of batch × context",
        type="tokens",
        range="≥ 1",
    ),
    Item(
        "share",
        _P,
        "phase length as a share of `budget`, rounded up to whole steps",
        type="percentage",
        range="> 0%, ≤ 100%",
    ),
    Item(
        "length",
        _P,
        "`rest` (what the budget leaves, rounded down), a quantity or a share",
        type="rest | steps | tokens | percentage",
    ),
    Item(
        "batch",
        _P,
        "sequences per optimizer step in this phase",
        type="int",
        default="the curriculum's",
        range="≥ 1",
    ),
    Item(
        "context",
        _P,
        "tokens per sequence in this phase",
        type="int",
        default="the curriculum's",
        range="≥ 1",
    ),
    Item("seed", _P, "seed of this phase's data and initialisation", type="int", default="the curriculum's"),
    Item(
        "mix",
        _P,
        "token shares of the sources, summing to 100% (one may be `rest`: what the others leave); "
        "`ramp({…}, {…})` moves linearly between two",
        type="{ SOURCE: percentage | rest, … }",
        default="required",
    ),
    Item(
        "loss",
        _P,
        "which tokens the loss counts",
        type="full | output_only | answer_only",
        default="each source's own",
    ),
    Item(
        "layout",
        _P,
        "`padded`: one example per row; `packed`: whole units fill each row, each attending to itself",
        type="padded | packed",
        default="padded if every source is procedural, else packed",
    ),
    Item(
        "transfer",
        _P,
        "what this phase takes from the previous one (not allowed on the first phase)",
        type="{ keep: […], reinit: […], freeze: […], embed_init: …, perturb: {…} }",
        default="keep everything",
    ),
    Item(
        "optimizer",
        _P,
        "a fresh optimizer, or `continue` the previous phase's with its state",
        type="adamw(…) | continue",
        default="adamw()",
    ),
    Item(
        "schedule",
        _P,
        "learning-rate schedule over the phase",
        type="constant | cosine(…) | linear(…) | wsd(…)",
        default="constant",
    ),
)

TRANSFER = (
    Item(
        "keep",
        _T,
        "components copied from the previous phase",
        type="list of components",
        default="every component not re-initialised",
    ),
    Item("reinit", _T, "components initialised afresh", type="list of components", default="none"),
    Item("freeze", _T, "components not trained in this phase", type="list of components", default="none"),
    Item(
        "embed_init",
        _T,
        "how embedding rows of new tokens start: the mean of the old rows, or random",
        type="mean | normal",
        default="normal",
    ),
    Item(
        "perturb",
        _T,
        "controls applied to kept weights: shuffle, noise(σ) or scale(f)",
        type="{ COMPONENT: shuffle | noise(σ) | scale(f) }",
        default="none",
    ),
)

#: every table of keys, by the block it belongs to
KEYS = {"curriculum": CURRICULUM, "runtime": RUNTIME, "phase": PHASE, "transfer": TRANSFER}
