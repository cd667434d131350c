"""``procdsl sample``: examples exactly as the model sees them, and packed rows.

A source is sampled through the same unit readers as training (:mod:`procdsl.stream`), in the
first phase that trains on it (else the first that evaluates it, on its held-out split), so
what is shown is what the model gets: procedural examples under the phase's seed and loss,
documents tokenized and cut to the context. Ids are the source's own (raw procedural ids, or
the tokenizer's), as DESIGN.md §4 promises for ``--json``.

>>> from procdsl.compiler import compile_text
>>> text = '''curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 16 batch = 2
...   source s = reverse(length=3, vocab=10)
...   phase p { steps = 1  mix = { s: 100% } } }'''
>>> plan = compile_text(text, "c.curr").plan
>>> [x.to_json()["tokens"] for x in sample_source(plan, "s", 2)]
[[1, 2, 3, 10, 3, 2, 1], [3, 4, 9, 10, 9, 4, 3]]
>>> sample_source(plan, "s", 1)[0].text()
'1 2 3 SEP [3] [2] [1]'
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from procdsl.data.errors import DataError
from procdsl.data.split import Role
from procdsl.errors import UsageError
from procdsl.plan import Plan
from procdsl.plan.model import Phase
from procdsl.stream import PhaseStream
from procdsl.stream.progress import final_progress, phase_progress, training_key
from procdsl.stream.stream import unit_reader
from procdsl.stream.units import Cursor
from procdsl.stream.vocab import PhaseVocab


@dataclass(frozen=True)
class Sample:
    """One example (or document piece) of one source, in the source's own ids."""

    source: str
    tokens: np.ndarray
    loss_mask: np.ndarray
    name: Callable[[int], str]  # id -> display text
    separator: str = " "  # between tokens when displayed ("" for text pieces)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "tokens": [int(t) for t in self.tokens],
            "loss_mask": [bool(m) for m in self.loss_mask],
        }

    def text(self) -> str:
        """Plain rendering: targets in brackets."""
        return self.separator.join(
            f"[{self.name(t)}]" if m else self.name(t) for t, m in zip(self.tokens, self.loss_mask)
        )


def _phase_for(plan: Plan, source: str) -> tuple[Phase, Role]:
    """The phase a source is sampled in, and its split ("train" or "heldout")."""
    for phase in plan.phases:
        if source in phase.mix:
            return phase, "train"
    for phase in plan.phases:
        if any(e.source == source for e in phase.eval):
            return phase, "heldout"
    return plan.phases[0], "train"


def sample_source(plan: Plan, source: str, n: int, *, cache_dir: Optional[str] = None) -> list[Sample]:
    """The first ``n`` units of ``source`` as its phase's model sees them."""
    return list(iter_source(plan, source, n, cache_dir=cache_dir))


def parse_at(text: str) -> float:
    """``--at``: how far through its phase, as ``90%`` or ``0.9``; ValueError if not in [0, 1].

    >>> parse_at("90%"), parse_at("0.25"), parse_at("100%")
    (0.9, 0.25, 1.0)
    """
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"--at {text}: write how far through the phase, e.g. 90% or 0.9") from None
    if not 0 <= value <= 1:
        raise ValueError(f"--at {text}: must lie between 0% and 100%")
    return value


def position(at: Optional[str], step: Optional[int]) -> Optional[float]:
    """``--at`` as a fraction (:func:`parse_at`), None without it; UsageError for a bad one, or
    for ``--at`` beside ``--step`` (which :func:`start_of` and :func:`packed_start` read)."""
    if at is not None and step is not None:
        raise UsageError("give --at or --step, not both")
    try:
        return parse_at(at) if at is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def packed_start(
    plan: Plan, phase: Optional[str], at: Optional[float], step: Optional[int]
) -> tuple[str, int]:
    """``sample --packed``: the phase shown (default: the first) and how many of its steps
    come before the rows shown (``--step N``: N - 1; ``--at``: that fraction of the steps)."""
    name = phase or plan.phases[0].name
    if name not in [p.name for p in plan.phases]:
        raise UsageError(f"no phase {name!r}; phases are {', '.join(p.name for p in plan.phases)}")
    steps = plan.phase(name).steps
    if step is not None and step > steps:
        raise UsageError(f"--step {step}: phase {name!r} has {steps:,} steps")
    return name, step - 1 if step is not None else min(int((at or 0.0) * steps), steps - 1)


def sources_shown(plan: Plan, asked: Sequence[str]) -> list[str]:
    """The sources ``sample`` shows: those asked for, else every source a phase reads."""
    names = list(asked) or [s for s in plan.sources if any(s in p.sources_read() for p in plan.phases)]
    unknown = [s for s in names if s not in plan.sources]
    if unknown:
        raise UsageError(f"no source {unknown[0]!r}; sources are {', '.join(plan.sources)}")
    return names


