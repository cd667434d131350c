"""TorchTitan's llama3, taught procdsl's row protocol: ``forward(tokens, positions, document)``.

:class:`Llama` is TorchTitan's ``Transformer`` unchanged but for its forward's signature, which
takes the keyword arguments every procdsl model takes (``procdsl.runtime.batches``):

* ``positions`` ``[b, T]`` (a packed row's position of each token within its unit) go to
  TorchTitan's RoPE as they are (``apply_rotary_emb(positions=…)``);
* ``document`` ``[b, T]`` (the unit number of each token) becomes a flex-attention
  ``BlockMask`` — causal *and* same unit — built with TorchTitan's own ``create_attention_mask``
  and mask mods. A model that reads packed rows is therefore built with ``attn_type="flex"``
  (:func:`procdsl.runtime.spec.llama_args` with ``flex=True``; the job config asks for it in
  ``packed`` phases); with ``attn_type="sdpa"`` (padded rows) attention is plain causal.

The parameters are TorchTitan's, so checkpoints, transfer and TorchTitan's parallelisation
apply as they are.
"""

from __future__ import annotations

import torch
from torch.nn.attention.flex_attention import and_masks
from torchtitan.models.attention import create_attention_mask, get_causal_mask_mod
from torchtitan.models.llama3.model.model import Transformer


def document_block_mask(document: torch.Tensor):
    """A flex-attention ``BlockMask``: query ``t`` sees key ``u ≤ t`` of the same unit."""
    batch, seq = document.shape

    def same_unit(b, h, q_idx, kv_idx):
        return document[b, q_idx] == document[b, kv_idx]

    return create_attention_mask(and_masks(get_causal_mask_mod(), same_unit), batch, None, seq, seq)


class Llama(Transformer):
    """TorchTitan's llama3 with procdsl's forward signature (module docstring)."""

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,  # type: ignore[override]
        document: torch.Tensor | None = None,
    ) -> torch.Tensor:
        masks = None
        if self.model_args.attn_type == "flex":
            # rows without unit numbers are one unit each: the same mask construction either way
            masks = document_block_mask(document if document is not None else torch.zeros_like(tokens))
        elif document is not None:
            raise ValueError(
                "packed rows need flex attention: build the model with "
                "attn_type='flex' (procdsl does so for packed phases)"
            )
        return super().forward(tokens, attention_masks=masks, positions=positions)
