"""Contract of procdsl.runtime.internals with the pinned TorchTitan: what each adaptation relies on.

An upgrade of TorchTitan that renames an attribute, a hook argument or a constant fails here,
by name, before any training test does.
"""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import internals  # noqa: E402


def _source(obj) -> str:
    return inspect.getsource(obj)


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_pinned_version():
    assert importlib.metadata.version("torchtitan") == "0.2.2"


def test_trainer_attributes_and_hooks():
    """Adaptations 3, 4, 6 and PhaseTrainer's hooks: the Trainer's fields and hook signatures."""
    from torchtitan.train import Trainer

    init = _source(Trainer.__init__)
    for field in (
        "self.maybe_enable_amp",
        "self.metrics_processor",
        "self.checkpointer",
        "self.optimizers",
        "self.lr_schedulers",
        "self.model_parts",
        "self.parallel_dims",
        "self.train_spec",
        "self.gradient_accumulation_steps",
        "self.train_context",
        "self.gc_handler",
    ):
        assert field in init, field
    assert _parameters(Trainer.forward_backward_step) == [
        "self",
        "input_dict",
        "labels",
        "global_valid_tokens",
    ]
    assert _parameters(Trainer.post_dataloading_process) == ["self", "input_dict", "labels"]
    assert _parameters(Trainer.train_step) == ["self", "data_iterator"]
    assert "data_loading_times.append" in _source(Trainer.batch_generator)


def test_checkpointer_contract():
    """Adaptation 5: the states dict, the flattening of a load, staging and the save future."""
    from torchtitan.components import checkpoint

    assert (checkpoint.MODEL, checkpoint.OPTIMIZER, checkpoint.LR_SCHEDULER) == (
        "model",
        "optimizer",
        "lr_scheduler",
    )
    manager = checkpoint.CheckpointManager
    assert _parameters(manager._states_to_load) == ["self", "model_only"]
    assert callable(manager.maybe_wait_for_staging)
    assert "self.states" in _source(manager.__init__)
    assert "self.save_future" in _source(manager)


def test_step_pieces():
    """Adaptation 6: gradient clipping's arguments, the schedulers' list, the metrics' wait times."""
    from torchtitan.components.lr_scheduler import LRSchedulersContainer
    from torchtitan.components.metrics import MetricsProcessor
    from torchtitan.distributed import ParallelDims
    from torchtitan.distributed import utils as dist_utils

    assert {"foreach", "pp_mesh", "ep_enabled"} <= set(_parameters(dist_utils.clip_grad_norm_))
    assert "self.schedulers" in _source(LRSchedulersContainer.__init__)
    metrics = _source(MetricsProcessor.__init__)
    assert "self.data_loading_times" in metrics and "self.optimizers" in metrics
    for name in ("fsdp_enabled", "dp_enabled", "cp_enabled"):
        assert isinstance(inspect.getattr_static(ParallelDims, name), property), name
    assert callable(ParallelDims.get_mesh)


def test_autocast_and_compile_adaptations():
    """Adaptations 3 and 7 on stand-ins: a float32 run has no autocast; nothing compiled is counted."""

    class Stub:
        maybe_enable_amp = torch.autocast("cpu", dtype=torch.bfloat16)

    trainer = Stub()
    assert internals.autocast_of(trainer) is trainer.maybe_enable_amp
    internals.disable_float32_autocast(trainer)
    assert internals.autocast_of(trainer) is None
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert internals.compiled_modules(model) == 0
    from torch._dynamo.eval_frame import OptimizedModule

    assert issubclass(OptimizedModule, torch.nn.Module)
