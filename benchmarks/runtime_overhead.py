"""What ``procdsl run`` costs over bare TorchTitan: tokens/s ratio, data-wait share, phase switch.

Run: ``python benchmarks/runtime_overhead.py [--quick] [--nproc N] [--configs plain,accumulation,bf16+compile]``.
Each configuration (:data:`CONFIGS`: the plain float32 run, gradient accumulation over
microbatches of 2 rows, bf16 + torch.compile) is measured in one session, the runs of all
configurations interleaved repeat by repeat, and each is reported as the median over repeats:

* **procdsl** — ``procdsl run`` (the CLI, ``--nproc N``) on a two-phase curriculum: a procedural
  SORT phase, then a REVERSE phase that takes the blocks over (``transfer``); GPT-2
  (:data:`SHAPE`), checkpoints only at the phase ends, no evals. Its ``metrics.jsonl`` gives
  each step's wall time, the time spent in the dataloader's ``next()`` and the time it ended.
* **bare** — TorchTitan's own ``Trainer.train()`` loop (``procdsl.runtime.titan.ProcdslTrainer``:
  TorchTitan's Trainer plus only the CPU adaptations of ``procdsl.runtime.platform``) with
  procdsl's GPT-2 TrainSpec and phase 1's job config — same shape, vocabulary, batch, seq_len,
  ranks, optimizer — but a trivial in-memory dataloader (one fixed batch, forever), no
  checkpoints, and TorchTitan's default ``metrics.log_freq`` of 10.

Reported (the targets are printed, not asserted):

* tokens/s of each, from the median interval between consecutive step ends in the steady part
  of phase 1 (everything a step costs: data, forward/backward, optimizer, logging), and their
  ratio procdsl / bare (target ≥ 0.95);
* the data-wait fraction of procdsl: Σ time in ``next()`` / Σ step time (target < 1 %);
* the phase switch: wall time from the end of phase 1's last step to the start of phase 2's
  first step (phase-end checkpoint, next model and optimizer, transfer, next stream).

Numbers are noisy on a shared machine: rerun, or raise ``--steps``/``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CURRICULUM = """curriculum overhead {
  seed    = 0
  model   = gpt2(layers=%(layers)d, heads=%(heads)d, dim=%(dim)d)
  context = %(context)d
  batch   = %(batch)d
  runtime { checkpoint_every = 100000 steps  %(runtime)s }

  source sort = sort(length=8..32, vocab=64)
  source rev  = reverse(length=8..32, vocab=64)

  phase warm { steps = %(warm)d  mix = { sort: 100%% }  optimizer = adamw(lr=1e-3) }
  phase main {
    steps    = %(main)d
    transfer = { keep: [attn, mlp, norm, pos], reinit: [embed, head] }
    mix      = { rev: 100%% }
  }
}
"""
SHAPE = {"layers": 4, "heads": 4, "dim": 128, "context": 256, "batch": 8}
#: configuration name -> the ``runtime { }`` settings both runs share (via phase 1's job config)
CONFIGS = {"plain": "", "accumulation": "microbatch = 2", "bf16+compile": "dtype = bf16  compile = true"}
SKIP = 5  # first steps of a run left out of the steady state (allocator, caches warm up)


# --------------------------------------------------------------------------- the bare worker


class InMemoryBatches:
    """The trivial dataloader: one fixed ``(input_dict, labels)`` batch, yielded forever."""

    def __init__(self, batch_size: int, seq_len: int, vocab_size: int, seed: int):
        import torch

        generator = torch.Generator().manual_seed(seed)
        tokens = torch.randint(0, vocab_size, (batch_size, seq_len + 1), generator=generator)
        self.batch = ({"input": tokens[:, :-1].contiguous()}, tokens[:, 1:].contiguous())

    def __iter__(self):
        while True:
            yield self.batch

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        del state_dict


def build_in_memory(*, dp_world_size: int, dp_rank: int, job_config: Any) -> Any:
    """Dataloader factory for the bare run (``procdsl.dataloader = "__main__:build_in_memory"``)."""
    from torchtitan.components.dataloader import BaseDataLoader
    from torchtitan.protocols.train_spec import get_train_spec

    del dp_world_size
    vocab = get_train_spec(job_config.model.name).model_args[job_config.model.flavor].vocab_size
    loader = type("InMemoryDataLoader", (InMemoryBatches, BaseDataLoader), {})
    return loader(job_config.training.local_batch_size, job_config.training.seq_len, vocab, dp_rank)


def bare_worker(job_path: str, result_path: str) -> int:
    """One rank of the bare run: TorchTitan's ``train()``, each step's end time and data wait."""
    import torch.distributed as dist
    from procdsl.runtime.titan import ProcdslTrainer, job_config_from_dict
    from torchtitan.tools.logging import init_logger

    class TimedTrainer(ProcdslTrainer):
        steps: list[dict[str, float]] = []

        def batch_generator(self, data_iterable):
            batches = super().batch_generator(data_iterable)
            while True:
                start = time.perf_counter()
                batch = next(batches)
                self.waited += time.perf_counter() - start
                yield batch

        def train_step(self, data_iterator):
            self.waited = 0.0
            start = time.perf_counter()
            super().train_step(data_iterator)
            TimedTrainer.steps.append(
                {"step_time_s": time.perf_counter() - start, "data_wait_s": self.waited, "time": time.time()}
            )

    with open(job_path, encoding="utf-8") as f:
        job = job_config_from_dict(json.load(f))
    init_logger()
    trainer = TimedTrainer(job)
    try:
        trainer.train()
        rank = dist.get_rank()
    finally:
        trainer.close()
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        with open(result_path, "w", encoding="utf-8") as f:
            json.dump(TimedTrainer.steps, f)
    return 0


# --------------------------------------------------------------------------- the driver


def launcher_env(threads: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "RANK",
            "LOCAL_RANK",
            "WORLD_SIZE",
            "LOCAL_WORLD_SIZE",
            "GROUP_RANK",
            "MASTER_ADDR",
            "MASTER_PORT",
        )
    }
    env["OMP_NUM_THREADS"] = str(threads)  # alike for both runs
    return env


def run_procdsl(curr: Path, out: Path, nproc: int, threads: int) -> list[dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "procdsl.cli",
        "run",
        str(curr),
        "--out",
        str(out),
        "--nproc",
        str(nproc),
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, env=launcher_env(threads), capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"procdsl run failed:\n{done.stderr[-3000:]}")
    with open(out / "metrics.jsonl", encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r.get("kind") == "train"]


def run_bare(job: dict[str, Any], folder: Path, nproc: int, threads: int) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    job_path, result = folder / "job.json", folder / "steps.json"
    job_path.write_text(json.dumps(job))
    me = [str(Path(__file__).resolve()), "--bare-worker", str(job_path), str(result)]
    if nproc == 1:
        cmd = [sys.executable, *me]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(nproc),
            *me,
        ]
    done = subprocess.run(cmd, env=launcher_env(threads), capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bare TorchTitan run failed:\n{done.stderr[-3000:]}")
    return json.loads(result.read_text())


def bare_job(curr: Path, folder: Path, nproc: int) -> dict[str, Any]:
    """Phase 1's job config, with the in-memory dataloader, no checkpoints, default log_freq."""
    from procdsl.runtime.jobconfig import phase_job_config

    from procdsl.compiler import compile_file
    from procdsl.stream import PhaseVocab

    result = compile_file(str(curr), ())
    assert result.ok, result.diagnostics
    plan = result.plan
    vocab = PhaseVocab.for_phase(plan, plan.phases[0], cache_dir=None)
    job = phase_job_config(plan, 0, vocab_size=vocab.size, out=str(folder), device="cpu", world=nproc)
    job["procdsl"] = {"device": "cpu", "dataloader": "__main__:build_in_memory"}
    job["checkpoint"] = {"enable": False}
    job["metrics"] = {"log_freq": 10, "enable_tensorboard": False}
    return job


