"""Per-token cross-entropy and its per-source sums: the numbers behind ``loss`` and ``loss/<source>``.

Training and evaluation both compute the cross-entropy of every label once
(:func:`token_losses`, float32, 0 where the label is ``-100``). The gradient uses its sum; the
metrics use :func:`source_sums`, a float64 vector ``[loss sum per source…, targets per
source…, correct per source…]`` that one all-reduce makes global. Dividing sums by counts
after the reduction gives exactly the mean over the global batch's target tokens, the same
for any number of ranks.

>>> import torch
>>> logits = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 0.0]]])
>>> labels, source = torch.tensor([[1, 0, -100]]), torch.tensor([[0, 1, 1]])
>>> losses = token_losses(logits, labels)
>>> [round(x, 4) for x in losses.tolist()]
[0.6931, 0.0, 0.0]
>>> sums = source_sums(losses, labels, source, 2, logits=logits)
>>> [round(x, 4) for x in sums.tolist()]
[0.6931, 0.0, 1.0, 1.0, 0.0, 1.0]
>>> stats = means(sums, 2)
>>> [round(x, 3) for x in stats["loss"]], stats["targets"], stats["accuracy"]
([0.693, 0.0], [1.0, 1.0], [0.0, 1.0])
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torchtitan.components.loss import IGNORE_INDEX


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per label position, flattened, computed in float32; 0 where ignored."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(0, 1), reduction="none", ignore_index=IGNORE_INDEX
    )


def source_sums(
    losses: torch.Tensor,
    labels: torch.Tensor,
    source: torch.Tensor,
    n_sources: int,
    *,
    logits: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``[loss sums (S), target counts (S), correct predictions (S)]`` as float64 on the device
    of ``losses``, computed without a host sync (no boolean-mask indexing: masked positions add 0).

    ``correct`` (arg-max equals the label) is counted only when ``logits`` are given.
    """
    labels, source = labels.flatten(), source.flatten().to(labels.device)
    valid = (labels != IGNORE_INDEX).double()
    index = source.clamp(min=0)  # a masked position may carry no source; it adds 0 anyway
    out = torch.zeros(3 * n_sources, dtype=torch.float64, device=losses.device)
    out[:n_sources].index_add_(0, index, losses.detach().double() * valid)
    out[n_sources : 2 * n_sources].index_add_(0, index, valid)
    if logits is not None:
        hits = (logits.detach().flatten(0, 1).argmax(-1) == labels).double() * valid
        out[2 * n_sources :].index_add_(0, index, hits)
    return out


def means(sums: torch.Tensor, n_sources: int) -> dict[str, list[float]]:
    """Per source: mean loss, target count and accuracy (nan where a source had no target)."""
    values = sums.tolist()
    loss, targets, correct = (values[i * n_sources : (i + 1) * n_sources] for i in range(3))
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {
        "loss": [ratio(s, t) for s, t in zip(loss, targets)],
        "targets": targets,
        "accuracy": [ratio(c, t) for c, t in zip(correct, targets)],
    }
