"""The commands for starting out (registered by ``procdsl.cli``): ``procdsl explain NAME``.

Both are light: no torch, no data libraries.
"""

from __future__ import annotations

import typer


def explain(name: str = typer.Argument(..., metavar="NAME",
                                       help="a setting, key, call, parameter or word: mix, runtime.log_every, dyck.k")) -> None:
    """What NAME means in a .curr file: its role, type, default, allowed range and doc.

    A bare name shows every role it has (batch is a curriculum setting and a phase key);
    BLOCK.NAME picks one (runtime.keep, phase.mix, transfer.freeze); CALL.PARAM a parameter
    (dyck.k, adamw.lr, cosine.warmup). docs/reference.md lists them all.
    """
    from procdsl.registry.explain import Unknown, explain as describe

    try:
        typer.echo(describe(name))
    except Unknown as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the command line."""
    app.command()(explain)
