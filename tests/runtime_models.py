"""Test helper: build a model the way TorchTitan's Trainer does (meta → to_empty → init_weights)."""

from __future__ import annotations

import torch


def materialize(model_cls, args, seed: int = 0):
    """``model_cls(args)`` constructed on the meta device, materialised on the CPU, seeded init."""
    with torch.device("meta"):
        model = model_cls(args)
    model.to_empty(device="cpu")
    torch.manual_seed(seed)
    with torch.no_grad():
        model.init_weights()
    return model
