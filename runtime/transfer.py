"""A phase's ``transfer``: what the new phase's model takes from the previous phase's.

The plan's :class:`~procdsl.plan.Transfer` partitions the components ``embed, pos, attn, mlp,
norm, head`` into ``keep`` and ``reinit``, names the ``freeze`` ones, and says how embedding
rows without a source are filled (``embed_init``). The runtime builds the new phase's model
fresh (seeded, so re-initialised components are reproducible), then :func:`apply_transfer`:

* **keep**: the parameter is copied. Embedding and head rows follow their *tokens*: each
  vocabulary range of the new phase (the text tokenizer's, or a procedural source's; see
  ``procdsl.stream.vocab``) that the previous phase also had is copied from its old offset to
  its new one (:func:`row_map`). Rows of ranges the previous phase lacked have no source: with
  ``embed_init = mean`` they become the mean of the old matrix's rows, else they keep their
  fresh N(0, 0.02) initialisation.
* **reinit**: the fresh initialisation stays — except ``embed`` with ``embed_init = mean``,
  whose every row becomes the mean of the old embedding.
* **perturb** (the paper's controls on kept weights): ``shuffle`` permutes each tensor's
  entries, ``noise(σ)`` adds Gaussian noise of σ × the tensor's standard deviation,
  ``scale(f)`` multiplies by f (:func:`perturbed`; deterministic in the phase's seed).
* **freeze**: ``requires_grad = False`` (:func:`freeze`); the optimizer is then built over the
  trainable parameters only, so frozen ones are never updated (weight decay included).
* ``optimizer = continue`` keeps the previous optimizer's per-parameter state (AdamW's step
  and moments) for every parameter that was kept with its shape unchanged
  (:func:`continue_optimizer`); the others start fresh.

:func:`transfer_tensors` is the pure core on full (unsharded) tensors. :func:`apply_transfer`
runs it a parameter at a time: it gathers the old and the fresh full tensor of one parameter
to the CPU, computes its new value there, and writes back each rank's shard, in chunks of at
most :data:`CHUNK_BYTES`; a re-initialised parameter is never gathered. So the device holds
no full model beside the two sharded ones, and the host at most one chunk.

>>> import torch
>>> from procdsl.plan import Transfer
>>> old = {"tok_embeddings.weight": torch.tensor([[1., 1.], [3., 5.]]),
...        "layers.0.mlp.up.weight": torch.ones(2, 2)}
>>> new = {"tok_embeddings.weight": torch.zeros(3, 2), "layers.0.mlp.up.weight": torch.zeros(2, 2)}
>>> out = transfer_tensors(old, new, Transfer(keep=("embed", "pos", "attn", "mlp", "norm", "head"),
...                                           embed_init="mean"), kind="gpt2", rows=[(0, 1, 2)])
>>> out["tok_embeddings.weight"].tolist(), out["layers.0.mlp.up.weight"].sum().item()
([[2.0, 3.0], [1.0, 1.0], [3.0, 5.0]], 4.0)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from .models.kinds import canonical, kind_of

#: components whose parameters have one row per vocabulary id
VOCAB_COMPONENTS = ("embed", "head")


class TransferError(ValueError):
    """A transfer the two models' shapes do not allow."""


def component_of(kind: str, name: str) -> str:
    """The transfer component of parameter ``name`` in a ``kind`` (gpt2 | llama) model.

    >>> component_of("llama", "layers.3.feed_forward.w2.weight"), component_of("gpt2", "norm.bias")
    ('mlp', 'norm')
    """
    return kind_of(kind).component_of(name)


def row_map(old_ranges: Iterable[Any], new_ranges: Iterable[Any]) -> list[tuple[int, int, int]]:
    """``(old_offset, new_offset, size)`` for each vocabulary range both phases have.

    Ranges are matched by name (``"text"`` or a source name) and must have the same size.

    >>> from procdsl.stream.vocab import IdRange
    >>> row_map([IdRange("sort", 0, 102)], [IdRange("text", 0, 258), IdRange("sort", 258, 102)])
    [(0, 258, 102)]
    """
    old = {r.name: r for r in old_ranges}
    pairs = []
    for r in new_ranges:
        if r.name in old and old[r.name].size == r.size:
            pairs.append((old[r.name].offset, r.offset, r.size))
    return pairs


