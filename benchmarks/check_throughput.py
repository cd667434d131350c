"""How ``procdsl check`` scales with input size: MB/s of .curr text, and whether it stays linear.

Run: ``python benchmarks/check_throughput.py [--quick]``. Three inputs, each at two sizes, so
the ratio of times says whether the cost is linear (≈ the ratio of sizes) or worse:

- ``curricula``: the shipped curricula's own text, concatenated (comments, alignment, calls);
- ``lets``: ``let aN = N`` lines, the densest statements;
- ``chain``: ``let aN = aN+1`` lines, each let naming the next (was quadratic, then recursive).

Beside the check, two parses of the large text: ``parse``, the compiler's own (the AST built
while parsing, :func:`~procdsl.lang.parse.parse_module`), which every check pays, and ``lark
tree``, Lark's stock parser building its positioned tree (:func:`~procdsl.lang.parse.parse_text`),
the baseline the compiler used to pay before lowering that tree. Each time is the best of three
runs, each on a text not parsed before (newlines appended: parse_module keeps its last results).
Timings are printed, never asserted (the machine is shared).
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from procdsl.compiler import compile_text
from procdsl.lang.parse import parse_module, parse_text

CURRICULA = Path(__file__).resolve().parent.parent / "curricula"


def curricula_text(target_bytes: int) -> str:
    """Library-style text from the shipped curricula: their definitions, not their curricula
    (one file holds at most one), repeated under fresh names up to ``target_bytes``."""
    blocks = []
    for path in sorted(CURRICULA.rglob("*.curr")):
        lines, depth = [], 0
        for line in path.read_text().splitlines():
            if line.startswith("curriculum"):
                depth = 1
                continue
            if depth:
                depth += line.count("{") - line.count("}")
                continue
            if not line.startswith("import"):
                lines.append(line)
        blocks.append("\n".join(lines) + "\n")
    copies: list[str] = []
    while sum(map(len, copies)) < target_bytes:
        copies += [_rename(block, f"{len(copies)}_{k}") for k, block in enumerate(blocks)]
    return "".join(copies)


def _rename(block: str, i: str) -> str:
    out = []
    for line in block.splitlines():
        for kind in ("let ", "source ", "rule "):
            if line.startswith(kind):
                name, rest = line[len(kind) :].split("=", 1)
                line = f"{kind}{name.strip()}_{i} ={rest}"
        out.append(line)
    return "\n".join(out) + "\n"


def lets_text(n: int) -> str:
    return "".join(f"let a{i} = {i}\n" for i in range(n))


def chain_text(n: int) -> str:
    return "".join(f"let a{i} = a{i + 1}\n" for i in range(n)) + f"let a{n} = 1\n"


_FRESH = itertools.count(1)


def seconds(fn, text: str, runs: int = 3) -> float:
    """The best of ``runs`` timings of ``fn`` on ``text``, each run on a text never parsed before."""
    best = float("inf")
    for _ in range(runs):
        fresh = text + "\n" * next(_FRESH)
        start = time.perf_counter()
        fn(fresh, "bench.curr")
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    scale = 1 if quick else 4
    compile_text("let x = 1", "warm.curr")  # build the parsers once, as a CLI run does
    parse_text("let x = 1", "warm.curr")
    inputs = [
        ("curricula", curricula_text(100_000 * scale), curricula_text(200_000 * scale)),
        ("lets", lets_text(5_000 * scale), lets_text(10_000 * scale)),
        ("chain", chain_text(5_000 * scale), chain_text(10_000 * scale)),
    ]
    print(
        f"{'input':<10} {'bytes':>9} {'check s':>8} {'check MB/s':>11} {'parse MB/s':>11} "
        f"{'lark tree MB/s':>15} {'time ×2 size':>13}"
    )
    for name, small, large in inputs:
        t_small = seconds(compile_text, small)
        t_large = seconds(compile_text, large)
        parse = seconds(lambda t, f: parse_module(t, f, comments=False), large)
        tree = seconds(lambda t, f: parse_text(t, f, comments=False), large)
        for text, t in ((small, t_small), (large, t_large)):
            last = text is large
            growth = f"{t_large / t_small:.2f}×" if last else ""
            print(
                f"{name:<10} {len(text):>9,} {t:>8.3f} {len(text) / t / 1e6:>11.3f} "
                f"{(len(large) / parse / 1e6) if last else float('nan'):>11.3f} "
                f"{(len(large) / tree / 1e6) if last else float('nan'):>15.3f} {growth:>13}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
