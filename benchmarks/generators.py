"""Print generator throughput beside the naive reference: ``python benchmarks/generators.py [--json]``.

Run it on an otherwise idle machine; it pins itself to one core where the OS allows.
"""

from __future__ import annotations

import json
import os
import sys

from procdsl.bench import format_table, run_generator_bench


def main(argv: list[str]) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = run_generator_bench()
    print(json.dumps(rows, indent=2) if "--json" in argv else format_table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
