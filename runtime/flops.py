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

**MFU** = achieved FLOP/s ÷ peak FLOP/s, with achieved = FLOPs per token × tokens per second.

Worked example (the quickstart's model on a bytes + SORT phase of 356 ids, hand count below):

>>> from procdsl.plan import Gpt2Model
>>> m = Gpt2Model(layers=2, heads=4, dim=128)
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
import time
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ParamCount:
    """``params`` in total; ``embedding`` in lookup tables; ``dense`` = the rest (matmuls, norms)."""

    params: int
    embedding: int
    dense: int


def llama_ffn_hidden(dim: int, multiple_of: int, ffn_dim_multiplier: Optional[float]) -> int:
    """TorchTitan llama3's feed-forward width: ⅔ of 4·dim, scaled, rounded up to ``multiple_of``.

    >>> llama_ffn_hidden(256, 256, None), llama_ffn_hidden(4096, 1024, 1.3)
    (768, 14336)
    """
    hidden = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def count_params(model: Any, *, vocab: int, context: int) -> ParamCount:
    """Parameters of ``model`` (a plan ``Gpt2Model`` or ``LlamaModel``) at this vocabulary size."""
    d, layers = model.dim, model.layers
    if model.kind == "gpt2":
        hidden = int(model.mlp_ratio * d)
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d)
        embedding = vocab * d + context * d
        head = 0 if model.tie_embeddings else vocab * d
        dense = layers * block + 2 * d + head
        tied = vocab * d if model.tie_embeddings else 0
        return ParamCount(embedding + dense, embedding, dense + tied)
    if model.kind == "llama":
        head_dim = d // model.heads
        kv = (model.kv_heads or model.heads) * head_dim
        hidden = llama_ffn_hidden(d, model.multiple_of, model.ffn_dim_multiplier)
        block = 2 * d + d * d + 2 * d * kv + d * d + 3 * d * hidden
        embedding = vocab * d
        dense = layers * block + d + vocab * d
        return ParamCount(embedding + dense, embedding, dense)
    raise ValueError(f"unknown model kind {model.kind!r}")


def flops_per_token(model: Any, *, vocab: int, context: int, seq_len: int) -> int:
    """Training FLOPs per token: ``6 × dense params + 12 × layers × dim × seq_len``."""
    dense = count_params(model, vocab=vocab, context=context).dense
    return 6 * dense + 12 * model.layers * model.dim * seq_len


def mfu(flops_token: float, *, tokens_per_s: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the peak of the devices that achieved them."""
    return flops_token * tokens_per_s / peak_flops if peak_flops > 0 else 0.0


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
        return {"params": self.params, "grads": self.grads, "optimizer": self.optimizer,
                "activations": self.activations, "logits": self.logits, "total": self.total}


def memory_estimate(model: Any, *, vocab: int, context: int, seq_len: int, local_batch: int,
                    shard: int = 1, activation_bytes: int = 4,
                    activation_checkpoint: str = "none") -> MemoryEstimate:
    """Bytes per rank for training ``model`` (see the module docstring for the formulas).

    >>> from procdsl.plan import Gpt2Model
    >>> m = memory_estimate(Gpt2Model(layers=2, heads=4, dim=128), vocab=356, context=256,
    ...                     seq_len=256, local_batch=16)
    >>> m.params, m.optimizer, m.activations, m.logits
    (2082816, 4165632, 71303168, 11665408)

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
    return MemoryEstimate(params=4 * per_rank, grads=4 * per_rank, optimizer=8 * per_rank,
                          activations=activations, logits=tokens * vocab * 8)


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


_MEASURED: dict[str, float] = {}


def peak_flops(device: str) -> float:
    """Peak FLOP/s of one device, the denominator of MFU.

    ``PROCDSL_PEAK_FLOPS`` overrides. CUDA: TorchTitan's table of datasheet bf16 peaks, by
    device name. CPU: no datasheet applies, so the float32 matmul throughput this process
    measures once (~0.2 s, :func:`_measure_matmul`) stands in: CPU MFU says how close
    training gets to what this machine's matmul kernels reach.
    """
    if os.environ.get("PROCDSL_PEAK_FLOPS"):
        return float(os.environ["PROCDSL_PEAK_FLOPS"])
    if device in _MEASURED:
        return _MEASURED[device]
    import torch

    if device == "cuda":
        from torchtitan.tools.utils import get_peak_flops

        value = float(get_peak_flops(torch.cuda.get_device_name()))
    else:
        value = _measure_matmul(torch)
    _MEASURED[device] = value
    return value


def _measure_matmul(torch: Any, size: int = 512, seconds: float = 0.2) -> float:
    """FLOP/s of float32 ``size``² matmuls: one thread, best of five trials, × torch's threads.

    One thread because a multi-threaded measurement collapses (10× slower) whenever another
    process holds a core for a moment — OpenMP's barriers wait for the slowest thread.
    """
    generator = torch.Generator().manual_seed(0)  # never the global RNG: training is seeded
    a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.mm(a, b)  # warm-up
        best = 0.0
        for _ in range(5):
            count, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / 5:
                torch.mm(a, b)
                count += 1
            best = max(best, 2 * size ** 3 * count / elapsed)
    finally:
        torch.set_num_threads(threads)
    return best * threads
