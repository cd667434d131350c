"""The registry as text: ``docs/reference.md`` and the settings list of ``procdsl plan --help``.

Regenerate the reference with ``python -m procdsl.registry.render > docs/reference.md``; a test
fails while the two differ.

>>> print(settings_help().splitlines()[2])
  seed                   int, default 0, ≥ 0 — seed of every generator, the data order and the initial weights; phases inherit it
"""

from __future__ import annotations

from procdsl.registry.items import Item, Param
from procdsl.registry.settings import KEYS

_HELP_TITLES = {
    "curriculum": "curriculum settings (--set KEY=…)",
    "runtime": "runtime { … } (--set runtime.KEY=…)",
    "phase": "phase keys (--set phases.NAME.KEY=…)",
    "transfer": "transfer = { … } keys",
}


def settings_help() -> str:
    """Every key with its type, default, range and doc, as plain text for ``--help``.

    Paragraphs start with click's ``\\b`` marker so the lines are not rewrapped.
    """
    blocks = []
    for block, items in KEYS.items():
        lines = ["\b", _HELP_TITLES[block] + ":"]
        for item in items:
            facts = ", ".join(
                x for x in (item.type, f"default {item.default}" if item.default else "", item.range) if x
            )
            lines.append(f"  {item.name:<22} {facts} — {item.doc}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "—"


def _key_table(items: tuple[Item, ...], head: str) -> list[str]:
    rows = [f"| {head} | type | default | range | meaning |", "|---|---|---|---|---|"]
    rows += [
        f"| `{i.name}` | {_cell(i.type)} | {_cell(i.default)} | {_cell(i.range)} | {_cell(i.doc)} |"
        for i in items
    ]
    return rows


def _param_table(params: tuple[Param, ...]) -> list[str]:
    rows = ["| parameter | type | default | range | meaning |", "|---|---|---|---|---|"]
    rows += [
        f"| `{p.name}`{' (positional)' if p.positional else ''} | {_cell(p.type)} | {_cell(p.default)} "
        f"| {_cell(p.range)} | {_cell(p.doc)} |"
        for p in params
    ]
    return rows


def _word_table(items: tuple[Item, ...], head: str) -> list[str]:
    return [f"| {head} | meaning |", "|---|---|"] + [f"| `{i.name}` | {_cell(i.doc)} |" for i in items]


_CALL_SECTIONS = (
    ("source kind", "Source kinds"),
    ("model", "Models"),
    ("tokenizer", "Trained tokenizer"),
    ("optimizer", "Optimizer"),
    ("schedule", "Schedules"),
    ("evaluation", "Evaluations"),
    ("parallel", "Parallelism"),
    ("perturbation", "Perturbations (`transfer.perturb`)"),
)
_WORD_SECTIONS = (
    ("rule", "Built-in rules"),
    ("tokenizer", "Tokenizer words"),
    ("loss", "Loss modes"),
    ("component", "Model components (`transfer`)"),
)


def codes_table() -> list[str]:
    """Every diagnostic code of :mod:`procdsl.lang.codes`, one row each, in code order.

    >>> print("\\n".join(codes_table()[:3]))
    | code | name | summary | what triggers it, the fix |
    |---|---|---|---|
    | E001 | `UNEXPECTED_TOKEN` | a token that cannot stand where it is written | The parser found a word or symbol that the grammar does not allow there (a phase outside `curriculum`, `key: value` where `key = value` belongs); the message lists what may follow. Fix the text at the caret. |
    """
    from procdsl.lang.codes import CODES

    rows = ["| code | name | summary | what triggers it, the fix |", "|---|---|---|---|"]
    return rows + [f"| {c.code} | `{c.name}` | {_cell(c.summary)} | {_cell(c.doc)} |" for c in CODES.values()]


def reference_markdown() -> str:
    """The whole registry as ``docs/reference.md``, ending with the diagnostic codes."""
    from procdsl.registry.lookup import category

    out = [
        "# procdsl reference",
        "",
        "Every setting, key, call, parameter and word of the `.curr` language: type, default, allowed",
        "range and meaning. Generated from `procdsl/registry/` (the source of hover in the editor and of",
        "`procdsl plan --help`) by `python -m procdsl.registry.render > docs/reference.md`; do not edit.",
        "",
    ]
    titles = {
        "curriculum": "Curriculum settings",
        "runtime": "`runtime { … }`",
        "phase": "Phase keys",
        "transfer": "`transfer = { … }` keys",
    }
    for block, items in KEYS.items():
        out += [f"## {titles[block]}", ""] + _key_table(items, "key") + [""]
    for name, title in _CALL_SECTIONS:
        out += [f"## {title}", ""]
        for item in category(name):
            if not item.callable:
                continue
            out += [f"### `{item.signature()}`", "", item.doc, ""]
            out += (_param_table(item.params) if item.params else ["No parameters."]) + [""]
    for name, title in _WORD_SECTIONS:
        words = tuple(i for i in category(name) if not i.callable)
        out += [f"## {title}", ""] + _word_table(words, "word") + [""]
    others = tuple(i for i in category("length") + category("optimizer") if not i.callable)
    out += ["## Other words", ""] + _word_table(others, "word") + [""]
    out += [
        "## Diagnostic codes",
        "",
        "Every code `procdsl check` can report (E0xx syntax and input, E1xx unknown names, E2xx types and",
        "ranges, E3xx structure, W4xx warnings), from `procdsl/lang/codes.py`.",
        "",
    ] + codes_table()
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - the documented regeneration command
    print(reference_markdown(), end="")
