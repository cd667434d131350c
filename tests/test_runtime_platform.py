"""procdsl.runtime.platform: the CPU/gloo decisions as pure functions, and their application."""

from __future__ import annotations

import sys

import pytest
from procdsl.runtime import platform


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", False, "cpu"),
        ("auto", True, "cuda"),
        ("cpu", True, "cpu"),
        ("cuda", True, "cuda"),
    ],
)
def test_resolve_device(requested, cuda, expected):
    assert platform.resolve_device(requested, cuda_available=cuda) == expected


@pytest.mark.parametrize(("requested", "message"), [("cuda", "no CUDA"), ("mps", "unknown device")])
def test_resolve_device_rejects(requested, message):
    with pytest.raises(ValueError, match=message):
        platform.resolve_device(requested, cuda_available=False)


def test_backend_and_reduction():
    assert platform.backend_for("cpu") == "gloo"
    assert platform.backend_for("cuda") == "nccl"
    with pytest.raises(ValueError):
        platform.backend_for("xpu")
    assert platform.needs_force_sum_reduction("gloo")
    assert not platform.needs_force_sum_reduction("nccl")


@pytest.mark.parametrize(
    ("device", "requested", "sharded", "expected"),
    [
        ("cpu", "bfloat16", True, "float32"),
        ("cpu", "bfloat16", False, "bfloat16"),  # unsharded: torch.autocast, which does bf16 on CPU
        ("cpu", "float32", True, "float32"),
        ("cuda", "bfloat16", True, "bfloat16"),
    ],
)
def test_mixed_precision_param(device, requested, sharded, expected):
    assert platform.mixed_precision_param(device, requested, sharded=sharded) == expected


def test_gc_policy():
    assert platform.automatic_gc("cpu")
    assert not platform.automatic_gc("cuda")


def test_nccl_env_only_for_cuda():
    assert platform.nccl_env("cpu", trace_buf_size=20000, dump_dir="d") == {}
    env = platform.nccl_env("cuda", trace_buf_size=20000, dump_dir="d")
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "3"
    assert env["TORCH_FR_DUMP_TEMP_FILE"] == "d/rank_"
    assert "TORCH_NCCL_DUMP_ON_TIMEOUT" not in platform.nccl_env("cuda", trace_buf_size=0, dump_dir="d")


def test_single_process_env():
    assert platform.single_process_env({"WORLD_SIZE": "4"}) == {}
    env = platform.single_process_env({"MASTER_ADDR": "10.0.0.1"})
    assert env == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "0"}


def test_cpu_device_module_answers_torchtitan_calls():
    dm = platform.CpuDeviceModule
    dm.set_device("cpu:0")
    dm.synchronize()
    dm.reset_peak_memory_stats()
    dm.empty_cache()
    assert dm.get_device_properties("cpu").total_memory > 0
    stats = dm.memory_stats("cpu")
    assert stats["reserved_bytes.all.peak"] > 0 and stats["num_ooms"] == 0


def test_adapt_torchtitan_rebinds_every_copy():
    pytest.importorskip("torchtitan")
    platform.adapt_torchtitan("cpu")
    platform.adapt_torchtitan("cpu")  # idempotent
    holders = {
        name: vars(module)
        for name, module in sys.modules.items()
        if module is not None and name.startswith("torchtitan")
    }
    types = {name: ns["device_type"] for name, ns in holders.items() if "device_type" in ns}
    modules = {name: ns["device_module"] for name, ns in holders.items() if "device_module" in ns}
    assert {
        "torchtitan.tools.utils",
        "torchtitan.components.metrics",
        "torchtitan.distributed.parallel_dims",
        "torchtitan.distributed.utils",
    } <= set(types)
    assert set(types.values()) == {"cpu"}
    assert set(modules.values()) == {platform.CpuDeviceModule}


def test_missing_packages():
    assert platform.missing_packages(lambda name: object()) == []
    assert platform.missing_packages(lambda name: None) == list(platform.RUNTIME_PACKAGES)
