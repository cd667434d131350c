"""The one place where procdsl adapts TorchTitan 0.2.2 to the machine: device, process group, FSDP, gc.

TorchTitan 0.2.2 is written for GPUs. On a CPU-only machine it goes wrong in six ways, and
every fix lives in this module (nothing else in procdsl touches devices, backends, FSDP
reduction settings, gc or NCCL variables):

0. **Imports.** ``torchtitan.train`` imports triton (MoE kernels), datasets (C4 loader), tyro
   (config parser) and torchdata (dataloader base) whatever the device; the ``runtime`` extra
   of pyproject installs them and :func:`missing_packages` names any that are absent, before
   anything imports TorchTitan.
1. **Device.** ``torchtitan.tools.utils`` picks ``device_type``/``device_module`` once, at import,
   from accelerator availability, and falls back to ``"cuda"`` when there is none; the Trainer
   then calls ``torch.cuda.set_device`` and the metrics read ``torch.cuda.memory_stats``.
   :func:`adapt_torchtitan` rebinds those two module globals (and the copies that
   ``metrics``, ``parallel_dims``, ``distributed.utils`` and ``profiling`` took with
   ``from ... import device_type``) to ``"cpu"`` and :class:`CpuDeviceModule`, a stand-in that
   answers the handful of ``torch.cuda`` calls TorchTitan makes. The installed files are untouched.
2. **Backend.** :func:`backend_for`: cpu → gloo, cuda → nccl. :func:`init_process_group` creates
   the default group itself (TorchTitan's ``init_distributed`` then sees it initialised and only
   builds the meshes), so a single process needs no launcher (:func:`single_process_env`).
3. **NCCL variables.** TorchTitan's ``init_distributed`` always exports ``TORCH_NCCL_*``/
   ``TORCH_FR_*`` and creates a ``comm_traces`` folder. :func:`nccl_env` yields them only for
   CUDA; because we initialise the group first, TorchTitan never sets them on the CPU.
4. **FSDP on gloo.** TorchTitan sets ``gradient_divide_factor=1`` (the loss is already divided
   by the global count of valid tokens), which makes FSDP2 reduce-scatter with
   ``ReduceOp.PREMUL_SUM``; gloo rejects it ("Cannot use ReduceOp.PREMUL_SUM with Gloo").
   :func:`configure_fsdp_reduction` sets ``set_force_sum_reduction_for_comms(True)`` on every
   FSDP module when :func:`needs_force_sum_reduction`. Sharded CPU runs keep float32
   parameters (:func:`mixed_precision_param`): the CPU is where runs must reproduce exactly.
   (With torch 2.13 a bf16 all-gather over gloo did work in a probe: a policy, not a limit.)
5. **Garbage collection.** ``GarbageCollection`` calls ``gc.disable()`` (collecting by hand every
   ``training.gc_freq`` steps, to keep GPU ranks in step) and never re-enables it.
   :func:`automatic_gc` says whether ``ProcdslTrainer`` turns automatic collection back on
   (CPU: yes). Trainers overlap at a phase boundary (the next is built before the previous
   closes), so the caller's gc state and the launcher variables a trainer added are held by
   :data:`PROCESS` for all live trainers together and restored when the *last* one closes —
   never by one trainer on top of another's policy.

Contract: the functions named above without side effects (``missing_packages``,
``resolve_device``, ``backend_for``, ``needs_force_sum_reduction``, ``mixed_precision_param``,
``automatic_gc``, ``nccl_env``, ``single_process_env``) are pure; ``adapt_torchtitan``,
``init_process_group`` and ``configure_fsdp_reduction`` apply them and are idempotent;
:class:`ProcessState` is the one holder of process-wide state.

>>> backend_for(resolve_device("auto", cuda_available=False))
'gloo'
>>> mixed_precision_param("cpu", "bfloat16", sharded=True)
'float32'
"""

from __future__ import annotations

import gc
import importlib.util
import os
import resource
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

