"""Does a rank's data cost fall with the world size?  ``python benchmarks/data_scaling.py``

For each case — (a) k-Dyck k=64 at context 2,048, (b) GPT-2-tokenized text (Python code) from
a prepared token store, (c) a 50/50 mix of the two — it runs ``procdsl bench --pipeline`` (one
rank of a simulated world, no torch; the store is prepared by the first call, in a temporary
cache) for W = 1, 8 and 64 and prints rank 0's ms per step, the tokens per CPU second
of its own rows, and the ratio of its cost at W to its cost at W = 1, all measured in this run.
Then resume: the first step after loading a state at step 5,000 against the first step from 0.

Goals (issue #16), printed, never asserted: cost at W = 64 ≤ 1/16 of W = 1 for (b) and (c);
≥ 5M tokens/s of its own rows at W = 8 for (b); resume at step 5,000 within 2× step 0.
A rank lays out many steps ahead and fills them at once (``procdsl.stream.stream``), so use
enough ``--steps`` to span a few of its windows (at W = 64, batch 64: 128 steps each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "a: k-Dyck k=64": "source d = dyck(k=64)\n  phase p { steps = 9000  mix = { d: 100% } }",
    "b: gpt2 text": "source c = python_code()\n  phase p { steps = 9000  mix = { c: 100% } }",
    "c: 50/50 mix": (
        "source d = dyck(k=64)\n  source c = python_code()\n"
        "  phase p { steps = 9000  mix = { d: 50%, c: 50% } }"
    ),
}


def curriculum(body: str) -> str:
    return (
        f"curriculum scaling {{\n  model = gpt2_124m\n  tokenizer = gpt2\n  context = 2048\n"
        f"  batch = 64\n  {body}\n}}\n"
    )


def bench(path: Path, *, world: int, start: int = 0, steps: int, cache: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "procdsl.cli",
            "bench",
            "--pipeline",
            str(path),
            "--world",
            str(world),
            "--rank",
            "0",
            "--start-step",
            str(start),
            "--steps",
            str(steps),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PROCDSL_CACHE": cache},
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--resume-step", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'case':18} {'W':>3} {'ms/step':>9} {'own tok/s':>11} {'cost vs W=1':>12}")
        for name, body in CASES.items():
            path = Path(tmp) / "scaling.curr"
            path.write_text(curriculum(body))
            base = None
            cache = str(Path(tmp) / "cache")
            bench(path, world=64, steps=1, cache=cache)  # prepares the store, untimed
            for world in (1, 8, 64):
                r = bench(path, world=world, steps=args.steps, cache=cache)
                base = base or r["step_ms"]
                print(
                    f"{name:18} {world:3d} {r['step_ms']:9.2f} {r['rank_tokens_per_s'] / 1e6:10.2f}M "
                    f"{r['step_ms'] / base:11.3f}×",
                    flush=True,
                )
            fresh = bench(path, world=8, steps=1, cache=cache)
            later = bench(path, world=8, start=args.resume_step, steps=1, cache=cache)
            print(
                f"{name:18} resume at step {args.resume_step}: {later['resume_ms']:.1f} ms vs "
                f"{fresh['resume_ms']:.1f} ms at step 0 ({later['resume_ms'] / fresh['resume_ms']:.2f}×)",
                flush=True,
            )


if __name__ == "__main__":
    main()
