"""How ``procdsl --help`` reads: placeholders as words, and ``--version``.

Typer 0.29 writes a required argument as ``{file}`` and an option's value by its Python type
(``-n <int range>``, ``--set <list[str]>``). :func:`readable_placeholders` makes both words in
capitals — ``FILE``, ``-n N``, ``--set KEY=VALUE`` — unless a parameter names its own
``metavar``; choices stay as they are (``--format text|json|github``).

>>> placeholder("set_"), placeholder("n"), placeholder("variant")
('KEY=VALUE', 'N', 'VARIANT')
"""

from __future__ import annotations

from typing import Optional

import typer

#: parameter names whose placeholder is not just the name in capitals
_WORDS = {"set": "KEY=VALUE", "out": "DIR", "output": "FILE", "time_limit": "HH:MM:SS"}


def placeholder(name: Optional[str]) -> str:
    """The word standing for a parameter's value in help texts."""
    name = (name or "value").rstrip("_")
    return _WORDS.get(name, name.upper())


def readable_placeholders() -> None:
    """Patch typer's help rendering (module docstring); safe to call more than once."""
    from typer import core

    if getattr(core, "_procdsl_placeholders", False):
        return
    original = core._TyperParameter.display_type

    def display_type(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if self.type_descriptor.is_choice:
            return original(self, ctx).strip("<>")
        return placeholder(self.name)

    def usage_name(self) -> str:
        name = self.metavar or placeholder(self.name)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    # patching typer's methods is the point (module docstring); a checker rejects that on principle
    core._TyperParameter.display_type = display_type  # type: ignore[method-assign]
    core.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    core._procdsl_placeholders = True  # type: ignore[attr-defined]  # our own marker on typer's module


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"procdsl {version('procdsl')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            from procdsl import __version__

            typer.echo(f"procdsl {__version__}")
        raise typer.Exit(0)


def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print procdsl's version and exit"
    ),
) -> None:
    """procdsl: curricula for procedural pretraining, as files."""


def register(app: typer.Typer) -> None:
    """``--version`` on the command line, and readable placeholders in every help text."""
    readable_placeholders()
    app.callback()(root)
