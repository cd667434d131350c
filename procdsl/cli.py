"""The ``procdsl`` command line (typer + rich). Exit codes: 0 ok, 1 errors, 2 usage.

Commands import what they need when they run, so ``procdsl check`` stays light (no torch, no
numpy-heavy generators): a test asserts it.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from procdsl.lang.diagnostics import Diagnostic, errors, render_github, render_json, render_text

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="procdsl: curricula for procedural pretraining, as files.")


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _usage(message: str) -> "typer.Exit":
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _curr_files(paths: List[Path]) -> list[str]:
    """Every .curr file under the given paths (directories recursively), in a stable order."""
    files: list[str] = []
    for path in paths:
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*.curr") if p.is_file())
        elif path.exists():
            files.append(str(path))
        else:
            raise _usage(f"no such file or directory: {path}")
    return files


def _print_diagnostics(diagnostics: list[Diagnostic], texts: dict[str, str], fmt: Format, err: bool) -> None:
    for d in diagnostics:
        if fmt is Format.json:
            typer.echo(render_json(d), err=err)
        elif fmt is Format.github:
            typer.echo(render_github(d), err=err)
        else:
            typer.echo(render_text(d, texts.get(d.span.file)) + "\n", err=err)


@app.command()
def check(paths: List[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
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


@app.command()
def plan(file: Path = typer.Argument(..., help="the .curr file"),
         set_: List[str] = typer.Option([], "--set", help="override a plan path: --set phases.warmup.steps=500"),
         json_: bool = typer.Option(False, "--json", help="print only the plan JSON on stdout"),
         output: Optional[Path] = typer.Option(None, "-o", "--output", help="also write the plan JSON here")) -> None:
    """Compile FILE and show its plan (or every sweep variant's)."""
    from procdsl.plan import to_json

    result = _compile_or_exit(file, set_)
    plans = result.plans
    text = to_json(plans[0]) if len(plans) == 1 else "[\n" + ",\n".join(to_json(p) for p in plans) + "\n]"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    if json_:
        typer.echo(text)
        return
    from procdsl.plan.table import print_plan

    for p in plans:
        print_plan(p)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)


def _compile_or_exit(file: Path, overrides: List[str]):
    from procdsl.compiler import compile_file

    if not file.is_file():
        raise _usage(f"no such file: {file}")
    result = compile_file(str(file), overrides)
    _print_diagnostics(result.diagnostics, result.texts, Format.text, err=True)
    if not result.ok:
        typer.echo(f"Found {len(errors(result.diagnostics))} errors.", err=True)
        raise typer.Exit(1)
    if not result.plans:
        typer.echo(f"error: {file} is a library (no curriculum block): nothing to plan", err=True)
        raise typer.Exit(1)
    return result


@app.command()
def fmt(paths: List[Path] = typer.Argument(..., help="files or directories (searched for *.curr)"),
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
                Path(file).write_text(formatted, encoding="utf-8")
                typer.echo(f"reformatted {file}")
    verb = "would be reformatted" if check_only else "reformatted"
    typer.echo(f"{changed} file{'s' if changed != 1 else ''} {verb}.", err=True)
    raise typer.Exit(1 if failed or (check_only and changed) else 0)


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
