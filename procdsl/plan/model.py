"""The plan: the contract between compiler and runtime (DESIGN.md §2).

Frozen pydantic models, ``extra="forbid"``, discriminated unions on ``kind``. The runtime reads
only these classes. ``steps`` and ``tokens`` are exact integers
(``tokens = steps × batch × context`` of the phase); ``mix`` shares are fractions summing to 1.

>>> phase = Phase(name="warmup", steps=98, tokens=98 * 8 * 128, batch=8, context=128, seed=0,
...               mix={"dyck": 1.0}, optimizer=AdamW(lr=5e-4), schedule=Constant())
>>> phase.tokens
100352
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal, Optional, Union, get_args

from pydantic import Field, model_serializer, model_validator

from procdsl.plan.base import Frozen
from procdsl.plan.sources import LossMode, Source, SourceBase

PLAN_VERSION = 1

Component = Literal["embed", "pos", "attn", "mlp", "norm", "head"]
COMPONENTS: tuple[Component, ...] = get_args(Component)


# ----------------------------------------------------------------------------------- model


class Gpt2Model(Frozen):
    """GPT-2 (learned positions, LayerNorm, GELU), the paper's architecture.

    The defaults are the paper's Hugging Face GPT-2 (``GPT2Config``): 12 layers, 12 heads,
    dim 768, the output head tied to the token embedding, dropout 0.1 (embeddings, attention,
    residuals) — 124,439,808 parameters at GPT-2's vocabulary and 1,024 positions.
    """

    kind: Literal["gpt2"] = "gpt2"
    layers: int = Field(12, ge=1)
    heads: int = Field(12, ge=1)
    dim: int = Field(768, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    tie_embeddings: bool = True
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_dim(self):
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        return self


class LlamaModel(Frozen):
    """TorchTitan's llama3 at any size (RoPE, RMSNorm, SwiGLU)."""

    kind: Literal["llama"] = "llama"
    layers: int = Field(16, ge=1)
    heads: int = Field(16, ge=1)
    dim: int = Field(2048, ge=1)
    kv_heads: Optional[int] = Field(None, ge=1)
    multiple_of: int = Field(256, ge=1)
    ffn_dim_multiplier: Optional[float] = Field(None, gt=0)
    rope_theta: float = Field(500000.0, gt=0)

    @model_validator(mode="after")
    def _heads_divide_dim(self):
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads {self.heads} is not divisible by kv_heads {self.kv_heads}")
        return self


Model = Annotated[Union[Gpt2Model, LlamaModel], Field(discriminator="kind")]


# ------------------------------------------------------------------------------- tokenizer


class BytesTokenizer(Frozen):
    """UTF-8 bytes → ids 0–255; EOS and PAD from 256."""

    kind: Literal["bytes"] = "bytes"


class CharTokenizer(Frozen):
    kind: Literal["char"] = "char"


class Gpt2Tokenizer(Frozen):
    kind: Literal["gpt2"] = "gpt2"


class BpeTokenizer(Frozen):
    """A byte-level BPE trained locally on a deterministic sample of ``train_on``."""

    kind: Literal["bpe"] = "bpe"
    vocab: int = Field(ge=260)
    train_on: str


class FileTokenizer(Frozen):
    """A ``tokenizer.json`` file (path resolved against the .curr file's directory)."""

    kind: Literal["file"] = "file"
    path: str


Tokenizer = Annotated[
    Union[BytesTokenizer, CharTokenizer, Gpt2Tokenizer, BpeTokenizer, FileTokenizer],
    Field(discriminator="kind"),
]


# ------------------------------------------------------------------------------- optimizer


class AdamW(Frozen):
    """AdamW; the defaults are torch's (betas 0.9/0.999, eps 1e-8), as the paper trains."""

    kind: Literal["adamw"] = "adamw"
    lr: float = Field(5e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.1, ge=0)
    eps: float = Field(1e-8, gt=0)
    clip: Optional[float] = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _betas_in_range(self):
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        return self


class ContinueOptimizer(Frozen):
    """``optimizer = continue``: keep the previous phase's optimizer and its state."""

    kind: Literal["continue"] = "continue"


Optimizer = Annotated[Union[AdamW, ContinueOptimizer], Field(discriminator="kind")]


# -------------------------------------------------------------------------------- schedule


class Constant(Frozen):
    kind: Literal["constant"] = "constant"
    warmup: int = Field(0, ge=0)