def transfer_tensors(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    transfer: Any,
    *,
    kind: str,
    rows: Optional[Sequence[tuple[int, int, int]]] = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The new model's full parameters after ``transfer`` (module docstring), as a new dict.

    ``old``/``new``: canonical name → full tensor (``new`` freshly initialised, not modified).
    ``rows``: the :func:`row_map` of the two vocabularies; ``None`` copies the common prefix.
    ``seed``: the phase's seed, for the random perturbations (:func:`perturbed`).
    """
    import torch

    perturbations = dict(getattr(transfer, "perturb", None) or {})
    out: dict[str, Any] = {}
    with torch.no_grad():
        for name, fresh in new.items():
            component = component_of(kind, name)
            if component in transfer.keep:
                if name not in old:
                    raise TransferError(
                        f"cannot keep {name}: the previous phase's model has no such parameter"
                    )
                out[name] = _kept(name, old[name], fresh, component, transfer.embed_init, rows)
                if component in perturbations:
                    out[name] = perturbed(out[name], perturbations[component], seed=seed, name=name)
            elif component == "embed" and transfer.embed_init == "mean":
                out[name] = old[name].float().mean(0).to(fresh.dtype).expand_as(fresh).clone()
            else:
                out[name] = fresh.clone()
    return out


def _kept(
    name: str,
    source: Any,
    fresh: Any,
    component: str,
    embed_init: str,
    rows: Optional[Sequence[tuple[int, int, int]]],
) -> Any:
    import torch

    if source.shape == fresh.shape and (
        rows is None or component not in VOCAB_COMPONENTS or _identity(rows, source.shape[0])
    ):
        return source.clone()
    if component not in VOCAB_COMPONENTS or source.shape[1:] != fresh.shape[1:]:
        raise TransferError(
            f"cannot keep {name}: its shape changes from {tuple(source.shape)} to {tuple(fresh.shape)}"
        )
    target = fresh.clone()
    if rows is None:
        n = min(source.shape[0], fresh.shape[0])
        rows = [(0, 0, n)]
    uncovered = torch.ones(fresh.shape[0], dtype=torch.bool)
    for old_at, new_at, size in rows:
        target[new_at : new_at + size] = source[old_at : old_at + size]
        uncovered[new_at : new_at + size] = False
    if embed_init == "mean" and bool(uncovered.any()):
        target[uncovered] = source.float().mean(0).to(fresh.dtype)
    return target


def perturbed(tensor: Any, perturb: Any, *, seed: int, name: str) -> Any:
    """A kept tensor under one of the paper's controls, deterministic in ``(seed, name)``.

    ``shuffle``: its entries permuted (same values, no structure); ``noise``: plus Gaussian noise
    of ``amount`` × the tensor's standard deviation; ``scale``: times ``amount``.

    >>> import torch
    >>> from procdsl.plan.model import Perturb
    >>> t = torch.arange(6.0).reshape(2, 3)
    >>> perturbed(t, Perturb(kind="scale", amount=0.5), seed=0, name="w").tolist()
    [[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]]
    >>> s = perturbed(t, Perturb(kind="shuffle"), seed=0, name="w")
    >>> sorted(s.flatten().tolist()) == t.flatten().tolist(), torch.equal(s, perturbed(t, Perturb(kind="shuffle"), seed=0, name="w"))
    (True, True)
    """
    import torch

    if perturb.kind == "scale":
        return tensor * perturb.amount
    generator = torch.Generator().manual_seed(
        int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little") >> 1
    )
    if perturb.kind == "shuffle":
        order = torch.randperm(tensor.numel(), generator=generator).to(tensor.device)
        return tensor.flatten()[order].reshape(tensor.shape)
    if perturb.kind == "noise":
        std = tensor.float().std() if tensor.numel() > 1 else tensor.new_zeros(())
        noise = torch.randn(tensor.shape, generator=generator).to(tensor.device, torch.float32)
        return (tensor.float() + perturb.amount * std * noise).to(tensor.dtype)
    raise ValueError(f"unknown perturbation {perturb.kind!r}")


def _identity(rows: Sequence[tuple[int, int, int]], n: int) -> bool:
    return sum(size for old, new, size in rows if old == new) == n


#: bytes of full tensors :func:`apply_transfer` gathers on the host before writing them back
CHUNK_BYTES = 2**28


def full_on_cpu(param: Any) -> Any:
    """A parameter's full value on the CPU (gathered from every rank if it is a DTensor:
    collective), detached; a CPU tensor that is not sharded is returned as it is, not copied."""
    value = param.detach()
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return value.cpu()


def needs_old(component: str, transfer: Any) -> bool:
    """Whether the new value of a ``component`` parameter depends on the previous model's.

    >>> from procdsl.plan import Transfer
    >>> spec = Transfer(keep=("attn",), reinit=("embed", "pos", "mlp", "norm", "head"), embed_init="mean")
    >>> needs_old("attn", spec), needs_old("embed", spec), needs_old("pos", spec)
    (True, True, False)
    """
    return component in transfer.keep or (component == "embed" and transfer.embed_init == "mean")


def apply_transfer(
    old_model: Any,
    new_model: Any,
    transfer: Any,
    *,
    kind: str,
    rows: Optional[Sequence[tuple[int, int, int]]] = None,
    seed: int = 0,
) -> None:
    """Set ``new_model``'s parameters from ``old_model`` as ``transfer`` says, parameter by
    parameter (module docstring). Collective under FSDP: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    old_params = {canonical(n): p for n, p in old_model.named_parameters()}
    options = StateDictOptions(full_state_dict=True, strict=False)
    chunk: dict[str, Any] = {}
    size = 0
    for name, param in new_model.named_parameters():
        name = canonical(name)
        if not needs_old(component_of(kind, name), transfer):
            continue  # the fresh initialisation stays
        if name not in old_params:
            raise TransferError(f"cannot keep {name}: the previous phase's model has no such parameter")
        old = {name: full_on_cpu(old_params[name])}
        chunk |= transfer_tensors(old, {name: full_on_cpu(param)}, transfer, kind=kind, rows=rows, seed=seed)
        size += chunk[name].numel() * chunk[name].element_size()
        if size >= CHUNK_BYTES:
            set_model_state_dict(new_model, chunk, options=options)
            chunk, size = {}, 0
    if chunk:
        set_model_state_dict(new_model, chunk, options=options)