RUNTIME_PACKAGES = ("torch", "torchtitan", "triton", "torchdata", "tyro", "datasets")
DEVICES = ("cpu", "cuda")
_BACKENDS = {"cpu": "gloo", "cuda": "nccl"}

# TorchTitan's device globals (torchtitan.tools.utils). Several modules copy them at import
# (`from torchtitan.tools.utils import device_type`); `adapt_torchtitan` rebinds every copy.
_DEVICE_GLOBALS = ("device_type", "device_module")


def missing_packages(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """The packages importing ``torchtitan.train`` needs that are not installed.

    >>> missing_packages(lambda name: None if name == "triton" else object())
    ['triton']
    """
    return [name for name in RUNTIME_PACKAGES if find_spec(name) is None]


def resolve_device(requested: str = "auto", *, cuda_available: bool) -> str:
    """The device to train on: ``"cuda"`` or ``"cpu"``; ``"auto"`` takes CUDA when present.

    >>> resolve_device("auto", cuda_available=True), resolve_device("cpu", cuda_available=True)
    ('cuda', 'cpu')
    """
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; expected one of auto, cpu, cuda")
    if requested == "cuda" and not cuda_available:
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    return requested


def backend_for(device: str) -> str:
    """The torch.distributed backend for a device: gloo on the CPU, NCCL on CUDA."""
    try:
        return _BACKENDS[device]
    except KeyError:
        raise ValueError(f"no process-group backend for device {device!r}") from None


def needs_force_sum_reduction(backend: str) -> bool:
    """Whether FSDP must restrict its collectives to SUM (gloo has no PREMUL_SUM/AVG)."""
    return backend == "gloo"


def mixed_precision_param(device: str, requested: str, *, sharded: bool) -> str:
    """``training.mixed_precision_param`` for this run.

    With FSDP (``sharded``) the value is FSDP's all-gather dtype; on the CPU we keep float32.
    Unsharded runs use it for ``torch.autocast``, which supports bfloat16 on the CPU too.

    >>> mixed_precision_param("cpu", "bfloat16", sharded=False)
    'bfloat16'
    """
    if device == "cpu" and sharded:
        return "float32"
    return requested


def automatic_gc(device: str) -> bool:
    """Whether automatic garbage collection stays on while training.

    TorchTitan turns it off so that GPU ranks do not wait for one rank's collection; on the
    CPU the ranks are slow anyway and a disabled gc only leaks reference cycles.
    """
    return device == "cpu"


def nccl_env(device: str, *, trace_buf_size: int, dump_dir: str) -> dict[str, str]:
    """The NCCL / flight-recorder variables TorchTitan sets, for CUDA only (empty otherwise).

    >>> nccl_env("cpu", trace_buf_size=20000, dump_dir="out/comm_traces")
    {}
    """
    if device != "cuda":
        return {}
    env = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "3", "TORCH_FR_BUFFER_SIZE": str(trace_buf_size)}
    if trace_buf_size > 0:
        env["TORCH_NCCL_DUMP_ON_TIMEOUT"] = "1"
        env["TORCH_FR_DUMP_TEMP_FILE"] = os.path.join(dump_dir, "rank_")
    return env


