"""The ``procdsl`` command line (typer + rich). Exit codes: 0 ok, 1 errors, 2 usage.

Commands import what they need when they run, so ``procdsl check`` stays light (no torch, no
numpy-heavy generators): a test asserts it.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from procdsl.lang.diagnostics import Diagnostic, errors, render_github, render_json, render_text, visible

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  help="procdsl: curricula for procedural pretraining, as files.")


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


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
def check(paths: list[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
          format: Format = typer.Option(Format.text, "--format", help="text, json (one object per line) or github")) -> None:
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
def plan(file: Path = typer.Argument(..., help="the .curr file"),
         set_: list[str] = typer.Option([], "--set", help="override a plan path: --set phases.warmup.steps=500"),
         json_: bool = typer.Option(False, "--json", help="print only the plan JSON on stdout"),
         output: Optional[Path] = typer.Option(None, "-o", "--output", help="also write the plan JSON here"),
         plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE|-", help="draw the timeline (phases × mixture × lr) to FILE (.png, .svg, .pdf), or - for the terminal")) -> None:
    """Compile FILE and show its plan (or every sweep variant's)."""
    from procdsl.plan import to_json

    result = _compile_or_exit(file, set_)
    plans = result.plans
    text = to_json(plans[0]) if len(plans) == 1 else "[\n" + ",\n".join(to_json(p) for p in plans) + "\n]"
    if output is not None:
        from procdsl.atomic import atomic_write
        from procdsl.files import output_file_problem

        if problem := output_file_problem(str(output)):
            raise _usage(problem)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(output, text + "\n")
        except OSError as exc:
            typer.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
    if json_:
        typer.echo(text)
        return
    from procdsl.plan.table import print_plan

    for p in plans:
        print_plan(p)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)
    if plot is not None:
        _plot_timeline(plans[0], plot)


