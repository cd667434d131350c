"""How long ``procdsl lsp`` takes to answer, on a generated 200-line curriculum, over stdio.

Run: ``python benchmarks/lsp_latency.py [--rounds N] [--json]``. Drives the real server with the
JSON-RPC client of the tests (:mod:`procdsl.lsp.client`), so each time includes the round trip:
an edit until its diagnostics arrive (parse, imports, every check, the plan), then hover,
completion, go-to-definition, formatting, inlay hints and a quick fix. Prints the median and the
90th percentile of each, in milliseconds; the goal is under 50 ms. The machine's load average is
printed beside them: on a shared machine every number scales with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from procdsl.lsp.analysis import analyse
from procdsl.lsp.client import Client
from procdsl.lsp.formatting import format_edits
from procdsl.lsp.positions import Converter, file_uri


def curriculum(phases: int = 28) -> str:
    """About 200 lines: a library import, 28 sources and 28 phases of 5 lines each."""
    lines = [
        'import "lib.curr"  # shared rules',
        "curriculum big {",
        "  model   = gpt2(layers=2, heads=2, dim=32)",
        "  context = 256",
        "  batch   = 8",
        "  budget  = 100M tokens",
        "",
    ]
    lines += [
        f"  source s{i} = task(sorted_set, length=8..32, vocab=20)  # source {i}" for i in range(phases)
    ]
    for i in range(phases):
        lines += [
            "",
            f"  phase p{i} {{",
            f"    steps    = {100 + i}",
            f"    mix      = {{ s{i}: 60%, s{(i + 1) % phases}: 40% }}",
            "    schedule = cosine(warmup=10, min=0.1)",
            "  }",
        ]
    return "\n".join(lines + ["}", ""])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(rounds: int) -> dict[str, list[float]]:
    folder = Path(tempfile.mkdtemp(prefix="lsp-bench-"))
    (folder / "lib.curr").write_text("rule sorted_set = set >> sort\n")
    path = str(folder / "big.curr")
    text = curriculum()
    doc = {"textDocument": {"uri": file_uri(path)}}
    phase_line = text.splitlines().index("  phase p10 {")
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "open → diagnostics",
            "change → diagnostics",
            "hover",
            "completion",
            "definition",
            "formatting",
            "inlay hints",
            "code action",
        )
    }
    with Client() as c:
        c.initialize(str(folder))
        times["open → diagnostics"].append(timed(lambda: (c.open(path, text), c.diagnostics(path))))
        for r in range(rounds):
            edited = text.replace("steps    = 110", f"steps    = {111 + r}")
            times["change → diagnostics"].append(
                timed(lambda edited=edited: (c.change(path, edited), c.diagnostics(path)))
            )
            times["hover"].append(timed(lambda: c.at("textDocument/hover", path, phase_line + 3, 6)))
            times["completion"].append(
                timed(lambda: c.at("textDocument/completion", path, phase_line + 1, 4))
            )
            times["definition"].append(
                timed(lambda: c.at("textDocument/definition", path, phase_line + 2, 20))
            )
            times["formatting"].append(
                timed(
                    lambda: c.request(
                        "textDocument/formatting", {**doc, "options": {"tabSize": 2, "insertSpaces": True}}
                    )
                )
            )
            times["inlay hints"].append(
                timed(
                    lambda: c.request(
                        "textDocument/inlayHint",
                        {
                            **doc,
                            "range": {
                                "start": {"line": 0, "character": 0},
                                "end": {"line": 300, "character": 0},
                            },
                        },
                    )
                )
            )
            times["code action"].append(
                timed(
                    lambda: c.request(
                        "textDocument/codeAction",
                        {
                            **doc,
                            "range": {
                                "start": {"line": phase_line, "character": 0},
                                "end": {"line": phase_line, "character": 0},
                            },
                            "context": {"diagnostics": []},
                        },
                    )
                )
            )
    return times


def in_process(rounds: int) -> dict[str, list[float]]:
    """The server's own work for the two slow paths, without the round trip: the analysis behind
    each edit's diagnostics (parse, imports, checks, plan), then formatting the same text as the
    server does after it (the parse is the analysis'). Each round edits the text first."""
    folder = Path(tempfile.mkdtemp(prefix="lsp-bench-"))
    (folder / "lib.curr").write_text("rule sorted_set = set >> sort\n")
    path, text = str(folder / "big.curr"), curriculum()
    analyse(text, path)  # build the parser once, as the server has by its first edit
    times: dict[str, list[float]] = {"analysis (in process)": [], "formatting (in process)": []}
    for r in range(rounds):
        edited = text.replace("steps    = 110", f"steps    = {111 + r}")
        times["analysis (in process)"].append(timed(lambda edited=edited: analyse(edited, path)))
        times["formatting (in process)"].append(
            timed(lambda edited=edited: format_edits(edited, path, Converter({path: edited})))
        )
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lines = len(curriculum().splitlines())
    load = os.getloadavg()[0]
    times = {**measure(args.rounds), **in_process(args.rounds)}
    summary = {
        k: {"median_ms": statistics.median(v), "p90_ms": sorted(v)[int(0.9 * (len(v) - 1))]}
        for k, v in times.items()
    }
    if args.json:
        print(
            json.dumps(
                {"lines": lines, "rounds": args.rounds, "load_average": load, "times": summary}, indent=2
            )
        )
        return 0
    print(
        f"procdsl lsp on a {lines}-line curriculum, {args.rounds} rounds (ms, round trip over stdio; "
        f"load average {load:.1f} on {os.cpu_count()} cores)"
    )
    for name, s in summary.items():
        print(f"  {name:<24} median {s['median_ms']:6.1f}   p90 {s['p90_ms']:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
