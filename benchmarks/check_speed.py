"""How fast ``procdsl check`` compiles: files per second over 200 generated curricula.

Run: ``python benchmarks/check_speed.py``. Prints the compile rate beside a baseline measured in
the same run — parsing alone (Lark on the same text) — so the ratio says what the checks cost.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from procdsl.compiler import compile_text
from procdsl.lang.parse import parse_text

CURRICULA = Path(__file__).resolve().parent.parent / "curricula"


def corpus(n: int = 200) -> list[tuple[str, str]]:
    texts = [(p.name, p.read_text()) for p in sorted(CURRICULA.glob("*.curr"))]
    return [
        (f"{i}-{name}", text.replace("seed      = 0", f"seed      = {i}"))
        for i in range(n)
        for name, text in [texts[i % len(texts)]]
    ]


def rate(fn, files) -> float:
    start = time.perf_counter()
    for name, text in files:
        fn(text, name)
    return len(files) / (time.perf_counter() - start)


def main() -> int:
    files = corpus()
    compile_text(*files[0][::-1])  # build the parser once, as a CLI run does before its first file
    parse_only = rate(lambda t, f: parse_text(t, f, comments=False), files)
    full = rate(compile_text, files)
    print(f"procdsl check: {full:,.0f} files/s ({len(files)} files in {len(files) / full:.3f} s)")
    print(f"parse only:    {parse_only:,.0f} files/s   -> checks cost {parse_only / full:.2f}x the parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
