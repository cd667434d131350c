"""The ``procdsl`` command line (typer + rich). Exit codes: 0 ok, 1 errors, 2 usage.

Each command parses its arguments, calls the module that owns the work, and prints; the
modules refuse with :class:`procdsl.errors.UsageError` (exit 2) or
:class:`procdsl.errors.CommandError` (exit 1), which :func:`refusals` turns into ``error: …``.
Commands import what they need when they run, so ``procdsl check`` stays light (no torch, no
numpy-heavy generators): a test asserts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from procdsl.lang.diagnostics import Diagnostic, errors, render_github, render_json, render_text

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="procdsl: curricula for procedural pretraining, as files.",
)


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _fail(message: object) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextlib.contextmanager
def refusals(*failures: type[Exception]) -> Iterator[None]:
    """A command's refusals as exit codes: UsageError → 2; CommandError, and the ``failures``
    the command expects (a DataError where it reads data), → 1."""
    from procdsl.errors import CommandError, UsageError

    failed: tuple[type[Exception], ...] = (CommandError, *failures)
    try:
        yield
    except UsageError as exc:
        raise _usage(str(exc)) from None
    except failed as exc:
        raise _fail(exc) from None


def _curr_files(paths: list[Path]) -> list[str]:
    """Every .curr file under the given paths (directories recursively, symlinks kept inside
    the tree: :func:`procdsl.files.curr_files`), in a stable order."""
    from procdsl.files import curr_files

    found = curr_files(paths)
    if found.missing:
        raise _usage(f"no such file or directory: {found.missing[0]}")
    for link in found.skipped:
        typer.echo(f"skipped {link}: a symlink to a file outside the directory given", err=True)
    return found.files


def _print_diagnostics(diagnostics: list[Diagnostic], texts: dict[str, str], fmt: Format, err: bool) -> None:
    for d in diagnostics:
        if fmt is Format.json:
            typer.echo(render_json(d), err=err)
        elif fmt is Format.github:
            typer.echo(render_github(d), err=err)
        else:
            typer.echo(render_text(d, texts.get(d.span.file)) + "\n", err=err)


@app.command()
def check(
    paths: list[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
    format: Format = typer.Option(Format.text, "--format", help="text, json (one object per line) or github"),
) -> None:
    """Parse and check every .curr file under PATHS."""
    from procdsl.compiler import compile_file

    files = _curr_files(paths)
    if not files:
        raise _usage("no .curr files found under " + ", ".join(map(str, paths)))
    found: list[Diagnostic] = []
    for file in files:
        result = compile_file(file)
        _print_diagnostics(result.diagnostics, result.texts, format, err=False)
        found += result.diagnostics
    n_errors = len(errors(found))
    if format is Format.text:
        warnings = len(found) - n_errors
        tail = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
        typer.echo(f"Found {n_errors} errors.{tail}" if n_errors else f"All checks passed!{tail}")
    raise typer.Exit(1 if n_errors else 0)


def _settings_help() -> str:
    from procdsl.registry.render import settings_help  # plain data: no pydantic import

    return settings_help()


@app.command(epilog=_settings_help())
def plan(
    file: Path = typer.Argument(..., help="the .curr file"),
    set_: list[str] = typer.Option([], "--set", help="override a plan path: --set phases.warmup.steps=500"),
    json_: bool = typer.Option(False, "--json", help="print only the plan JSON on stdout"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="also write the plan JSON here"),
    plot: Optional[str] = typer.Option(
        None,
        "--plot",
        metavar="FILE|-",
        help="draw the timeline (phases × mixture × lr) to FILE (.png, .svg, .pdf), or - for the terminal",
    ),
) -> None:
    """Compile FILE and show its plan (or every sweep variant's)."""
    from procdsl.files import write_output
    from procdsl.plan import plans_json

    plans = _compile_or_exit(file, set_).plans
    text = plans_json(plans)
    if output is not None:
        with refusals():
            write_output(output, text + "\n")
    if json_:
        typer.echo(text)
        return
    from procdsl.plan.table import print_plan
    from procdsl.plan.timeline import save_timeline, terminal_timeline

    for p in plans:
        print_plan(p)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)
    if plot is not None:
        typer.echo(terminal_timeline(plans[0]))
        if plot != "-":
            with refusals():
                typer.echo(f"wrote {save_timeline(plans[0], plot)}", err=True)


