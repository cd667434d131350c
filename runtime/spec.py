"""procdsl's TorchTitan ``TrainSpec``s: ``procdsl_gpt2`` and ``procdsl_llama`` (TorchTitan's llama3).

How TorchTitan 0.2.2 uses a TrainSpec (``Trainer.__init__``, in this order):
``build_tokenizer_fn(job_config)`` (optional; ours is ``None`` — procdsl tokenises upstream),
``build_dataloader_fn(dp_world_size=, dp_rank=, tokenizer=, job_config=)``,
``model_args[job_config.model.flavor]`` then ``.update_from_config(job_config)``,
``model_cls(model_args)`` on the meta device, ``build_metrics_processor_fn(job_config,
parallel_dims, model_args)``, ``build_loss_fn(job_config, parallel_dims=)``,
``parallelize_fn(model, parallel_dims, job_config)``, then ``to_empty`` + ``init_weights()``,
``build_optimizers_fn(model_parts, job_config.optimizer, parallel_dims)`` and
``build_lr_schedulers_fn(optimizers, job_config.lr_scheduler, job_config.training.steps)``.
The loss function receives ``(logits, labels)`` and must return the *sum* over unmasked
positions (labels ≠ -100): the Trainer divides by the global count of valid tokens itself.
TorchTitan's ``build_cross_entropy_loss`` is exactly that, so both specs use it.

Flavors: ``model_args`` is a :class:`FlavorTable`, so ``model.flavor`` may name a preset
(``"debugmodel"``, ``"124M"``; llama3's own presets for llama) or spell a shape, as procdsl's
plan gives it: ``"layers=12,heads=12,dim=768,vocab_size=50257,context=1024"``.

Dataloader: ``procdsl.dataloader`` in the job config names a factory ``"module:function"``
called as ``factory(dp_world_size=, dp_rank=, job_config=)`` (:func:`load_factory`; the synthetic one is
``procdsl.runtime.synthetic:build_synthetic``).

Every ``parallelize_fn`` is wrapped by :func:`with_platform`, which applies the backend's FSDP
settings from ``procdsl.runtime.platform`` after the model's own parallelisation.

>>> parse_flavor("layers=2,heads=4,dim=64,vocab_size=256,context=128,tie_embeddings=true")
{'layers': 2, 'heads': 4, 'dim': 64, 'vocab_size': 256, 'context': 128, 'tie_embeddings': True}
>>> parse_flavor("dropout=0.1")
{'dropout': 0.1}
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch.distributed as dist
from torchtitan.components.loss import build_cross_entropy_loss
from torchtitan.components.lr_scheduler import build_lr_schedulers
from torchtitan.components.optimizer import build_optimizers
from torchtitan.models import llama3
from torchtitan.protocols import train_spec
from torchtitan.protocols.train_spec import TrainSpec

from . import platform
from .metrics import build_metrics_processor
from .models.gpt2 import GPT2, GPT2ModelArgs
from .models.llama import Llama
from .models.parallelize import parallelize_gpt2

GPT2_SPEC = "procdsl_gpt2"
LLAMA_SPEC = "procdsl_llama"


def parse_flavor(flavor: str) -> dict[str, int | float | bool]:
    """``"key=value,…"`` → keyword arguments; values are ints, floats or booleans (true/false)."""
    kwargs: dict[str, int | float | bool] = {}
    for item in flavor.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise KeyError(f"flavor {flavor!r} is neither a preset nor 'key=value,…'")
        kwargs[key] = _flavor_value(value, flavor)
    return kwargs


def _flavor_value(text: str, flavor: str) -> int | float | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise KeyError(f"flavor {flavor!r}: {text!r} is not a number or true/false")


class FlavorTable(Mapping):
    """Named presets plus any shape spelled as a flavor string; every lookup returns a fresh copy
    (the Trainer mutates the args it gets through ``update_from_config``)."""

    def __init__(self, presets: Mapping[str, Any], build: Callable[..., Any]):
        self.presets, self.build = dict(presets), build

    def __getitem__(self, flavor: str) -> Any:
        if flavor in self.presets:
            return copy.deepcopy(self.presets[flavor])
        try:
            return self.build(**parse_flavor(flavor))
        except TypeError as e:
            raise KeyError(f"flavor {flavor!r}: {e}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.presets)

    def __len__(self) -> int:
        return len(self.presets)


def with_platform(parallelize_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a TorchTitan ``parallelize_fn`` so the backend's FSDP settings are applied after it."""

    @functools.wraps(parallelize_fn)
    def parallelize(model, parallel_dims, job_config):
        model = parallelize_fn(model, parallel_dims, job_config)
        platform.configure_fsdp_reduction(model, dist.get_backend())
        return model

    return parallelize


