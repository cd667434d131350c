"""The commands for starting out (registered by ``procdsl.cli``): ``procdsl init [DIR]`` and
``procdsl explain NAME``.

Both are light: no torch, no data libraries.
"""

from __future__ import annotations

from pathlib import Path

import typer


def explain(
    name: str = typer.Argument(
        ..., metavar="NAME", help="a setting, key, call, parameter or word: mix, runtime.log_every, dyck.k"
    ),
) -> None:
    """What NAME means in a .curr file: its role, type, default, allowed range and doc.

    A bare name shows every role it has (batch is a curriculum setting and a phase key);
    BLOCK.NAME picks one (runtime.keep, phase.mix, transfer.freeze); CALL.PARAM a parameter
    (dyck.k, adamw.lr, cosine.warmup). docs/reference.md lists them all.
    """
    from procdsl.registry.explain import Unknown
    from procdsl.registry.explain import explain as describe

    try:
        typer.echo(describe(name))
    except Unknown as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def init(
    folder: Path = typer.Argument(
        Path("."), metavar="DIR", help="where to start (created if needed; default: here)"
    ),
) -> None:
    """Start a project in DIR: a curriculum that trains offline on a CPU, and a README stanza.

    Writes DIR/curriculum.curr (a SORT warm-up, then Python code) and DIR/README.md (or adds the
    stanza to the README there). An existing curriculum.curr is never replaced.
    """
    from procdsl.starter import StarterExists, init_project

    try:
        done = init_project(str(folder))
    except (StarterExists, OSError) as exc:
        typer.echo(
            f"error: {exc}"
            if isinstance(exc, StarterExists)
            else f"error: cannot write in {folder}: {exc.strerror or exc}",
            err=True,
        )
        raise typer.Exit(1) from None
    for path in done.written:
        typer.echo(f"wrote {path}")
    for path in done.appended:
        typer.echo(f"added a section to {path}")
    curr = Path(folder) / "curriculum.curr"
    typer.echo(f"next: procdsl plan {curr}   then   procdsl run {curr}")


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``explain`` to the command line."""
    app.command()(init)
    app.command()(explain)
