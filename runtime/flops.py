"""Parameters, FLOPs, MFU and memory of a plan's model, counted from its shape (no torch needed).

**Parameters.** :func:`count_params` counts what ``procdsl.runtime.models.gpt2.GPT2`` or
TorchTitan's llama3 allocates for a vocabulary of ``vocab`` ids and a position table of
``context`` rows (GPT-2 only); a test checks it against the built model.

**FLOPs per token** (nanoGPT's ``estimate_mfu``, as TorchTitan counts them): a forward pass
does 2 FLOPs per weight that multiplies a token's activations, backward twice that, hence
``6 × N``, where ``N`` is every parameter but the lookup tables (token and position
embeddings; with tied embeddings the matrix *is* also the head, so it counts). Attention adds
``12 × layers × dim × seq_len`` (QKᵀ and AV, forward and backward, without halving for the
causal mask).

**MFU** = achieved FLOP/s ÷ peak FLOP/s, with achieved = FLOPs per token × tokens per second,
reported only against a datasheet peak of the device *for the run's dtype* (:data:`PEAKS`):
none on the CPU, where no such number exists.

Worked example (the quickstart's model on a bytes + SORT phase of 356 ids, hand count below):

>>> from procdsl.plan import Gpt2Model
>>> m = Gpt2Model(layers=2, heads=4, dim=128, tie_embeddings=False)   # the head its own matrix
>>> c = count_params(m, vocab=356, context=256)
>>> c.params, c.embedding, c.dense
(520704, 78336, 442368)
>>> flops_per_token(m, vocab=356, context=256, seq_len=256)
3440640
>>> round(mfu(3440640, tokens_per_s=10_000, peak_flops=1e12), 5)
0.03441

By hand: a block has two LayerNorms (2·2·128), QKV (128·384 + 384), the output projection
(128·128 + 128) and the MLP (128·512 + 512 + 512·128 + 128): 198,272. Two blocks, the final
norm (256) and the head (356·128 = 45,568) make 442,368 dense parameters; the lookups are
356·128 + 256·128 = 78,336. FLOPs per token: 6 × 442,368 + 12 × 2 × 128 × 256 = 3,440,640.

**Memory per rank** (:func:`memory_estimate`): float32 master weights, gradients and AdamW's two
moments (16 bytes a parameter) divided over the FSDP shard group, plus activations after
Korthikanti et al. (2022), ``34 × dim`` bytes per token per layer at 2-byte activations
(scaled to 4 bytes for float32; the ``5·heads·seq/dim`` attention-score term is dropped
because SDPA never stores the scores), only the block inputs under full activation
checkpointing, and the float32 logits with their gradient (``8 × vocab`` bytes a token).
An estimate, to size a run before launching it, not a measurement.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Optional

from .models.kinds import ParamCount, kind_of


def count_params(model: Any, *, vocab: int, context: int) -> ParamCount:
    """Parameters of ``model`` (a plan ``Gpt2Model`` or ``LlamaModel``) at this vocabulary size
    (its kind's table: ``procdsl.runtime.models.kinds``)."""
    return kind_of(model.kind).count(model, vocab=vocab, context=context)


def training_flops(dense: int, *, layers: int, dim: int, seq_len: int) -> int:
    """Training FLOPs per token of a model with ``dense`` matmul parameters: ``6 × dense + 12 × layers × dim × seq_len``.

    >>> training_flops(442368, layers=2, dim=128, seq_len=256)
    3440640
    """
    return 6 * dense + 12 * layers * dim * seq_len


def flops_per_token(model: Any, *, vocab: int, context: int, seq_len: int) -> int:
    """Training FLOPs per token: ``6 × dense params + 12 × layers × dim × seq_len``."""
    dense = count_params(model, vocab=vocab, context=context).dense
    return training_flops(dense, layers=model.layers, dim=model.dim, seq_len=seq_len)


def mfu(flops_token: float, *, tokens_per_s: float, peak_flops: Optional[float]) -> Optional[float]:
    """Model FLOPs utilisation: achieved FLOP/s over the peak of the devices that achieved them
    (None without a known peak)."""
    return flops_token * tokens_per_s / peak_flops if peak_flops else None


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per rank, by kind."""

    params: int
    grads: int
    optimizer: int
    activations: int
    logits: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer + self.activations + self.logits

    def as_dict(self) -> dict[str, int]:
        return {
            "params": self.params,
            "grads": self.grads,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "logits": self.logits,
            "total": self.total,
        }


def memory_estimate(
    model: Any,
    *,
    vocab: int,
    context: int,
    seq_len: int,
    local_batch: int,
    shard: int = 1,
    activation_bytes: int = 4,
    activation_checkpoint: str = "none",
) -> MemoryEstimate:
    """Bytes per rank for training ``model`` (see the module docstring for the formulas).

    >>> from procdsl.plan import Gpt2Model
    >>> m = memory_estimate(Gpt2Model(layers=2, heads=4, dim=128), vocab=356, context=256,
    ...                     seq_len=256, local_batch=16)
    >>> m.params, m.optimizer, m.activations, m.logits
    (1900544, 3801088, 71303168, 11665408)

    4 × 520,704 bytes of weights; ``2 layers × 16 × 256 tokens × 34 × 128 × 4 / 2`` =
    71,303,168 bytes of activations;
    ``16 × 256 × 356 × 8`` = 11,665,408 bytes of logits.
    """
    n = count_params(model, vocab=vocab, context=context).params
    per_rank = math.ceil(n / shard)
    tokens = local_batch * seq_len
    per_layer = 34 * model.dim * activation_bytes // 2
    if activation_checkpoint == "full":
        activations = tokens * (model.layers * model.dim * activation_bytes + per_layer)
    else:
        activations = tokens * model.layers * per_layer
    return MemoryEstimate(
        params=4 * per_rank,
        grads=4 * per_rank,
        optimizer=8 * per_rank,
        activations=activations,
        logits=tokens * vocab * 8,
    )


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``.

    >>> human_bytes(1536), human_bytes(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


#: datasheet dense peaks in FLOP/s per device, by a fragment of the device name, for the
#: dtype the matmuls run in: bf16 (tensor cores) and float32 (TorchTitan leaves TF32 off, so
#: float32 matmuls run on the CUDA cores). First match wins, so the longer names come first.
PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 NVL", {"bf16": 835e12, "float32": 60e12}),
    ("H100 PCIe", {"bf16": 756e12, "float32": 51e12}),
    ("H100", {"bf16": 989e12, "float32": 67e12}),
    ("H200", {"bf16": 989e12, "float32": 67e12}),
    ("H20", {"bf16": 148e12, "float32": 44e12}),
    ("A100", {"bf16": 312e12, "float32": 19.5e12}),
    ("B200", {"bf16": 2.25e15, "float32": 75e12}),
    ("L40S", {"bf16": 362e12, "float32": 91.6e12}),
    ("MI300X", {"bf16": 1307e12, "float32": 163.4e12}),
    ("MI325X", {"bf16": 1307e12, "float32": 163.4e12}),
)


def known_peak(device_name: str, dtype: str) -> Optional[float]:
    """The datasheet peak of ``device_name`` for ``dtype`` (bf16 | float32), or None if unknown.

    >>> known_peak("NVIDIA A100-SXM4-80GB", "bf16"), known_peak("NVIDIA A100-SXM4-80GB", "float32")
    (312000000000000.0, 19500000000000.0)
    >>> known_peak("NVIDIA H100 PCIe", "bf16"), known_peak("cpu", "float32")
    (756000000000000.0, None)
    """
    for fragment, peaks in PEAKS:
        if fragment.lower() in device_name.lower():
            return peaks.get(dtype)
    return None


def peak_flops(device: str, dtype: str) -> Optional[float]:
    """Peak FLOP/s of one device for the run's ``dtype``, the denominator of MFU; None when no
    datasheet number applies (every CPU, an unknown GPU): MFU is then not reported.

    ``PROCDSL_PEAK_FLOPS`` sets it for any device (a peak the user knows).
    """
    if os.environ.get("PROCDSL_PEAK_FLOPS"):
        return float(os.environ["PROCDSL_PEAK_FLOPS"])
    if device != "cuda":
        return None
    import torch

    return known_peak(torch.cuda.get_device_name(), dtype)
