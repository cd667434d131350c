"""``procdsl run --emit-slurm``: an sbatch script that runs the plan on a cluster.

One SLURM task per node (with ``--cpus-per-task`` cores and ``--mem`` memory) starts torchrun,
which starts one rank per GPU; the ranks meet at a c10d rendezvous on the first node, then each
runs ``procdsl run FILE`` — which sees ``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` and joins the job
(``procdsl.runtime.launch``). The run directory must be on a filesystem every node sees.

Preemption: ``--signal=USR1@120`` makes SLURM send ``SIGUSR1`` two minutes before the time limit;
torchrun forwards it (``--signals-to-handle``) and waits up to ``--shutdown-timeout`` for the
ranks, which finish their step, save a checkpoint and exit 3 (``procdsl.runtime.preempt``). The
script then finds ``"status": "stopped"`` in ``summary.json`` and requeues the job
(``scontrol requeue``), which resumes from that checkpoint; a scheduler's ``SIGTERM`` is handled
the same way. ``comm_traces/`` (NCCL's flight recorder dumps) is created up front.

>>> script = sbatch_script("/home/me/q.curr", nodes=2, gpus_per_node=4, out="/scratch/runs/q",
...                        job_name="q", overrides=["seed=3"], python="/opt/venv/bin/python")
>>> print(script, end="")
#!/bin/bash
#SBATCH --job-name=q
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --mem=0
#SBATCH --time=24:00:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/scratch/runs/q/slurm-%j.out
<BLANKLINE>
set -uo pipefail
mkdir -p /scratch/runs/q/comm_traces
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR
export MASTER_PORT=29500
<BLANKLINE>
srun /opt/venv/bin/python -m torch.distributed.run \\
  --nnodes="$SLURM_NNODES" \\
  --nproc-per-node=4 \\
  --rdzv-id="$SLURM_JOB_ID" \\
  --rdzv-backend=c10d \\
  --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" \\
  --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 \\
  --shutdown-timeout=110 \\
  -m procdsl.cli run /home/me/q.curr --device cuda --out /scratch/runs/q --set seed=3
status=$?
if grep -q '"status": "stopped"' /scratch/runs/q/summary.json 2>/dev/null; then
  echo "procdsl: stopped with a checkpoint; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit $status
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

#: seconds between SLURM's SIGUSR1 and its time limit (``--signal=USR1@…``)
SIGNAL_LEAD = 120
#: CPU cores per GPU when ``--cpus-per-task`` is not given
CPUS_PER_GPU = 8


def sbatch_script(
    curr_file: str,
    *,
    nodes: int,
    gpus_per_node: int,
    out: str,
    job_name: str,
    overrides: Sequence[str] = (),
    python: str = "python",
    time: str = "24:00:00",
    partition: Optional[str] = None,
    port: int = 29500,
    extra_args: Sequence[str] = (),
    cpus_per_task: Optional[int] = None,
    mem: str = "0",
) -> str:
    """The sbatch script (module docstring); paths should be absolute (the job runs elsewhere).

    ``cpus_per_task`` defaults to :data:`CPUS_PER_GPU` per GPU; ``mem`` is SLURM's ``--mem``
    (``0``: all of each node's memory).
    """
    if nodes < 1 or gpus_per_node < 1:
        raise ValueError(f"--nodes and --gpus-per-node must be at least 1 (got {nodes}, {gpus_per_node})")
    cpus = cpus_per_task if cpus_per_task is not None else CPUS_PER_GPU * gpus_per_node
    if cpus < 1:
        raise ValueError(f"--cpus-per-task must be at least 1 (got {cpus})")
    q = shlex.quote
    header = [
        f"--job-name={job_name}",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        f"--gpus-per-node={gpus_per_node}",
        f"--cpus-per-task={cpus}",
        f"--mem={mem}",
        f"--time={time}",
        f"--signal=USR1@{SIGNAL_LEAD}",
    ]
    if partition:
        header.append(f"--partition={partition}")
    header += ["--requeue", "--open-mode=append", f"--output={out}/slurm-%j.out"]
    command = [q(curr_file), "--device", "cuda", "--out", q(out)]
    for item in overrides:
        command += ["--set", q(item)]
    command += [q(arg) for arg in extra_args]  # e.g. --variant NAME
    summary = q(f"{out}/summary.json")
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {h}" for h in header),
        "",
        "set -uo pipefail",
        f"mkdir -p {q(out + '/comm_traces')}",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "export MASTER_ADDR",
        f"export MASTER_PORT={port}",
        "",
        f"srun {q(python)} -m torch.distributed.run \\",
        '  --nnodes="$SLURM_NNODES" \\',
        f"  --nproc-per-node={gpus_per_node} \\",
        '  --rdzv-id="$SLURM_JOB_ID" \\',
        "  --rdzv-backend=c10d \\",
        '  --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" \\',
        "  --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 \\",
        f"  --shutdown-timeout={SIGNAL_LEAD - 10} \\",
        "  -m procdsl.cli run " + " ".join(command),
        "status=$?",
        f'if grep -q \'"status": "stopped"\' {summary} 2>/dev/null; then',
        '  echo "procdsl: stopped with a checkpoint; requeueing job $SLURM_JOB_ID"',
        '  scontrol requeue "$SLURM_JOB_ID"',
        "  exit 0",
        "fi",
        "exit $status",
    ]
    return "\n".join(lines) + "\n"


def targets_script(
    targets: Any,
    curr_file: str,
    *,
    overrides: Sequence[str] = (),
    variant: Optional[str] = None,
    stream: bool = False,
    **cluster: Any,
) -> str:
    """The sbatch script of ``procdsl run FILE … --emit-slurm``: :func:`sbatch_script` for the
    run's :class:`procdsl.rundir.Targets`, named after them, with this Python and absolute paths;
    ``--variant`` and ``--stream`` passed on. ``cluster``: nodes, gpus_per_node, time, partition,
    cpus_per_task, mem."""
    extra = ["--variant", variant] if variant else []
    extra += ["--stream"] if stream else []
    return sbatch_script(
        str(Path(curr_file).resolve()),
        out=os.path.abspath(targets.base),
        job_name=targets.name.replace("/", "_"),
        overrides=overrides,
        python=sys.executable,
        extra_args=extra,
        **cluster,
    )