def freeze(model: Any, components: Iterable[str], *, kind: str) -> list[str]:
    """``requires_grad = False`` for the parameters of ``components``; returns their names."""
    wanted = set(components)
    frozen = []
    for name, param in model.named_parameters():
        if component_of(kind, name) in wanted:
            param.requires_grad_(False)
            frozen.append(canonical(name))
    return frozen


def continue_optimizer(
    old_optimizers: Any,
    old_model: Any,
    new_optimizers: Any,
    new_model: Any,
    *,
    keep: Iterable[str],
    kind: str,
) -> list[str]:
    """Hand AdamW state from the old optimizer to the new one for kept parameters whose shape
    is unchanged. The tensors are moved, not copied: the old optimizer is discarded after the
    phase boundary and never steps again.

    Works on the local shards, so both models must be sharded alike (same mesh, same shapes).
    Returns the canonical names whose state was carried over.
    """
    kept = set(keep)
    old_params = {canonical(n): p for n, p in old_model.named_parameters()}
    old_state = {}
    for optimizer in old_optimizers:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p in optimizer.state:
                    old_state[id(p)] = optimizer.state[p]
    carried = []
    new_names = {id(p): canonical(n) for n, p in new_model.named_parameters()}
    for optimizer in new_optimizers:
        for group in optimizer.param_groups:
            for p in group["params"]:
                name = new_names[id(p)]
                source = old_params.get(name)
                if (
                    source is None
                    or component_of(kind, name) not in kept
                    or source.shape != p.shape
                    or id(source) not in old_state
                ):
                    continue
                optimizer.state[p] = dict(old_state[id(source)])
                carried.append(name)
    return carried