def single_process_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Launcher variables to add so that one process without torchrun can train.

    Empty when a launcher (torchrun, SLURM wrapper) already set ``WORLD_SIZE``.
    ``MASTER_PORT=0`` lets the rank-0 store bind any free port.

    >>> single_process_env({"WORLD_SIZE": "2"})
    {}
    >>> sorted(single_process_env({}))
    ['LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE']
    """
    if "WORLD_SIZE" in environ:
        return {}
    defaults = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "0",
    }
    return {k: v for k, v in defaults.items() if k not in environ}


class CpuDeviceModule:
    """Answers the ``torch.cuda`` calls TorchTitan 0.2.2 makes, for the CPU.

    Memory statistics report the process's peak resident set size (it cannot be reset, so
    "peak since last log" is "peak so far").
    """

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> int:
        return 0

    @staticmethod
    def set_device(device: Any) -> None:
        del device

    @staticmethod
    def synchronize(device: Any = None) -> None:
        del device

    @staticmethod
    def empty_cache() -> None:
        pass

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        del device

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        del device
        return "cpu"

    @staticmethod
    def get_device_properties(device: Any = None) -> SimpleNamespace:
        del device
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return SimpleNamespace(total_memory=total)

    @staticmethod
    def memory_stats(device: Any = None) -> dict[str, int]:
        del device
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return {
            "active_bytes.all.peak": peak,
            "reserved_bytes.all.peak": peak,
            "num_alloc_retries": 0,
            "num_ooms": 0,
        }


def adapt_torchtitan(device: str) -> None:
    """Make the imported TorchTitan run on ``device`` (rebinds its device globals; idempotent)."""
    import torch
    import torchtitan.train  # noqa: F401  (loads every module that copies the device globals)
    from torchtitan.tools import utils

    wanted = {
        "device_type": device,
        "device_module": CpuDeviceModule if device == "cpu" else getattr(torch, device),
    }
    current = {name: getattr(utils, name) for name in _DEVICE_GLOBALS}
    if current == wanted:
        return
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "torchtitan" or name.startswith("torchtitan.")):
            continue
        for attr in _DEVICE_GLOBALS:
            if attr in vars(module) and vars(module)[attr] is current[attr]:
                setattr(module, attr, wanted[attr])


def init_process_group(device: str, *, timeout_seconds: int, trace_buf_size: int, dump_folder: str) -> None:
    """Create the default process group for ``device`` unless one exists (cpu: gloo, cuda: nccl)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    os.environ.update(single_process_env(os.environ))
    os.environ.update(
        nccl_env(device, trace_buf_size=trace_buf_size, dump_dir=os.path.join(dump_folder, "comm_traces"))
    )
    dist.init_process_group(backend=backend_for(device), timeout=timedelta(seconds=timeout_seconds))


def configure_fsdp_reduction(model: Any, backend: str) -> None:
    """Restrict FSDP2's collectives to SUM on backends that need it (gloo)."""
    from torch.distributed.fsdp import FSDPModule

    if not needs_force_sum_reduction(backend):
        return
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_force_sum_reduction_for_comms(True)


class ProcessState:
    """The process-wide state trainers change — gc and launcher variables — held for all of them.

    :meth:`hold` is called by each trainer before TorchTitan's ``__init__``: the first holder
    records gc's state and adds the launcher variables a single process lacks; :meth:`release`
    restores both when the last holder lets go. :meth:`apply_gc` sets the policy of the device
    after TorchTitan disabled gc.

    >>> state, env = ProcessState(), {}
    >>> was = gc.isenabled()
    >>> state.hold(env); state.hold(env); state.apply_gc("cuda")
    >>> sorted(env)[:2], gc.isenabled()
    (['LOCAL_RANK', 'MASTER_ADDR'], False)
    >>> state.release(env); gc.isenabled(), "RANK" in env   # the second trainer still holds it
    (False, True)
    >>> state.release(env); gc.isenabled() == was, env
    (True, {})
    """

    def __init__(self) -> None:
        self.holders = 0
        self.gc_was_enabled = True
        self.added_env: tuple[str, ...] = ()

    def hold(self, environ: Any = os.environ) -> None:
        if self.holders == 0:
            self.gc_was_enabled = gc.isenabled()
        # every holder finds the launcher variables set, even if a caller that set them
        # (``run.execute``) has removed them since an earlier holder took hold
        added = single_process_env(environ)
        environ.update(added)
        self.added_env = tuple(dict.fromkeys(self.added_env + tuple(added)))
        self.holders += 1

    def apply_gc(self, device: str) -> None:
        (gc.enable if automatic_gc(device) else gc.disable)()

    def release(self, environ: Any = os.environ) -> None:
        if self.holders == 0:
            return
        self.holders -= 1
        if self.holders == 0:
            (gc.enable if self.gc_was_enabled else gc.disable)()
            for name in self.added_env:
                environ.pop(name, None)
            self.added_env = ()


#: the process's one :class:`ProcessState`
PROCESS = ProcessState()
