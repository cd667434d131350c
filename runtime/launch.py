"""How ``procdsl run`` becomes N training processes: join a launcher's job, or launch one.

Three cases (:func:`launch_mode`):

* **joined** — ``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR`` are already set (torchrun, or a
  SLURM script that runs torchrun; see ``procdsl.runtime.slurm``): this process *is* one rank
  and trains in place; ``--nproc`` is ignored.
* **single** — ``--nproc 1``: train in this process (no launcher; ``procdsl.runtime.platform``
  supplies the variables a one-rank process group needs).
* **spawn** — ``--nproc N > 1``: start N workers with torchrun's standalone semantics
  (``torch.distributed.launcher.api.elastic_launch``, a c10d rendezvous on a free local port,
  no restarts); each runs ``python -m procdsl.runtime.worker`` on the run directory whose
  ``plan.json`` the parent wrote, with ``OMP_NUM_THREADS`` = cores / N unless set (the ranks
  share the machine's cores). The parent waits and exits 0 only if every rank did; 3
  (``procdsl.runtime.preempt.EXIT_STOPPED``) when the ranks stopped on a signal with a
  checkpoint saved. Ctrl-C reaches every rank directly; a ``SIGTERM``/``SIGUSR1`` sent to the
  parent is forwarded to them, and the parent waits up to :data:`SHUTDOWN_TIMEOUT` seconds for
  their last checkpoint.

>>> launch_mode({"RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node7"}, nproc=8)
'joined'
>>> launch_mode({}, nproc=1), launch_mode({}, nproc=2)
('single', 'spawn')
>>> worker_args("runs/q", device="cpu", force_replan=True)
['-m', 'procdsl.runtime.worker', '--out', 'runs/q', '--device', 'cpu', '--force-replan']
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from procdsl.errors import CommandError

JOINED_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR")
#: seconds the parent of spawned ranks waits for them after a signal (they finish a step and save)
SHUTDOWN_TIMEOUT = 600


def launch_mode(environ: Mapping[str, str], *, nproc: int) -> str:
    """``"joined"``, ``"single"`` or ``"spawn"`` (module docstring)."""
    if all(environ.get(name) for name in JOINED_VARS):
        return "joined"
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    return "single" if nproc == 1 else "spawn"


def worker_args(out: str, *, device: str, force_replan: bool = False) -> list[str]:
    """Arguments after ``python`` that run one worker of the run in ``out``."""
    args = ["-m", "procdsl.runtime.worker", "--out", out, "--device", device]
    return args + (["--force-replan"] if force_replan else [])


def spawn(nproc: int, args: list[str]) -> int:
    """Run ``python *args`` on ``nproc`` local ranks (torchrun --standalone); 0 if all succeed."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .preempt import EXIT_STOPPED

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.2,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        signals_to_handle="SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
    )
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:  # as torchrun does, but share the cores instead of one thread each
        os.environ["OMP_NUM_THREADS"] = str(threads_per_rank(os.cpu_count() or 1, nproc))
    try:
        elastic_launch(config, sys.executable)(*args)
    except SignalException as signalled:  # forwarded to the ranks, which have stopped by now
        print(
            f"stopped: the ranks got {signalled.sigval.name}; rerun the same command to continue "
            f"(exit {EXIT_STOPPED})",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    except ChildFailedError as failure:
        if all(f.exitcode == EXIT_STOPPED for f in failure.failures.values()):
            return EXIT_STOPPED  # rank 0 said where the checkpoint is
        first = min(failure.failures)
        code = failure.failures[first].exitcode
        print(
            f"error: rank {first} of {nproc} failed (exit code {code}); see the messages above",
            file=sys.stderr,
        )
        return 1
    finally:
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_targets(
    targets: Any,
    *,
    nproc: int,
    device: str,
    dry_run: bool,
    force_replan: bool,
    say: Callable[[str], None] = _stderr,
) -> int:
    """``procdsl run``: train (or with ``dry_run`` describe) each of ``targets``' plans
    (:func:`procdsl.rundir.targets`) in its directory, a sweep's one after another, stopping at
    the first that does not succeed; its exit status. CommandError when one cannot start."""
    from procdsl.lang.diagnostics import visible

    status = 0
    for plan in targets.plans:
        run_dir = targets.dir_of(plan)
        if targets.sweep:
            say(visible(f"== {plan.name} → {run_dir}"))
        status = run_one(
            plan, run_dir, nproc=nproc, device=device, dry_run=dry_run, force_replan=force_replan, say=say
        )
        if status:
            break
    return status


def run_one(
    plan: Any,
    run_dir: str,
    *,
    nproc: int,
    device: str,
    dry_run: bool,
    force_replan: bool,
    say: Callable[[str], None] = _stderr,
) -> int:
    """Train (or describe) one plan in ``run_dir``, in this process, as one rank of a launcher's
    job or on ``nproc`` spawned ranks (:func:`launch_mode`); the exit status. CommandError when it
    cannot start: the runtime extra missing, no such device, a locked run directory or one that
    holds another plan (unless ``force_replan``; then ``say`` shows the plan's diff)."""
    from . import ownership

    mode = launch_mode(os.environ, nproc=nproc)
    try:
        import torch

        from .platform import missing_packages, resolve_device
    except ImportError:
        raise CommandError(
            "`procdsl run` needs the runtime extra: pip install 'procdsl[runtime]' torch"
        ) from None
    if missing := missing_packages():
        raise CommandError(f"`procdsl run` needs {', '.join(missing)}: pip install 'procdsl[runtime]'")
    try:
        resolved = resolve_device(device, cuda_available=torch.cuda.is_available())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    world = int(os.environ["WORLD_SIZE"]) if mode == "joined" else nproc
    if dry_run:
        from .jobconfig import ConfigError
        from .run import dry_run as describe

        try:
            print(describe(plan, out=run_dir, world=world, device=resolved), flush=True)
        except (ConfigError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        return 0
    from procdsl.plan import to_json

    from .run import run_and_report

    if mode == "joined":
        return run_and_report(plan, out=run_dir, device=resolved, force_replan=force_replan, claim=True)
    try:
        with ownership.locked(run_dir):  # held while this process or its ranks train
            try:
                diff = ownership.claim(run_dir, to_json(plan), plan.hash, force=force_replan)
            except ownership.PlanMismatch as mismatch:
                raise CommandError(str(mismatch)) from None
            if diff:
                say(f"--force-replan: {run_dir} continues under a changed plan:\n{diff}")
            if mode == "single":
                return run_and_report(plan, out=run_dir, device=resolved, force_replan=force_replan)
            return spawn(nproc, worker_args(run_dir, device=resolved, force_replan=force_replan))
    except (ownership.RunLocked, OSError) as busy:
        raise CommandError(str(busy)) from None


def threads_per_rank(cpus: int, nproc: int) -> int:
    """CPU threads each of ``nproc`` local ranks may use (``OMP_NUM_THREADS``).

    >>> threads_per_rank(16, 4), threads_per_rank(2, 4)
    (4, 1)
    """
    return max(1, cpus // nproc)
