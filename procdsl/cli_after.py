"""The commands for after a run: ``procdsl export`` and ``procdsl eval`` (registered by ``procdsl.cli``).

Both need torch, transformers and safetensors (``pip install 'procdsl[export]'``); ``eval`` also
lm-eval (``procdsl[eval]``). A missing package is named in one ``error:`` line, exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

#: what ``export`` needs beyond the runtime, as (module, package)
EXPORT_NEEDS = (("torch", "torch"), ("transformers", "transformers"), ("safetensors", "safetensors"))


def _missing(needs) -> list[str]:
    import importlib.util

    return [package for module, package in needs if importlib.util.find_spec(module) is None]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _split(values: list[str]) -> list[str]:
    """``["a,b", "c"]`` → ``["a", "b", "c"]``: a list option given either way."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def export(
    run_dir: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="a run directory (holds plan.json and checkpoints/)"
    ),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="the Hugging Face model directory to write"),
    step: Optional[int] = typer.Option(
        None, "--step", metavar="N", help="the checkpoint to export (default: the newest)"
    ),
) -> None:
    """Write RUN_DIR's checkpoint as a Hugging Face model: safetensors, config, tokenizer.

    gpt2 becomes GPT2LMHeadModel, llama LlamaForCausalLM; the tokenizer keeps the run's ids
    (procedural ids are added tokens such as <|sort:SEP|>). Load it with
    transformers.AutoModelForCausalLM.from_pretrained(DIR).
    """
    if missing := _missing(EXPORT_NEEDS):
        raise _fail(f"`procdsl export` needs {', '.join(missing)}: pip install 'procdsl[export]'")
    from procdsl.data import DataError
    from procdsl.runtime.export import ExportError, export_run

    try:
        done = export_run(str(run_dir), str(out), step)
    except (ExportError, DataError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"exported step {done.step} (phase {done.phase}) of {run_dir} as {done.architecture} "
        f"(vocabulary {done.vocab_size}) → {done.folder}: {', '.join(done.files)}"
    )


def evaluate(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a run directory"),
    tasks: list[str] = typer.Option(
        ..., "--tasks", metavar="TASK[,TASK…]", help="lm-eval task names (repeat or comma-separate)"
    ),
    step: Optional[int] = typer.Option(
        None, "--step", metavar="N", help="the checkpoint to evaluate (default: the newest)"
    ),
    include_path: Optional[Path] = typer.Option(
        None,
        "--include-path",
        metavar="DIR",
        help="a folder of lm-eval task YAML files (local tasks, offline)",
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", metavar="N", min=1, help="at most N examples per task"
    ),
    batch_size: int = typer.Option(8, "--batch-size", metavar="N", min=1, help="lm-eval's batch size"),
    device: str = typer.Option("cpu", "--device", metavar="cpu|cuda", help="where lm-eval runs the model"),
    json_: bool = typer.Option(False, "--json", help="print the results as JSON"),
) -> None:
    """Run lm-evaluation-harness tasks on RUN_DIR's model (exported to RUN_DIR/export/step-N).

    Results go to RUN_DIR/lm_eval/step-N.json.
    """
    if missing := _missing(EXPORT_NEEDS + (("lm_eval", "lm-eval"),)):
        raise _fail(f"`procdsl eval` needs {', '.join(missing)}: pip install 'procdsl[eval]'")
    from procdsl.data import DataError
    from procdsl.runtime.export import ExportError
    from procdsl.runtime.harness import result_lines, run_tasks

    names = _split(tasks)
    if not names:
        typer.echo("error: --tasks names no task", err=True)
        raise typer.Exit(2)
    try:
        record = run_tasks(
            str(run_dir),
            names,
            step=step,
            limit=limit,
            batch_size=batch_size,
            include_path=str(include_path) if include_path else None,
            device=device,
        )
    except (ExportError, DataError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if json_:
        typer.echo(json.dumps(record, indent=2))
        return
    for line in result_lines(record):
        typer.echo(line)
    typer.echo(f"wrote {record['file']}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``eval`` to the command line."""
    app.command()(export)
    app.command("eval")(evaluate)