class Cosine(Frozen):
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min`` × the peak lr."""

    kind: Literal["cosine"] = "cosine"
    warmup: int = Field(0, ge=0)
    min: float = Field(0.0, ge=0, le=1)


class Linear(Frozen):
    kind: Literal["linear"] = "linear"
    warmup: int = Field(0, ge=0)
    min: float = Field(0.0, ge=0, le=1)


class Wsd(Frozen):
    """Warm-up, stable, decay: linear warm-up, constant, then linear decay over ``decay`` steps."""

    kind: Literal["wsd"] = "wsd"
    warmup: int = Field(0, ge=0)
    decay: int = Field(0, ge=0)
    min: float = Field(0.0, ge=0, le=1)


Schedule = Annotated[Union[Constant, Cosine, Linear, Wsd], Field(discriminator="kind")]


# -------------------------------------------------------------------------------- transfer


class Perturb(Frozen):
    """A control on kept weights (the paper's "do precise values matter?" experiments).

    ``shuffle`` permutes the entries of each tensor of the component (same values, no
    structure); ``noise`` adds Gaussian noise of ``amount`` × each tensor's standard deviation;
    ``scale`` multiplies the weights by ``amount``. Deterministic under the phase's seed.
    """

    kind: Literal["shuffle", "noise", "scale"]
    amount: Optional[float] = Field(None, ge=0)

    @model_validator(mode="after")
    def _amount_when_needed(self):
        if (self.kind == "shuffle") != (self.amount is None):
            raise ValueError(
                "shuffle takes no amount"
                if self.kind == "shuffle"
                else f"{self.kind} needs an amount, e.g. {self.kind}(0.5)"
            )
        return self


class Transfer(Frozen):
    """What the phase takes from the previous one. ``keep`` and ``reinit`` partition COMPONENTS;
    ``perturb`` applies controls to kept components."""

    keep: tuple[Component, ...] = COMPONENTS
    reinit: tuple[Component, ...] = ()
    freeze: tuple[Component, ...] = ()
    embed_init: Literal["mean", "normal"] = "normal"
    perturb: dict[Component, Perturb] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _partition(self):
        overlap = set(self.keep) & set(self.reinit)
        if overlap:
            raise ValueError(f"components both kept and re-initialised: {sorted(overlap)}")
        if set(self.keep) | set(self.reinit) != set(COMPONENTS):
            raise ValueError("keep and reinit must together name every component")
        if set(self.perturb) - set(self.keep):
            raise ValueError(
                f"only kept components can be perturbed: {sorted(set(self.perturb) - set(self.keep))}"
            )
        return self


# ------------------------------------------------------------------------------------ eval


class Eval(Frozen):
    """One evaluation, run every ``every`` steps of its phase (and at the phase's end).

    ``perplexity`` and ``accuracy`` (answer tokens) on held-out batches of ``source``;
    ``attention_entropy`` logs the mean entropy of every layer's and head's attention rows on
    them (the paper finds low-entropy heads carry the warm-up's benefit).
    """

    kind: Literal["perplexity", "accuracy", "attention_entropy"]
    source: str
    batches: int = Field(10, ge=1)
    every: int = Field(ge=1)


class LmEval(Frozen):
    """``eval { lm_eval(tasks=["hellaswag"], limit=100) }``: lm-evaluation-harness tasks, run
    once on the phase's final model (its phase-end checkpoint, exported as a Hugging Face model).

    ``include_path`` is a folder of lm-eval task YAML files (absolute in the plan; written
    relative to the ``.curr`` file), so a task whose data is a local file runs offline.

    >>> LmEval(tasks=("arc_easy",), limit=50).batch_size
    8
    """

    tasks: tuple[str, ...] = Field(min_length=1)
    limit: Optional[int] = Field(None, ge=1)
    include_path: Optional[str] = None
    batch_size: int = Field(8, ge=1)


# ----------------------------------------------------------------------------------- phase


class MixRamp(Frozen):
    """``mix = ramp({…}, {…})``: shares move linearly from ``start`` to ``end`` over the phase."""

    start: dict[str, float]
    end: dict[str, float]


#: How a phase's units become rows (DESIGN §4 Rows). ``padded``: one unit per row from position
#: 0, the rest padding (the paper's layout). ``packed``: whole units fill a row in stream order,
#: each attending only to itself with positions restarting at 0; a unit that does not fit the
#: rest of a row starts the next one. No layout splits a procedural example.
Layout = Literal["padded", "packed"]


def default_layout(sources: Iterable[SourceBase]) -> Layout:
    """``padded`` for a phase whose sources are all procedural (the paper's setting), else
    ``packed`` (text would waste most of a padded row).

    >>> from procdsl.plan.sources import TaskSource, PythonCodeSource
    >>> default_layout([TaskSource(rule=("sort",))]), default_layout([PythonCodeSource()])
    ('padded', 'packed')
    """
    return "padded" if all(source.procedural for source in sources) else "packed"


class Phase(Frozen):
    """One phase. ``mix`` is the phase's overall token share per source (for a ramp, the mean
    of its two ends, which is what a linear ramp delivers); ``mix_ramp`` holds the ends."""

    name: str
    steps: int = Field(ge=1)
    tokens: int = Field(ge=1)
    batch: int = Field(ge=1)
    context: int = Field(ge=1)
    seed: int
    mix: dict[str, float]
    mix_ramp: Optional[MixRamp] = None
    loss: Optional[LossMode] = None
    layout: Layout = "packed"
    transfer: Optional[Transfer] = None
    optimizer: Optimizer
    schedule: Schedule
    eval: tuple[Eval, ...] = ()
    #: ``eval { lm_eval(…) }``: run once at the phase's end; left out of the plan's JSON when
    #: absent, so plans without it keep the hash they had before it existed (their runs resume)
    lm_eval: Optional[LmEval] = None

    @model_serializer(mode="wrap")
    def _without_absent_lm_eval(self, handler):
        data = handler(self)
        if self.lm_eval is None:
            data.pop("lm_eval", None)
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.tokens != self.steps * self.batch * self.context:
            raise ValueError(
                f"tokens {self.tokens} != steps × batch × context "
                f"({self.steps} × {self.batch} × {self.context})"
            )
        if abs(sum(self.mix.values()) - 1) > 1e-9:
            raise ValueError(f"mix shares sum to {sum(self.mix.values())}, not 1")
        if any(not 0 <= s <= 1 for s in self.mix.values()):
            raise ValueError("mix shares must lie in [0, 1]")
        return self

    def sources_read(self) -> tuple[str, ...]:
        """The sources this phase reads: those it trains on (``mix`` order), then those only its
        evals read, each once.

        >>> from procdsl.plan.model import Eval, Phase
        >>> phase = Phase.model_construct(mix={"dyck": 0.5, "c4": 0.5},
        ...                               eval=(Eval(kind="perplexity", source="c4_val", every=10),
        ...                                     Eval(kind="accuracy", source="c4", every=10)))
        >>> phase.sources_read()
        ('dyck', 'c4', 'c4_val')
        """
        return tuple(dict.fromkeys([*self.mix, *(e.source for e in self.eval)]))


# ------------------------------------------------------------------------------- runtime


class Fsdp(Frozen):
    """``parallel = fsdp(shard=N)``, ``tp(N)`` or both as a list: how the ranks split the model."""

    kind: Literal["fsdp"] = "fsdp"
    shard: Optional[int] = Field(None, ge=1)  # ranks per shard group; None = all ranks
    tp: int = Field(1, ge=1)  # tensor-parallel degree (llama only)


class Runtime(Frozen):
    """Runtime knobs of ``runtime { … }``, mapped onto TorchTitan's job config."""

    dtype: Literal["float32", "bf16"] = "float32"
    compile: bool = False
    checkpoint_every: Optional[int] = Field(None, ge=1)
    activation_checkpoint: Literal["none", "full", "selective"] = "none"
    parallel: Fsdp = Fsdp()
    #: rows per rank per forward (None = the whole local batch); gradient accumulation over the rest
    microbatch: Optional[int] = Field(None, ge=1)
    #: steps between reads of the training metrics from the device (every step is still recorded)
    log_every: int = Field(10, ge=1)
    #: minutes of wall time between checkpoints (None = procdsl.runtime.saving's default, 30)
    checkpoint_minutes: Optional[float] = Field(None, gt=0)
    #: complete checkpoints kept besides each phase's last (None = all)
    keep: Optional[int] = Field(None, ge=1)
    #: write checkpoints in the background (TorchTitan's async mode)
    async_checkpoint: bool = False
    #: seconds a collective may wait before the run fails (None = 600)
    comm_timeout: Optional[int] = Field(None, ge=1)
    #: Weights & Biases project the run logs to, besides metrics.jsonl and TensorBoard (None = none)
    wandb: Optional[str] = Field(None, min_length=1)


# ------------------------------------------------------------------------------------ plan


class Plan(Frozen):
    version: int = PLAN_VERSION
    name: str
    seed: int
    model: Model
    tokenizer: Tokenizer = BytesTokenizer()
    context: int = Field(ge=1)
    batch: int = Field(ge=1)
    budget: Optional[int] = Field(None, ge=1)
    runtime: Runtime = Runtime()
    sources: dict[str, Source]
    phases: tuple[Phase, ...] = Field(min_length=1)
    total_steps: int
    total_tokens: int
    #: SHA-256 of the canonical JSON of every other field (procdsl.plan.hashing)
    hash: str = ""
    #: the sweep variant this plan is, as {plan path: value as .curr text}; empty without a sweep
    variant: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _totals_and_references(self):
        if self.total_steps != sum(p.steps for p in self.phases):
            raise ValueError("total_steps is not the sum of the phases' steps")
        if self.total_tokens != sum(p.tokens for p in self.phases):
            raise ValueError("total_tokens is not the sum of the phases' tokens")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names repeat: {names}")
        for phase in self.phases:
            for source in phase.sources_read():
                if source not in self.sources:
                    raise ValueError(f"phase {phase.name!r} names unknown source {source!r}")
        return self

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)