def _compile_or_exit(file: Path, overrides: list[str]):
    from procdsl.compiler import compile_file

    if not os.path.lexists(file) or file.is_dir():
        raise _usage(
            f"no such file: {file}" if not file.is_dir() else f"{file} is a directory: name a .curr file"
        )
    result = compile_file(str(file), overrides)  # an unreadable file (a fifo, a device) is E004
    _print_diagnostics(result.diagnostics, result.texts, Format.text, err=True)
    if not result.ok:
        typer.echo(f"Found {len(errors(result.diagnostics))} errors.", err=True)
        raise typer.Exit(1)
    if not result.plans:
        typer.echo(f"error: {file} is a library (no curriculum block): nothing to plan", err=True)
        raise typer.Exit(1)
    return result


@app.command()
def fmt(
    paths: list[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
    check_only: bool = typer.Option(False, "--check", help="change nothing; exit 1 if a file would change"),
) -> None:
    """Rewrite .curr files in the canonical layout (comments kept)."""
    from procdsl.files import format_files

    changed, failed = format_files(
        _curr_files(paths),
        check_only=check_only,
        say=typer.echo,
        warn=lambda line: typer.echo(line, err=True),
    )
    verb = "would be reformatted" if check_only else "reformatted"
    typer.echo(f"{changed} file{'s' if changed != 1 else ''} {verb}.", err=True)
    raise typer.Exit(1 if failed or (check_only and changed) else 0)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def run(
    file: Path = typer.Argument(..., help="the .curr file"),
    set_: list[str] = typer.Option([], "--set", help="override a plan path: --set phases.warmup.steps=500"),
    nproc: int = typer.Option(
        1, "--nproc", min=1, help="ranks to launch on this machine (torchrun semantics)"
    ),
    device: Device = typer.Option(Device.auto, "--device", help="auto (CUDA when present), cpu or cuda"),
    out: Optional[str] = typer.Option(None, "--out", help="run directory (default runs/<plan name>)"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print the TorchTitan config, sizes and FLOPs; train nothing"
    ),
    force_replan: bool = typer.Option(
        False, "--force-replan", help="resume DIR even though its plan differs (logs the diff)"
    ),
    emit_slurm: bool = typer.Option(
        False, "--emit-slurm", help="print an sbatch script that runs this on a cluster"
    ),
    nodes: int = typer.Option(1, "--nodes", min=1, help="with --emit-slurm: nodes"),
    gpus_per_node: int = typer.Option(
        8, "--gpus-per-node", min=1, help="with --emit-slurm: GPUs (ranks) per node"
    ),
    time_limit: str = typer.Option("24:00:00", "--time", help="with --emit-slurm: the job's time limit"),
    partition: Optional[str] = typer.Option(
        None, "--partition", help="with --emit-slurm: the SLURM partition"
    ),
    cpus_per_task: Optional[int] = typer.Option(
        None, "--cpus-per-task", min=1, help="with --emit-slurm: CPU cores per node (default 8 per GPU)"
    ),
    mem: str = typer.Option(
        "0", "--mem", help="with --emit-slurm: memory per node, e.g. 480G (0: all of it)"
    ),
    variant: Optional[str] = typer.Option(
        None, "--variant", help="run one sweep variant (its name, or its key=value part)"
    ),
    stream: bool = typer.Option(
        False, "--stream", help="read and tokenize data files as training goes, instead of the token store"
    ),
) -> None:
    """Execute FILE's plan with TorchTitan; rerunning the same command resumes it.

    Data sources are read from the token store (prepared first where incomplete: see
    `procdsl prepare`); --stream reads the files as training goes instead.

    A file with a sweep runs every variant, one after another, each in DIR/<variant>/.
    """
    from procdsl import rundir
    from procdsl.files import out_dir_problem

    if out is not None and (problem := out_dir_problem(out)):
        raise _usage(problem)
    result = _compile_or_exit(file, set_)
    with refusals():
        targets = rundir.targets(result.plans, variant=variant, out=out)
        if stream:  # the ranks a launcher starts inherit it (procdsl.store.runs)
            os.environ["PROCDSL_DATA"] = "stream"
        if emit_slurm:
            from procdsl.runtime.slurm import targets_script

            typer.echo(
                targets_script(
                    targets,
                    str(file),
                    overrides=set_,
                    variant=variant,
                    stream=stream,
                    nodes=nodes,
                    gpus_per_node=gpus_per_node,
                    time=time_limit,
                    partition=partition,
                    cpus_per_task=cpus_per_task,
                    mem=mem,
                ),
                nl=False,
            )
            raise typer.Exit(0)
        from procdsl.runtime.launch import run_targets

        status = run_targets(
            targets,
            nproc=nproc,
            device=device.value,
            dry_run=dry_run,
            force_replan=force_replan,
            say=lambda line: typer.echo(line, err=True),
        )
    raise typer.Exit(status)


@app.command()
def sample(
    file: Path = typer.Argument(..., help="the .curr file"),
    source: list[str] = typer.Option(
        [], "--source", help="source(s) to sample (default: every source a phase uses)"
    ),
    n: int = typer.Option(3, "-n", min=1, help="examples per source (rows with --packed)"),
    json_: bool = typer.Option(False, "--json", help='one {"source","tokens","loss_mask"} object per line'),
    packed: bool = typer.Option(False, "--packed", help="show packed training rows of a phase instead"),
    phase: Optional[str] = typer.Option(None, "--phase", help="phase for --packed (default: the first)"),
    verify: bool = typer.Option(
        False, "--verify", help="check procedural samples with the independent checkers"
    ),
    at: Optional[str] = typer.Option(
        None,
        "--at",
        metavar="P%",
        help="show examples from this far through the phase (90% or 0.9): where difficulty ramps stand then",
    ),
    step: Optional[int] = typer.Option(
        None, "--step", metavar="N", min=1, help="show examples from step N of the phase"
    ),
    set_: list[str] = typer.Option([], "--set", help="override a plan path"),
) -> None:
    """Show examples as the model sees them; loss-masked positions highlighted.

    --at 90% (or --step N) shows the examples drawn that far through each source's phase, so a
    ramp(8, 64) shows the lengths it has reached by then; with --packed, that step's rows.
    """
    from procdsl import sample as sampling
    from procdsl.data import DataError

    plan = _compile_or_exit(file, set_).plans[0]
    with refusals(DataError):
        fraction = sampling.position(at, step)
        if packed:
            name, skip = sampling.packed_start(plan, phase, fraction, step)
            stream, rows = sampling.open_rows(
                plan, name, n, skip=skip
            )  # streamed: `-n 100000000 | head` is instant
            if json_:
                for row in rows:
                    typer.echo(json.dumps(row))
            else:
                sampling.print_rows(stream, rows)
            return
        drawn = sampling.Drawing(
            plan,
            sampling.sources_shown(plan, source),
            n,
            at=fraction,
            step=step,
            verify=verify,
            strict=bool(source),
            skipped=lambda line: typer.echo(line, err=True),
        )
        if json_:
            for x in drawn:
                typer.echo(json.dumps(x.to_json()))
        else:
            sampling.print_samples(drawn)
        if not drawn.shown:
            raise _fail("no source could be sampled")
    if verify:
        for line in drawn.verdict():
            typer.echo(line, err=True)
        if drawn.problems:
            raise typer.Exit(1)


@app.command()
def prepare(
    file: Path = typer.Argument(..., help="the .curr file"),
    set_: list[str] = typer.Option([], "--set", help="override a plan path"),
    workers: int = typer.Option(1, "--workers", min=1, help="tokenizing processes"),
    cache_dir: Optional[Path] = typer.Option(
        None,
        "--cache-dir",
        help="where stores live (default $PROCDSL_CACHE, else $HF_HOME/procdsl, else ~/.cache/procdsl)",
    ),
) -> None:
    """Tokenize every data source FILE's plan reads into token stores; a re-run is a no-op."""
    from procdsl.data import DataError
    from procdsl.store.prepare import prepare_plans

    plans = _compile_or_exit(file, set_).plans
    hint = " ".join(["procdsl prepare", str(file), *(f"--set {o}" for o in set_)])  # how to rerun it
    with refusals(DataError):
        for line in prepare_plans(
            plans, cache_dir=str(cache_dir) if cache_dir else None, workers=workers, hint=hint
        ):
            typer.echo(line)


@app.command()
def bench(
    json_: bool = typer.Option(False, "--json", help="print the measurements as JSON"),
    quick: bool = typer.Option(False, "--quick", help="shorter measurements (noisier)"),
    pipeline_file: Optional[Path] = typer.Option(
        None, "--pipeline", metavar="FILE", help="measure one rank's stream of FILE instead"
    ),
    phase: Optional[str] = typer.Option(None, "--phase", help="phase for --pipeline (default: the first)"),
    world: int = typer.Option(1, "--world", min=1, help="ranks simulated for --pipeline"),
    rank: int = typer.Option(0, "--rank", min=0, help="the rank measured for --pipeline"),
    start_step: int = typer.Option(0, "--start-step", min=0, help="resume the stream at this step first"),
    steps: int = typer.Option(20, "--steps", min=1, help="steps measured for --pipeline"),
    set_: list[str] = typer.Option([], "--set", help="override a plan path (repeatable)"),
    stream: bool = typer.Option(
        False, "--stream", help="with --pipeline: read data files as it goes, not the token store"
    ),
) -> None:
    """Generator and pipeline throughput, as ratios to baselines measured in the same run.

    With ``--pipeline FILE``: what rank R of W pays per step for its rows (no torch, no process
    group), as one JSON object (``step_ms``, ``rank_tokens_per_s``, ``resume_ms``, …); data
    comes from the token store (prepared first) as in ``procdsl run``, or ``--stream``."""
    if pipeline_file is not None:
        from procdsl.data import DataError
        from procdsl.stream.rank_bench import bench_rank, format_record

        plan = _compile_or_exit(pipeline_file, set_).plans[0]
        with refusals(DataError):
            record = bench_rank(
                plan,
                phase,
                world=world,
                rank=rank,
                start_step=start_step,
                steps=steps,
                stream=stream,
                file=str(pipeline_file),
            )
        typer.echo(json.dumps(record) if json_ else format_record(record))
        return
    from procdsl.bench import format_benches, run_benches

    result = run_benches(quick=quick)
    typer.echo(json.dumps(result, indent=2) if json_ else format_benches(result))


@app.command()
def report(
    paths: list[Path] = typer.Argument(..., help="run directories, or directories holding them (a sweep's)"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="where report.md and the PNGs go (default: FIRST/report)"
    ),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="the arm to compare against (default: fewest phases)"
    ),
    json_: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
    all_: bool = typer.Option(False, "--all", help="include runs that have not finished"),
    x: str = typer.Option(
        "real-tokens",
        "--x",
        metavar="real-tokens|all-tokens|flops",
        help="the figures' x-axis: the last phase's tokens, every phase's tokens, or training FLOPs",
    ),
) -> None:
    """Compare runs: final metrics over seeds, curves, achieved mixtures, data-efficiency ratio.

    Figures (PNG, SVG and PDF): loss, accuracy with its chance line, loss per source.
    """
    from procdsl.report.build import print_report, report_json, write_report

    with refusals():
        result, folder, plotted = write_report(
            paths, out=out, baseline=baseline, include_unfinished=all_, x=x
        )
    if json_:
        typer.echo(report_json(result))
        return
    print_report(result, plotted, folder)


@app.command()
def lsp() -> None:
    """Run the language server over stdio, for editors (needs the lsp extra)."""
    try:
        from procdsl.lsp.server import serve
    except ImportError as exc:
        if exc.name not in ("pygls", "lsprotocol") and not (exc.name or "").startswith(
            ("pygls.", "lsprotocol.")
        ):
            raise
        typer.echo(f"error: `procdsl lsp` needs {exc.name}: pip install 'procdsl[lsp]'", err=True)
        raise typer.Exit(1) from None
    serve()


from procdsl import cli_after, cli_help, cli_start  # noqa: E402  (after `app` exists)

cli_after.register(app)  # export, eval
cli_help.register(app)  # --version, readable placeholders
cli_start.register(app)  # explain


def main() -> None:
    """Console entry point: no traceback reaches the user unless PROCDSL_DEBUG is set."""
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # pragma: no cover - last line of defence
        if os.environ.get("PROCDSL_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc}\n(set PROCDSL_DEBUG=1 for the traceback, "
            "and please report it)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