def start_of(plan: Plan, source: str, at: Optional[float], step: Optional[int]) -> float:
    """How far through its phase ``source`` is sampled: ``--at``, or ``--step`` of the phase
    that trains on it."""
    if step is None:
        return at or 0.0
    phase = next((p for p in plan.phases if source in p.mix), None)
    if phase is None:
        raise UsageError(f"--step: source {source!r} is not trained on in any phase")
    if step > phase.steps:
        raise UsageError(
            f"--step {step}: phase {phase.name!r}, which trains on {source!r}, has {phase.steps:,} steps"
        )
    return (step - 1) / phase.steps


def context_of(plan: Plan, source: str) -> int:
    """The context of the first phase that trains on ``source`` (the plan's, if none does)."""
    return next((p.context for p in plan.phases if source in p.mix), plan.context)


class Drawing:
    """``sample``'s examples: ``n`` of each source in turn, each yielded (and, with ``verify``,
    checked by the independent checkers) as soon as it exists. A source that cannot be read is
    skipped, with a word to ``skipped``, unless ``strict`` (the sources were asked for by name:
    their failure is the answer). ``shown``, ``checked`` and ``problems`` count as it goes."""

    def __init__(
        self,
        plan: Plan,
        names: Sequence[str],
        n: int,
        *,
        at: Optional[float] = None,
        step: Optional[int] = None,
        verify: bool = False,
        strict: bool = False,
        skipped: Optional[Callable[[str], None]] = None,
    ):
        self.plan, self.names, self.n = plan, list(names), n
        self.where = {name: start_of(plan, name, at, step) for name in self.names}
        self.verify, self.strict = verify, strict
        self.skipped = skipped or (lambda message: print(message, file=sys.stderr))
        self.shown = self.checked = 0
        self.problems: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[Sample]:
        from procdsl.checkers import check_example

        for name in self.names:
            try:
                for x in iter_source(self.plan, name, self.n, at=self.where[name]):
                    self.shown += 1
                    if self.verify and self.plan.sources[name].procedural:
                        self.checked += 1
                        self.problems.extend(
                            (name, p)
                            for p in check_example(
                                self.plan.sources[name], x.tokens, x.loss_mask, context_of(self.plan, name)
                            )
                        )
                    yield x
            except DataError as exc:
                if self.strict:
                    raise
                self.skipped(f"skipped {name}: {exc}")

    def verdict(self) -> list[str]:
        """What ``--verify`` says at the end: each problem, then the count."""
        return [f"{name}: {problem}" for name, problem in self.problems] + [
            f"verified {self.checked} procedural examples: {len(self.problems)} problems"
        ]


def first_example(plan: Plan, source: str, at: float) -> int:
    """The index of the example the stream draws from ``source`` ``at`` (0 … 1) of the way through
    the phase that trains on it: where its difficulty ramps stand then (progress ``i / E``,
    :mod:`procdsl.stream.progress`). Held-out and data sources start at 0 (no ramp moves them)."""
    phase, split = _phase_for(plan, source)
    model = plan.sources[source]
    if not model.procedural or split != "train" or at <= 0:
        return 0
    from procdsl.stream.progress import expected_examples

    return int(at * expected_examples(phase, source, model, plan.sources))


def iter_source(
    plan: Plan, source: str, n: int, *, cache_dir: Optional[str] = None, at: float = 0.0
) -> Iterator[Sample]:
    """:func:`sample_source` as it is produced, a block at a time: ``sample -n 100000000`` prints
    its first line at once and holds one block in memory, not a hundred million examples.
    ``at`` (0 … 1): start where the phase stands that far through (:func:`first_example`).

    >>> from procdsl.compiler import compile_text
    >>> plan = compile_text('curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 160 batch = 2 '
    ...                     'source s = sort(length=ramp(4, 64), vocab=10) '
    ...                     'phase p { steps = 100  mix = { s: 100% } } }', "c.curr").plan
    >>> [len(x.tokens) for at in (0.0, 0.5, 0.9) for x in iter_source(plan, "s", 1, at=at)]   # 2·length + 1
    [9, 69, 117]
    """
    phase, split = _phase_for(plan, source)

    model = plan.sources[source]
    probe = phase.model_copy(update={"mix": {source: 1.0}, "mix_ramp": None, "eval": ()})
    vocab = PhaseVocab.for_phase(plan, probe, cache_dir=cache_dir)
    if model.procedural:
        key = training_key(source, phase) if split == "train" else f"{source}/heldout"
        progress = phase_progress(phase, source, model, plan.sources) if split == "train" else final_progress
        seed = phase.seed if split == "train" else plan.seed
    else:
        key, progress, seed = source, None, phase.seed
    reader = unit_reader(
        plan,
        source,
        vocab=vocab,
        key=key,
        seed=seed,
        context=phase.context,
        loss=phase.loss or model.default_loss,
        role=split,
        progress=progress,
    )
    offset = vocab.offset(source)
    shown = 0
    cursor = Cursor(0, first_example(plan, source, at), 0)
    while shown < n:
        units = reader.read(cursor)
        for j in range(min(len(units), n - shown)):
            tokens, targets = units[j]
            shown += 1
            yield Sample(source, tokens - offset, targets, *_namer(vocab, offset, model.procedural))
        cursor = units.end