def load_factory(path: str) -> Any:
    """Resolve ``"package.module:function"`` (how configs name a dataloader factory)."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expected 'package.module:function', got {path!r}")
    return getattr(importlib.import_module(module), attr)


def build_dataloader(
    *, dp_world_size: int, dp_rank: int, tokenizer: Any, job_config: Any, **kwargs: Any
) -> Any:
    """``TrainSpec.build_dataloader_fn``: delegate to the factory named by ``procdsl.dataloader``."""
    del tokenizer, kwargs
    section = getattr(job_config, "procdsl", None)
    if section is None:
        raise ValueError(
            "job config has no 'procdsl' section naming a dataloader factory; "
            "build it with procdsl.runtime.titan.ProcdslJobConfig"
        )
    factory = load_factory(section.dataloader)
    return factory(dp_world_size=dp_world_size, dp_rank=dp_rank, job_config=job_config)


def gpt2_spec() -> TrainSpec:
    """GPT-2 (``procdsl.runtime.models``), data parallel only, TorchTitan's AdamW/schedules/loss."""
    presets = {
        "debugmodel": GPT2ModelArgs.from_shape(layers=2, heads=4, dim=64, vocab_size=256, context=256),
        "124M": GPT2ModelArgs.from_shape(layers=12, heads=12, dim=768, vocab_size=50257, context=1024),
    }
    return TrainSpec(
        model_cls=GPT2,
        model_args=FlavorTable(presets, GPT2ModelArgs.from_shape),
        parallelize_fn=with_platform(parallelize_gpt2),
        pipelining_fn=None,
        build_optimizers_fn=build_optimizers,
        build_lr_schedulers_fn=build_lr_schedulers,
        build_dataloader_fn=build_dataloader,
        build_tokenizer_fn=None,
        build_loss_fn=build_cross_entropy_loss,
        build_metrics_processor_fn=build_metrics_processor,
    )


def llama_args(
    *,
    layers: int,
    heads: int,
    dim: int,
    vocab_size: int,
    context: int,
    kv_heads: int | None = None,
    multiple_of: int = 256,
    ffn_dim_multiplier: float | None = None,
    rope_theta: float = 500000.0,
    flex: bool = False,
) -> Any:
    """TorchTitan llama3 args from the plan's ``model`` fields (``context`` → ``max_seq_len``,
    which TorchTitan then sets to ``training.seq_len``); ``flex``: flex attention, for the
    document masks of packed rows (``procdsl.runtime.models.llama``)."""
    return llama3.TransformerModelArgs(
        dim=dim,
        n_layers=layers,
        n_heads=heads,
        n_kv_heads=kv_heads,
        vocab_size=vocab_size,
        max_seq_len=context,
        multiple_of=multiple_of,
        ffn_dim_multiplier=ffn_dim_multiplier,
        rope_theta=rope_theta,
        attn_type="flex" if flex else "sdpa",
    )


def llama_spec() -> TrainSpec:
    """TorchTitan's llama3 spec with procdsl's dataloader, metrics, flavors and platform hook."""
    base = llama3.get_train_spec()
    return dataclasses.replace(
        base,
        model_cls=Llama,
        model_args=FlavorTable(llama3.llama3_args, llama_args),
        parallelize_fn=with_platform(base.parallelize_fn),
        build_dataloader_fn=build_dataloader,
        build_tokenizer_fn=None,
        build_validator_fn=None,
        build_metrics_processor_fn=build_metrics_processor,
    )


SPECS: dict[str, Callable[[], TrainSpec]] = {GPT2_SPEC: gpt2_spec, LLAMA_SPEC: llama_spec}


def register() -> None:
    """Register both specs with TorchTitan (once per process; later calls do nothing)."""
    for name, build in SPECS.items():
        try:
            train_spec.get_train_spec(name)
        except ValueError:
            train_spec.register_train_spec(name, build())
