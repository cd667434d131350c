"""``procdsl run --emit-slurm``: an sbatch script that runs the plan on a cluster.

One SLURM task per node starts torchrun, which starts one rank per GPU; the ranks meet at a
c10d rendezvous on the first node, then each runs ``procdsl run FILE`` — which sees
``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` and joins the job (``procdsl.runtime.launch``). The run
directory must be on a filesystem every node sees; resubmitting the same script resumes from
the newest checkpoint (so ``--requeue`` after a preemption just continues).

>>> script = sbatch_script("/home/me/q.curr", nodes=2, gpus_per_node=4, out="/scratch/runs/q",
...                        job_name="q", overrides=["seed=3"], python="/opt/venv/bin/python")
>>> print(script)  # doctest: +ELLIPSIS
#!/bin/bash
#SBATCH --job-name=q
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=/scratch/runs/q/slurm-%j.out
<BLANKLINE>
set -euo pipefail
mkdir -p /scratch/runs/q
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
  -m procdsl.cli run /home/me/q.curr --device cuda --out /scratch/runs/q --set seed=3
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Optional


def sbatch_script(curr_file: str, *, nodes: int, gpus_per_node: int, out: str, job_name: str,
                  overrides: Sequence[str] = (), python: str = "python", time: str = "24:00:00",
                  partition: Optional[str] = None, port: int = 29500, extra_args: Sequence[str] = ()) -> str:
    """The sbatch script (module docstring); paths should be absolute (the job runs elsewhere)."""
    if nodes < 1 or gpus_per_node < 1:
        raise ValueError(f"--nodes and --gpus-per-node must be at least 1 (got {nodes}, {gpus_per_node})")
    q = shlex.quote
    header = [f"--job-name={job_name}", f"--nodes={nodes}", "--ntasks-per-node=1",
              f"--gpus-per-node={gpus_per_node}", f"--time={time}"]
    if partition:
        header.append(f"--partition={partition}")
    header += ["--requeue", f"--output={out}/slurm-%j.out"]
    command = [q(curr_file), "--device", "cuda", "--out", q(out)]
    for item in overrides:
        command += ["--set", q(item)]
    command += [q(arg) for arg in extra_args]  # e.g. --variant NAME
    lines = ["#!/bin/bash", *(f"#SBATCH {h}" for h in header), "",
             "set -euo pipefail",
             f"mkdir -p {q(out)}",
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
             "  -m procdsl.cli run " + " ".join(command)]
    return "\n".join(lines) + "\n"
