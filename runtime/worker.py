"""``python -m procdsl.runtime.worker --out DIR [--device D] [--force-replan]``: one spawned rank.

``procdsl run --nproc N`` compiles the plan, claims ``DIR`` (writes ``DIR/plan.json``), then
launches N of these (``procdsl.runtime.launch``); each reads the plan back from ``DIR/plan.json``
— the runtime reads only the plan — and trains as its rank. Exit 0 done, 1 failed.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m procdsl.runtime.worker")
    parser.add_argument("--out", required=True, help="the run directory holding plan.json")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--force-replan", action="store_true")
    args = parser.parse_args(argv)
    from procdsl.plan import load_plan
    from procdsl.rundir import PLAN_FILE

    from .run import run_and_report

    try:
        plan = load_plan(os.path.join(args.out, PLAN_FILE))
    except (OSError, ValueError) as failure:
        print(f"error: cannot read the run's plan: {failure}", file=sys.stderr)
        return 1
    return run_and_report(plan, out=args.out, device=args.device, force_replan=args.force_replan)


if __name__ == "__main__":
    sys.exit(main())