def _namer(vocab: PhaseVocab, offset: int, procedural: bool) -> tuple[Callable[[int], str], str]:
    """How to show one id, and what stands between shown ids."""
    if not procedural:
        return (lambda token: vocab.text_tokenizer.decode([int(token)], specials=True)), ""
    return (lambda token: vocab.describe(int(token) + offset).split(":", 1)[1]), " "


#: the name of padding in a row's ``source`` list
PAD = "<pad>"


def open_rows(
    plan: Plan, phase: str, n: int, *, cache_dir: Optional[str] = None, skip: int = 0
) -> tuple[PhaseStream, Iterator[dict]]:
    """The first ``n`` rows of a phase's packed stream — tokens (global ids), targets, sources —
    as they are produced, a batch at a time, from step ``skip + 1`` on (the stream is run
    through the steps before: each costs what training's data does)."""
    stream = PhaseStream(plan, phase, cache_dir=cache_dir)

    def rows() -> Iterator[dict]:
        for _ in range(skip):
            stream.next_batch()
        shown = 0
        while shown < n:
            batch = stream.next_batch()
            padding = batch.padding
            for r in range(min(len(batch.tokens), n - shown)):
                yield {
                    "phase": phase,
                    "row": shown,
                    "layout": stream.layout,
                    "tokens": batch.tokens[r].tolist(),
                    "loss_mask": batch.targets[r].tolist(),
                    "source": [
                        PAD if p else batch.sources[s]
                        for s, p in zip(batch.source[r].tolist(), padding[r].tolist())
                    ],
                    "positions": batch.positions[r].tolist(),
                    "document": batch.document[r].tolist(),
                    "pad": int(padding[r].sum()),
                }
                shown += 1

    return stream, rows()


def rich_text(tokens, loss_mask, name: Callable[[int], str], separator: str):
    """A rich Text: training targets bold green, context tokens dim, special tokens magenta."""
    from rich.text import Text

    out = Text()
    for i, (token, target) in enumerate(zip(tokens, loss_mask)):
        shown = name(int(token))
        special = separator and (shown.isupper() or not shown.isdigit())
        style = "bold green" if target else ("magenta" if special else "dim")
        if i and separator:
            out.append(separator)
        out.append(shown, style=style)
    return out


def print_samples(samples: Iterable[Sample], console=None) -> None:
    from rich.console import Console

    console = console or Console()
    for sample in samples:
        targets = int(np.count_nonzero(sample.loss_mask))
        console.print(
            f"[bold]{sample.source}[/bold]  {len(sample.tokens)} tokens, {targets} targets", highlight=False
        )
        console.print(rich_text(sample.tokens, sample.loss_mask, sample.name, sample.separator))
        console.print()
    console.print(
        "[bold green]targets[/bold green] carry the loss; [dim]dim[/dim] tokens are context only",
        highlight=False,
    )


def print_rows(stream: PhaseStream, rows: Iterable[dict], console=None) -> None:
    """Rows unit by unit: each unit's source and tokens (targets highlighted), ``│`` between
    units, and the row's padding."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    vocab = stream.vocab
    for row in rows:
        units = row_units(row)
        console.print(
            f"[bold]{row['phase']} row {row['row']}[/bold]  {row['layout']}, "
            f"{len(units)} unit{'s' * (len(units) != 1)}, {row['pad']} padding",
            highlight=False,
        )
        line = Text()
        for i, (source, start, end) in enumerate(units):
            if i:
                line.append(" │ ", style="bold")
            line.append(f"⟨{source}⟩ ", style="bold cyan")
            ids = row["tokens"][start:end]
            if stream.plan.sources[source].procedural:
                name = lambda t: vocab.describe(t).split(":", 1)[1]  # noqa: E731
                line.append_text(rich_text(ids, row["loss_mask"][start:end], name, " "))
            else:
                decode = lambda t: vocab.text_tokenizer.decode([t], specials=True)  # noqa: E731
                line.append_text(rich_text(ids, row["loss_mask"][start:end], decode, ""))
        if row["pad"]:
            line.append(f" ⟨{PAD} ×{row['pad']}⟩", style="dim magenta")
        console.print(line)
        console.print()


def row_units(row: dict) -> list[tuple[str, int, int]]:
    """``(source, start, end)`` of each unit of a row as :func:`open_rows` yields it.

    >>> row_units({"document": [0, 0, 1, 2, 2], "source": ["a", "a", "b", PAD, PAD]})
    [('a', 0, 2), ('b', 2, 3)]
    """
    cuts = [i for i, d in enumerate(row["document"]) if i == 0 or d != row["document"][i - 1]]
    bounds = zip(cuts, cuts[1:] + [len(row["document"])])
    return [(row["source"][a], a, b) for a, b in bounds if row["source"][a] != PAD]