def _plot_timeline(plan, where: str) -> None:
    """``plan --plot``: the timeline in characters (``-``) or as a figure file."""
    from procdsl.plan.timeline import draw_timeline, terminal_timeline

    typer.echo(terminal_timeline(plan))
    if where == "-":
        return
    if os.path.splitext(where)[1].lower() not in (".png", ".svg", ".pdf"):
        raise _usage(f"--plot {where}: name a .png, .svg or .pdf file, or - for the terminal")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        typer.echo("error: --plot FILE needs matplotlib: pip install 'procdsl[report]' (or - for the terminal)", err=True)
        raise typer.Exit(1) from None
    try:
        os.makedirs(os.path.dirname(os.path.abspath(where)), exist_ok=True)
        typer.echo(f"wrote {draw_timeline(plan, where)}", err=True)
    except OSError as exc:
        typer.echo(f"error: cannot write {where}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


def _compile_or_exit(file: Path, overrides: list[str]):
    from procdsl.compiler import compile_file

    if not os.path.lexists(file) or file.is_dir():
        raise _usage(f"no such file: {file}" if not file.is_dir() else f"{file} is a directory: name a .curr file")
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
def fmt(paths: list[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
        check_only: bool = typer.Option(False, "--check", help="change nothing; exit 1 if a file would change")) -> None:
    """Rewrite .curr files in the canonical layout (comments kept)."""
    from procdsl.compiler.load import read_source
    from procdsl.lang.fmt import format_text
    from procdsl.lang.parse import SyntaxDiagnostic

    changed = failed = 0
    for file in _curr_files(paths):
        text, reason = read_source(file)
        if text is None:
            typer.echo(f"{file}: cannot read: {reason}", err=True)
            failed += 1
            continue
        try:
            formatted = format_text(text, file)
        except SyntaxDiagnostic as exc:
            typer.echo(render_text(exc.diagnostic, text), err=True)
            failed += 1
            continue
        if formatted != text:
            changed += 1
            if check_only:
                typer.echo(f"would reformat {file}")
            else:
                from procdsl.atomic import atomic_write

                try:
                    atomic_write(file, formatted)  # a full disk leaves the file as it was
                except OSError as exc:
                    typer.echo(f"{file}: cannot write: {exc.strerror or exc}", err=True)
                    failed += 1
                    continue
                typer.echo(f"reformatted {file}")
    verb = "would be reformatted" if check_only else "reformatted"
    typer.echo(f"{changed} file{'s' if changed != 1 else ''} {verb}.", err=True)
    raise typer.Exit(1 if failed or (check_only and changed) else 0)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def run(file: Path = typer.Argument(..., help="the .curr file"),
        set_: list[str] = typer.Option([], "--set", help="override a plan path: --set phases.warmup.steps=500"),
        nproc: int = typer.Option(1, "--nproc", min=1, help="ranks to launch on this machine (torchrun semantics)"),
        device: Device = typer.Option(Device.auto, "--device", help="auto (CUDA when present), cpu or cuda"),
        out: Optional[str] = typer.Option(None, "--out", help="run directory (default runs/<plan name>)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the TorchTitan config, sizes and FLOPs; train nothing"),
        force_replan: bool = typer.Option(False, "--force-replan", help="resume DIR even though its plan differs (logs the diff)"),
        emit_slurm: bool = typer.Option(False, "--emit-slurm", help="print an sbatch script that runs this on a cluster"),
        nodes: int = typer.Option(1, "--nodes", min=1, help="with --emit-slurm: nodes"),
        gpus_per_node: int = typer.Option(8, "--gpus-per-node", min=1, help="with --emit-slurm: GPUs (ranks) per node"),
        time_limit: str = typer.Option("24:00:00", "--time", help="with --emit-slurm: the job's time limit"),
        partition: Optional[str] = typer.Option(None, "--partition", help="with --emit-slurm: the SLURM partition"),
        cpus_per_task: Optional[int] = typer.Option(None, "--cpus-per-task", min=1, help="with --emit-slurm: CPU cores per node (default 8 per GPU)"),
        mem: str = typer.Option("0", "--mem", help="with --emit-slurm: memory per node, e.g. 480G (0: all of it)"),
        variant: Optional[str] = typer.Option(None, "--variant", help="run one sweep variant (its name, or its key=value part)"),
        stream: bool = typer.Option(False, "--stream", help="read and tokenize data files as training goes, instead of the token store")) -> None:
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
    plans = result.plans
    if variant is not None:
        plans = [p for p in plans if variant in (p.name, p.name.split("/", 1)[-1], variant_dir(p))]
        if not plans:
            names = "\n  ".join(p.name for p in result.plans)
            raise _usage(f"no variant {variant!r}; the variants are:\n  {names}")
    sweep = any(p.variant for p in result.plans)  # even a sweep of one: its name holds .curr values
    base = out if out is not None else rundir.default_out(result.plans[0].name.split("/", 1)[0])
    if stream:   # the ranks a launcher starts inherit it (procdsl.runtime.datastore)
        os.environ["PROCDSL_DATA"] = "stream"
    if emit_slurm:
        from procdsl.runtime.slurm import sbatch_script

        name = plans[0].name if len(plans) == 1 else plans[0].name.split("/", 1)[0]
        extra = ["--variant", variant] if variant else []
        extra += ["--stream"] if stream else []
        typer.echo(sbatch_script(str(file.resolve()), nodes=nodes, gpus_per_node=gpus_per_node,
                                 out=os.path.abspath(base), job_name=name.replace("/", "_"),
                                 overrides=set_, python=sys.executable, time=time_limit,
                                 partition=partition, extra_args=extra,
                                 cpus_per_task=cpus_per_task, mem=mem), nl=False)
        raise typer.Exit(0)
    status = 0
    for plan in plans:  # a sweep runs its variants one after another, each in DIR/<variant>/
        run_dir = os.path.join(base, variant_dir(plan)) if sweep else base
        if sweep:
            typer.echo(visible(f"== {plan.name} → {run_dir}"), err=True)
        status = _run_one(plan, run_dir, nproc=nproc, device=device, dry_run=dry_run, force_replan=force_replan)
        if status:
            break
    raise typer.Exit(status)


def variant_dir(plan) -> str:
    """A sweep variant's directory name: its ``key=value`` part as one safe name (no separator,
    never ``..``: :func:`procdsl.files.safe_name`).

    >>> from types import SimpleNamespace
    >>> variant_dir(SimpleNamespace(name="c/seed=0,warm.mix={ a: 100% }"))
    'seed=0,warm.mix=a-100%'
    >>> variant_dir(SimpleNamespace(name='c/sources.d.path="/../../etc"'))
    'sources.d.path=_.._.._etc'
    """
    from procdsl.files import safe_name

    return safe_name(plan.name.split("/", 1)[-1])


def _run_one(plan, run_dir: str, *, nproc: int, device, dry_run: bool, force_replan: bool) -> int:
    """Train (or describe) one plan in ``run_dir``; the exit status."""
    from procdsl.runtime import launch, ownership

    mode = launch.launch_mode(os.environ, nproc=nproc)
    try:
        import torch

        from procdsl.runtime.platform import missing_packages, resolve_device
    except ImportError:
        typer.echo("error: `procdsl run` needs the runtime extra: pip install 'procdsl[runtime]' torch", err=True)
        return 1
    if missing := missing_packages():
        typer.echo(f"error: `procdsl run` needs {', '.join(missing)}: pip install 'procdsl[runtime]'", err=True)
        return 1
    try:
        resolved = resolve_device(device.value, cuda_available=torch.cuda.is_available())
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    world = int(os.environ["WORLD_SIZE"]) if mode == "joined" else nproc
    if dry_run:
        from procdsl.runtime.jobconfig import ConfigError
        from procdsl.runtime.run import dry_run as describe

        try:
            typer.echo(describe(plan, out=run_dir, world=world, device=resolved))
        except (ConfigError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            return 1
        return 0
    from procdsl.plan import to_json
    from procdsl.runtime.run import run_and_report

    if mode == "joined":
        return run_and_report(plan, out=run_dir, device=resolved, force_replan=force_replan, claim=True)
    try:
        with ownership.locked(run_dir):       # held while this process or its ranks train
            try:
                diff = ownership.claim(run_dir, to_json(plan), plan.hash, force=force_replan)
            except ownership.PlanMismatch as mismatch:
                typer.echo(f"error: {mismatch}", err=True)
                return 1
            if diff:
                typer.echo(f"--force-replan: {run_dir} continues under a changed plan:\n{diff}", err=True)
            if mode == "single":
                return run_and_report(plan, out=run_dir, device=resolved, force_replan=force_replan)
            return launch.spawn(nproc, launch.worker_args(run_dir, device=resolved, force_replan=force_replan))
    except (ownership.RunLocked, OSError) as busy:
        typer.echo(f"error: {busy}", err=True)
        return 1


@app.command()
def sample(file: Path = typer.Argument(..., help="the .curr file"),
           source: list[str] = typer.Option([], "--source", help="source(s) to sample (default: every source a phase uses)"),
           n: int = typer.Option(3, "-n", min=1, help="examples per source (rows with --packed)"),
           json_: bool = typer.Option(False, "--json", help='one {"source","tokens","loss_mask"} object per line'),
           packed: bool = typer.Option(False, "--packed", help="show packed training rows of a phase instead"),
           phase: Optional[str] = typer.Option(None, "--phase", help="phase for --packed (default: the first)"),
           verify: bool = typer.Option(False, "--verify", help="check procedural samples with the independent checkers"),
           at: Optional[str] = typer.Option(None, "--at", metavar="P%", help="show examples from this far through the phase (90% or 0.9): where difficulty ramps stand then"),
           step: Optional[int] = typer.Option(None, "--step", metavar="N", min=1, help="show examples from step N of the phase"),
           set_: list[str] = typer.Option([], "--set", help="override a plan path")) -> None:
    """Show examples as the model sees them; loss-masked positions highlighted.

    --at 90% (or --step N) shows the examples drawn that far through each source's phase, so a
    ramp(8, 64) shows the lengths it has reached by then; with --packed, that step's rows.
    """
    from procdsl import sample as sampling
    from procdsl.data import DataError

    plan = _compile_or_exit(file, set_).plans[0]
    if at is not None and step is not None:
        raise _usage("give --at or --step, not both")
    try:
        fraction = sampling.parse_at(at) if at is not None else None
    except ValueError as exc:
        raise _usage(str(exc)) from None
    try:
        if packed:
            name = phase or plan.phases[0].name
            if name not in [p.name for p in plan.phases]:
                raise _usage(f"no phase {name!r}; phases are {', '.join(p.name for p in plan.phases)}")
            steps = plan.phase(name).steps
            if step is not None and step > steps:
                raise _usage(f"--step {step}: phase {name!r} has {steps:,} steps")
            skip = step - 1 if step is not None else min(int((fraction or 0.0) * steps), steps - 1)
            stream, rows = sampling.open_rows(plan, name, n, skip=skip)  # streamed: `-n 100000000 | head` is instant
            if json_:
                for row in rows:
                    typer.echo(json.dumps(row))
            else:
                sampling.print_rows(stream, rows)
            return
        names = source or [s for s in plan.sources if any(s in p.sources_read() for p in plan.phases)]
        unknown = [s for s in names if s not in plan.sources]
        if unknown:
            raise _usage(f"no source {unknown[0]!r}; sources are {', '.join(plan.sources)}")
        where = {name: _sample_at(plan, name, fraction, step) for name in names}
        from procdsl.checkers import check_example

        shown, checked, problems = [0], [0], []

        def produced():  # each example is printed (and verified) as soon as it exists
            for name in names:
                try:
                    for x in sampling.iter_source(plan, name, n, at=where[name]):
                        shown[0] += 1
                        if verify and plan.sources[name].procedural:
                            checked[0] += 1
                            problems.extend((name, p) for p in check_example(plan.sources[name], x.tokens, x.loss_mask,
                                                                             _context_of(plan, name)))
                        yield x
                except DataError as exc:
                    if source:  # asked for by name: its failure is the answer
                        raise
                    typer.echo(f"skipped {name}: {exc}", err=True)

        if json_:
            for x in produced():
                typer.echo(json.dumps(x.to_json()))
        else:
            sampling.print_samples(produced())
        if not shown[0]:
            typer.echo("error: no source could be sampled", err=True)
            raise typer.Exit(1)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if verify:
        for name, problem in problems:
            typer.echo(f"{name}: {problem}", err=True)
        typer.echo(f"verified {checked[0]} procedural examples: {len(problems)} problems", err=True)
        if problems:
            raise typer.Exit(1)


def _sample_at(plan, source: str, fraction: Optional[float], step: Optional[int]) -> float:
    """How far through its phase ``source`` is sampled: ``--at``, or ``--step`` of that phase."""
    if step is None:
        return fraction or 0.0
    phase = next((p for p in plan.phases if source in p.mix), None)
    if phase is None:
        raise _usage(f"--step: source {source!r} is not trained on in any phase")
    if step > phase.steps:
        raise _usage(f"--step {step}: phase {phase.name!r}, which trains on {source!r}, has {phase.steps:,} steps")
    return (step - 1) / phase.steps


def _context_of(plan, source: str) -> int:
    return next((p.context for p in plan.phases if source in p.mix), plan.context)


@app.command()
def prepare(file: Path = typer.Argument(..., help="the .curr file"),
            set_: list[str] = typer.Option([], "--set", help="override a plan path"),
            workers: int = typer.Option(1, "--workers", min=1, help="tokenizing processes"),
            cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where stores live (default $PROCDSL_CACHE, else $HF_HOME/procdsl, else ~/.cache/procdsl)")) -> None:
    """Tokenize every data source FILE's plan reads into token stores; a re-run is a no-op."""
    from procdsl.data import DataError
    from procdsl.store import prepare_plan

    plans = _compile_or_exit(file, set_).plans
    hint = " ".join(["procdsl prepare", str(file), *(f"--set {o}" for o in set_)])
    try:
        for plan in plans:
            done = prepare_plan(plan, cache_dir=str(cache_dir) if cache_dir else None, workers=workers, hint=hint)
            for store in done:
                typer.echo(store.describe())
            if not done:
                typer.echo(f"{plan.name}: reads no data source; nothing to prepare")
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def bench(json_: bool = typer.Option(False, "--json", help="print the measurements as JSON"),
          quick: bool = typer.Option(False, "--quick", help="shorter measurements (noisier)"),
          pipeline_file: Optional[Path] = typer.Option(None, "--pipeline", metavar="FILE",
                                                       help="measure one rank's stream of FILE instead"),
          phase: Optional[str] = typer.Option(None, "--phase", help="phase for --pipeline (default: the first)"),
          world: int = typer.Option(1, "--world", min=1, help="ranks simulated for --pipeline"),
          rank: int = typer.Option(0, "--rank", min=0, help="the rank measured for --pipeline"),
          start_step: int = typer.Option(0, "--start-step", min=0, help="resume the stream at this step first"),
          steps: int = typer.Option(20, "--steps", min=1, help="steps measured for --pipeline"),
          set_: list[str] = typer.Option([], "--set", help="override a plan path (repeatable)"),
          stream: bool = typer.Option(False, "--stream", help="with --pipeline: read data files as it goes, not the token store")) -> None:
    """Generator and pipeline throughput, as ratios to baselines measured in the same run.

    With ``--pipeline FILE``: what rank R of W pays per step for its rows (no torch, no process
    group), as one JSON object (``step_ms``, ``rank_tokens_per_s``, ``resume_ms``, …); data
    comes from the token store (prepared first) as in ``procdsl run``, or ``--stream``."""
    if pipeline_file is not None:
        from procdsl.data import DataError
        from procdsl.store.runs import data_store, prepare_stores
        from procdsl.stream.rank_bench import rank_pipeline_bench

        plan = _compile_or_exit(pipeline_file, set_).plans[0]
        name = phase or plan.phases[0].name
        if name not in {p.name for p in plan.phases}:
            raise _usage(f"no phase {name!r} in {pipeline_file} (phases: {', '.join(p.name for p in plan.phases)})")
        store = None if stream else data_store(os.environ)   # as `procdsl run` reads it
        try:
            if store is not None:
                prepare_stores(plan, store, announce=False)
            record = rank_pipeline_bench(plan, name, world=world, rank=rank, start_step=start_step,
                                         steps=steps, store=store)
        except DataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except ValueError as exc:
            raise _usage(str(exc)) from None
        typer.echo(json.dumps(record) if json_ else
                   "  ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
        return
    from procdsl.bench import format_table, run_generator_bench
    from procdsl.stream.bench import format_table as format_pipeline
    from procdsl.stream.bench import run_pipeline_bench

    generators = run_generator_bench(seconds=0.1 if quick else 0.3)
    pipeline = run_pipeline_bench(batches=100 if quick else 1000)
    if json_:
        typer.echo(json.dumps({"generators": generators, "pipeline": pipeline}, indent=2))
        return
    typer.echo(format_table(generators))
    typer.echo()
    typer.echo(format_pipeline(pipeline))


@app.command()
def report(paths: list[Path] = typer.Argument(..., help="run directories, or directories holding them (a sweep's)"),
           out: Optional[Path] = typer.Option(None, "--out", help="where report.md and the PNGs go (default: FIRST/report)"),
           baseline: Optional[str] = typer.Option(None, "--baseline", help="the arm to compare against (default: fewest phases)"),
           json_: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
           all_: bool = typer.Option(False, "--all", help="include runs that have not finished"),
           x: str = typer.Option("real-tokens", "--x", metavar="real-tokens|all-tokens|flops",
                                 help="the figures' x-axis: the last phase's tokens, every phase's tokens, or training FLOPs")) -> None:
    """Compare runs: final metrics over seeds, curves, achieved mixtures, data-efficiency ratio.

    Figures (PNG, SVG and PDF): loss, accuracy with its chance line, loss per source.
    """
    import platform as host

    from rich.console import Console
    from rich.table import Table

    from procdsl.report.axes import AXES, AxisError
    from procdsl.report.build import build_report, curves, efficiency_rows, markdown, table_rows
    from procdsl.report.plot import save_figures, terminal_plot
    from procdsl.report.runs import ReportError

    if x not in AXES:
        raise _usage(f"--x {x}: choose {', '.join(AXES)}")
    try:
        result = build_report([str(p) for p in paths], baseline, include_unfinished=all_)
        folder = str(out or (paths[0] / "report"))
        result.files = save_figures(result, folder, x)
        plotted = curves(result, x)
    except (ReportError, AxisError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    hardware = f"{host.machine()}, {os.cpu_count()} cores, {host.python_implementation()} {host.python_version()}"
    os.makedirs(folder, exist_ok=True)
    Path(folder, "report.md").write_text(markdown(result, hardware), encoding="utf-8")
    if json_:
        typer.echo(json.dumps({"finals": result.finals, "efficiency": result.efficiency,
                               "mixtures": result.mixtures}, indent=2, default=str))
        return
    console = Console()
    if not result.files:
        console.print("no figures: matplotlib is not installed (pip install 'procdsl[report]'); "
                      "report.md has the tables", style="yellow", highlight=False)
    for path in result.skipped:
        console.print(f"skipped unfinished run {path} (--all includes it)", style="yellow", highlight=False)
    header, rows = table_rows(result)
    table = Table(title="final metrics (mean ± std over seeds)", title_justify="left")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if result.efficiency:
        eff = Table(title="data efficiency: real tokens to reach the baseline's final loss", title_justify="left")
        for column in ("arm", "baseline", "compared", "baseline final", "tokens needed"):
            eff.add_column(column)
        for row in efficiency_rows(result):
            eff.add_row(*row)
        console.print(eff)
    console.print(terminal_plot(plotted), highlight=False)
    console.print(f"wrote {folder}/report.md" + "".join(f", {f}" for f in result.files), style="dim")


@app.command()
def lsp() -> None:
    """Run the language server over stdio, for editors (needs the lsp extra)."""
    try:
        from procdsl.lsp.server import serve
    except ImportError as exc:
        if exc.name not in ("pygls", "lsprotocol") and not (exc.name or "").startswith(("pygls.", "lsprotocol.")):
            raise
        typer.echo(f"error: `procdsl lsp` needs {exc.name}: pip install 'procdsl[lsp]'", err=True)
        raise typer.Exit(1) from None
    serve()


from procdsl import cli_after, cli_help, cli_start  # noqa: E402  (after `app` exists)

cli_after.register(app)      # export, eval
cli_help.register(app)       # --version, readable placeholders
cli_start.register(app)      # explain


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
        typer.echo(f"internal error: {type(exc).__name__}: {exc}\n(set PROCDSL_DEBUG=1 for the traceback, "
                   "and please report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