def steady(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return steps[SKIP:]


def periods(steps: list[dict[str, Any]]) -> list[float]:
    """Intervals between consecutive step ends (the whole cost of each step after the first)."""
    return [b["time"] - a["time"] for a, b in zip(steps, steps[1:])]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def switch_time(records: list[dict[str, Any]]) -> float:
    first = next(i for i, r in enumerate(records) if r["phase"] == "main")
    last, start = records[first - 1], records[first]
    return (start["time"] - start["step_time_s"]) - last["time"]


def switch_parts(out: Path, records: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The phase switch in two parts, split where rank 0's log says phase 2's trainer starts:
    (phase 1's end: its final checkpoint, closing its log; building phase 2: model, optimizer,
    stream, transfer)."""
    from datetime import datetime

    text = (out / "logs" / "rank_0.log").read_text()
    found = re.search(r"^\[titan\] (\S+ \S+) - INFO - Starting job: .* / main$", text, re.M)
    if not found:
        return None
    built = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
    first = next(i for i, r in enumerate(records) if r["phase"] == "main")
    last, start = records[first - 1], records[first]
    return built - last["time"], start["time"] - start["step_time_s"] - built


def summarize(
    name: str,
    ours: list[list[dict[str, Any]]],
    bare: list[list[dict[str, Any]]],
    parts: list[tuple[float, float] | None],
    tokens_per_step: int,
) -> float:
    """Print one configuration's comparison; returns the ratio procdsl / bare (medians)."""
    phase1 = [steady([r for r in run if r["phase"] == "warm"]) for run in ours]
    bare_steady = [steady(run) for run in bare]
    ours_period = statistics.median([p for run in phase1 for p in periods(run)])
    bare_period = statistics.median([p for run in bare_steady for p in periods(run)])
    ours_compute = statistics.median([r["step_time_s"] for run in phase1 for r in run])
    bare_compute = statistics.median([r["step_time_s"] for run in bare_steady for r in run])
    ratio = bare_period / ours_period
    # interference from other processes only adds time: the fastest tenth of the steps of each
    # run is the least disturbed estimate of what a step costs
    ours_fast = percentile([p for run in phase1 for p in periods(run)], 0.1)
    bare_fast = percentile([p for run in bare_steady for p in periods(run)], 0.1)
    wait = sum(r["data_wait_s"] for run in phase1 for r in run) / sum(
        r["step_time_s"] for run in phase1 for r in run
    )
    bare_wait = sum(r["data_wait_s"] for run in bare_steady for r in run) / sum(
        r["step_time_s"] for run in bare_steady for r in run
    )
    switches = [switch_time(run) for run in ours]
    flag = lambda ok: "ok" if ok else "BELOW TARGET"  # noqa: E731

    print(f"\n[{name}]")
    print(
        f"bare TorchTitan  {tokens_per_step / bare_period:10,.0f} tokens/s  (median step "
        f"interval {bare_period * 1e3:.1f} ms; train_step {bare_compute * 1e3:.1f} ms)"
    )
    print(
        f"procdsl run      {tokens_per_step / ours_period:10,.0f} tokens/s  (median step "
        f"interval {ours_period * 1e3:.1f} ms; train_step {ours_compute * 1e3:.1f} ms)"
    )
    for i, (a, b) in enumerate(zip(phase1, bare_steady)):
        mine, theirs = statistics.median(periods(a)), statistics.median(periods(b))
        print(
            f"  repeat {i + 1}: bare {tokens_per_step / theirs:,.0f}, procdsl "
            f"{tokens_per_step / mine:,.0f} tokens/s -> {theirs / mine:.3f}x"
        )
    print(
        f"ratio procdsl / bare: {ratio:.3f}x of the medians (target >= 0.95x: "
        f"{flag(ratio >= 0.95)}); {bare_fast / ours_fast:.3f}x of the fastest tenth of the steps"
    )
    print(
        f"data wait: {wait * 100:.3f}% of procdsl's step time (target < 1%: {flag(wait < 0.01)}); "
        f"bare in-memory loader {bare_wait * 100:.3f}%"
    )
    print(
        "phase switch (end of phase 1's last step -> start of phase 2's first): "
        + ", ".join(f"{s:.2f} s" for s in switches)
    )
    for i, part in enumerate(parts):
        if part is not None:
            print(
                f"  repeat {i + 1}: end of phase 1 (checkpoint, logs) {part[0]:.2f} s, building "
                f"phase 2 (model, optimizer, stream, transfer) {part[1]:.2f} s"
            )
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, one repeat")
    parser.add_argument("--nproc", type=int, default=1, help="ranks of both runs (default 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps of phase 1 (and of the bare run)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS of every rank of both runs (default 1: with more, one "
        "busy core elsewhere stalls OpenMP's barriers and the timings swing 5x)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs of each, interleaved")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}"
    )
    parser.add_argument("--bare-worker", nargs=2, metavar=("JOB", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        return bare_worker(*args.bare_worker)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    warm = args.steps or (25 if args.quick else 60)
    main_steps = 10 if args.quick else 20
    repeats = args.repeats or (1 if args.quick else 3)
    shape = SHAPE | {"warm": warm, "main": main_steps}
    tokens_per_step = shape["batch"] * shape["context"]

    ours: dict[str, list[list[dict[str, Any]]]] = {c: [] for c in configs}
    bare: dict[str, list[list[dict[str, Any]]]] = {c: [] for c in configs}
    parts: dict[str, list[tuple[float, float] | None]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="procdsl-overhead-") as tmp:
        root = Path(tmp)
        jobs = {}
        for name in configs:
            curr = root / f"{name}.curr"
            curr.write_text(CURRICULUM % (shape | {"runtime": CONFIGS[name]}))
            jobs[name] = (curr, bare_job(curr, root / f"bare-job-{name}", args.nproc))
        vocab = next(iter(jobs.values()))[1]["model"]["flavor"].split("vocab_size=")[1].split(",")[0]
        print(
            f"GPT-2 layers={shape['layers']} heads={shape['heads']} dim={shape['dim']}, "
            f"batch {shape['batch']} x seq_len {shape['context']} = {tokens_per_step} tokens/step, "
            f"vocabulary {vocab}, {args.nproc} rank(s) x {args.threads} thread(s) on "
            f"{os.cpu_count()} cores; phase 1 {warm} steps, phase 2 {main_steps}; configurations "
            f"{', '.join(configs)}, {repeats} repeat(s), interleaved",
            flush=True,
        )
        for i in range(repeats):
            for name in configs:
                curr, job = jobs[name]
                started = time.perf_counter()
                bare[name].append(run_bare(job, root / f"bare-{name}-{i}", args.nproc, args.threads))
                took_bare = time.perf_counter() - started
                started = time.perf_counter()
                out = root / f"procdsl-{name}-{i}"
                ours[name].append(run_procdsl(curr, out, args.nproc, args.threads))
                parts[name].append(switch_parts(out, ours[name][-1]))
                print(
                    f"  repeat {i + 1} {name}: bare {took_bare:.0f} s, procdsl "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )

    ratios = {name: summarize(name, ours[name], bare[name], parts[name], tokens_per_step) for name in configs}
    print(
        "\nratio procdsl / bare TorchTitan (median): "
        + ", ".join(f"{name} {ratio:.3f}x" for name, ratio in ratios.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
