"""The parameter schema of every built-in source: one registry, used by the compiler and the runtime.

Each source kind is a frozen pydantic model whose fields are the keyword parameters of its call in
a ``.curr`` file, with the paper's defaults (PAPER.md) and bounds. The compiler validates a call by
building the model (``SOURCE_KINDS[kind].model_validate(params)``) and maps each pydantic error
back to the argument's span; the plan stores the validated model; generators and data readers
consume it.

Procedural rules are all written ``task(RULE, …)``; the short form ``sort(length=8)`` means
``task(sort, length=8)`` and compiles to the same plan entry:

>>> TaskSource(rule=("set", "sort"), length=8).model_dump()
{'kind': 'task', 'rule': ('set', 'sort'), 'length': 8, 'vocab': 100}
>>> TaskSource(rule=("sort",)).vocab_size()
102
>>> DyckSource(k=4).vocab_size(), DyckSource(k=4).min_tokens(context=16)
(9, 16)

``length`` of ``dyck``, ``shuffle_dyck`` and ``eca`` is ``None`` by default, meaning "the
context of the phase that uses the source" — a source may serve phases of different contexts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Optional, Union, get_args

from pydantic import Field, model_validator

from procdsl.plan.base import Bounds, Frozen, Range, TunableFloat, TunableInt, maximum, minimum

#: Unary rules map a sequence x to a sequence y and can be chained with ``>>``.
UNARY_RULES = ("identity", "reverse", "sort", "set")
#: Binary rules take two inputs; ``stack`` takes an operation sequence. Neither composes.
OTHER_RULES = {
    "union": "binary (it reads two sequences a and b)",
    "delete": "binary (it reads a sequence x and a symbol t)",
    "stack": "an operation sequence (pushes and pops), not a sequence to transform",
}
RULES = UNARY_RULES + tuple(OTHER_RULES)

LossMode = Literal["full", "output_only", "answer_only"]


class SourceBase(Frozen):
    """Common interface of every source model."""

    if TYPE_CHECKING:
        # every concrete source declares ``kind`` as a Literal field, first; declared here only for
        # the type checker, as a pydantic field it would change the models' schema
        kind: str

    #: names of the parameters that may be given positionally, in order
    positional: ClassVar[tuple[str, ...]] = ()
    #: the loss a phase applies to this source unless it sets ``loss`` itself
    default_loss: ClassVar[LossMode] = "full"
    #: procedural sources carry their own token ids; data sources go through the tokenizer
    procedural: ClassVar[bool] = False

    def vocab_size(self) -> Optional[int]:
        """Size of the source's own token vocabulary (procedural), or None (uses the tokenizer)."""
        return None

    def min_tokens(self, context: int) -> int:
        """Fewest tokens one example can take (``context``: the phase's, for length defaults)."""
        return self._tokens(minimum, context)

    def max_tokens(self, context: int) -> int:
        """Most tokens one example can take; a phase's context must hold it (check E308)."""
        return self._tokens(maximum, context)

    def _tokens(self, pick, context: int) -> int:
        """Example size with every tunable parameter at ``pick`` (``minimum`` or ``maximum``)."""
        return 1


# --------------------------------------------------------------------------------------------
# Procedural sources
# --------------------------------------------------------------------------------------------


class TaskSource(SourceBase):
    """``task(RULE, length=, vocab=)``: an algorithmic rule on random symbols ``1 … vocab-1``.

    ``rule`` is a chain of unary rules applied left to right, or one non-unary rule.
    Layouts (PAPER.md): ``x SEP y``; union ``a SEP b SEP y``; delete ``x SEP t SEP y``;
    stack ``ops SEP y`` padded to ``2·length``. ``SEP = vocab``, ``PAD = vocab + 1``.
    """

    kind: Literal["task"] = "task"
    rule: tuple[str, ...]
    length: Annotated[TunableInt, Bounds(ge=1)] = 64
    vocab: Annotated[int, Bounds(ge=3)] = 100

    positional: ClassVar[tuple[str, ...]] = ("rule",)
    default_loss: ClassVar[LossMode] = "output_only"
    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return self.vocab + 2

    def _tokens(self, pick, context: int) -> int:
        return example_tokens(self.rule, int(pick(self.length)))

    @model_validator(mode="after")
    def _layout_fits(self):
        need = {"stack": 3, "union": 2}.get(self.rule[0] if self.rule else "", 1)
        if minimum(self.length) < need:
            raise ValueError(f"{self.rule[0]} needs length >= {need}, got {minimum(self.length)}")
        return self


def example_tokens(rule: tuple[str, ...], length: int) -> int:
    """Tokens in one example of ``rule`` at input length ``length`` (layouts of PAPER.md).

    >>> example_tokens(("sort",), 64), example_tokens(("union",), 64), example_tokens(("stack",), 64)
    (129, 130, 128)
    >>> example_tokens(("delete",), 64)
    131
    """
    head = rule[0]
    if head == "union":
        return 2 * length + 2  # a SEP b SEP y, |a| + |b| = L, y padded to L
    if head == "delete":
        return length + 3 + length  # x SEP t SEP y, y padded to L
    if head == "stack":
        return 2 * length  # ops SEP y, padded to 2L
    return 2 * length + 1  # x SEP y


class DyckSource(SourceBase):
    """``dyck(k=, length=, p_open=, max_depth=)``: complete balanced k-Dyck strings.

    Tokens ``0 … k-1`` open, ``i + k`` closes ``i``, ``PAD = 2k``. ``length`` (even) defaults to
    the phase's context; ``max_depth`` (optional) caps the nesting depth.
    """

    kind: Literal["dyck"] = "dyck"
    k: Annotated[int, Bounds(ge=1)] = 64
    length: Optional[Annotated[TunableInt, Bounds(ge=2, even=True)]] = None
    p_open: Annotated[TunableFloat, Bounds(ge=0.0, le=1.0)] = 0.5
    max_depth: Optional[Annotated[int, Bounds(ge=1)]] = None

    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return 2 * self.k + 1

    def _tokens(self, pick, context: int) -> int:
        return int(pick(self.length)) if self.length is not None else context


class ShuffleDyckSource(SourceBase):
    """``shuffle_dyck(k=, length=, p_open=, max_depth=)``: the shuffle of k Dyck-1 languages.

    Same token ids as ``dyck``; strings are cut at ``length`` and usually end with open brackets.
    """

    kind: Literal["shuffle_dyck"] = "shuffle_dyck"
    k: Annotated[int, Bounds(ge=1)] = 64
    length: Optional[Annotated[TunableInt, Bounds(ge=1)]] = None
    p_open: Annotated[TunableFloat, Bounds(ge=0.0, le=1.0)] = 0.5
    max_depth: Annotated[int, Bounds(ge=1)] = 16

    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return 2 * self.k + 1

    def _tokens(self, pick, context: int) -> int:
        return int(pick(self.length)) if self.length is not None else context


class EcaSource(SourceBase):
    """``eca(rule=, width=, steps=, length=)``: rows of an elementary cellular automaton.

    A random binary row of ``width`` cells (periodic boundary) then ``steps`` successive rows,
    each row followed by ``SEP``. Tokens ``0``/``1``, ``SEP = 2``, ``PAD = 3``. Without
    ``steps``, as many rows as fit in ``length`` (default: the phase's context); giving both is
    an error. Loss on every row after the random first one (``output_only``).
    """

    kind: Literal["eca"] = "eca"
    rule: Annotated[int, Bounds(ge=0, le=255)] = 110
    width: Annotated[TunableInt, Bounds(ge=3)] = 64
    steps: Optional[Annotated[TunableInt, Bounds(ge=1)]] = None
    length: Optional[Annotated[TunableInt, Bounds(ge=1)]] = None

    default_loss: ClassVar[LossMode] = "output_only"
    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return 4

    def _tokens(self, pick, context: int) -> int:
        row = int(pick(self.width)) + 1
        if self.steps is not None:
            return (1 + int(pick(self.steps))) * row
        length = int(pick(self.length)) if self.length is not None else context
        return max(2, length // row) * row  # as many whole rows as fit, at least two

    @model_validator(mode="after")
    def _steps_or_length(self):
        if self.steps is not None and self.length is not None:
            raise ValueError("give steps (rows after the first) or length (tokens), not both")
        return self


class WwSource(SourceBase):
    """``ww(length=, vocab=)``: a random string w of ``length`` symbols, written twice: ``w w``.

    Symbols ``1 … vocab-1``; loss on the second copy.
    """

    kind: Literal["ww"] = "ww"
    length: Annotated[TunableInt, Bounds(ge=1)] = 64
    vocab: Annotated[int, Bounds(ge=3)] = 100

    default_loss: ClassVar[LossMode] = "output_only"
    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return self.vocab + 2

    def _tokens(self, pick, context: int) -> int:
        return 2 * int(pick(self.length))


class HaystackSource(SourceBase):
    """``haystack(pairs=1..30, vocab=256)``: the value paired with a query key in a key–value list.

    The paper's ``condattendstream_30`` (``pairs=1..30``; see ``procdsl.generators.probes``).
    With ``M`` = the largest ``pairs`` and ``H = vocab // 2``: ``PAD = 0``, values ``1 … H-1``,
    keys ``H … H+M-1``, queries ``H+M … H+2M-1``; every example is padded to ``2M + 3`` tokens.
    """

    kind: Literal["haystack"] = "haystack"
    pairs: Annotated[TunableInt, Bounds(ge=1)] = Range(low=1, high=30)
    vocab: Annotated[int, Bounds(ge=4)] = 256

    default_loss: ClassVar[LossMode] = "answer_only"
    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return self.vocab

    def _tokens(self, pick, context: int) -> int:
        return 2 * int(maximum(self.pairs)) + 3  # every example padded to the longest

    @model_validator(mode="after")
    def _ids_suffice(self):
        most = int(maximum(self.pairs))
        if self.vocab // 2 + 2 * most > self.vocab:
            raise ValueError(
                f"{most} pairs need {most} key and {most} query ids above the values: "
                f"vocab {self.vocab} has room for {(self.vocab - self.vocab // 2) // 2} pairs"
            )
        return self


class _ArithmeticSource(SourceBase):
    """Digit-level arithmetic as the paper's task files write it (``procdsl.generators.probes``):
    operand digits ``0-9``, OP 10, ``=`` 11, PAD 12, answer digits ``20-29``, STOP 30 (vocabulary 31);
    every example padded to ``3·D + 4`` tokens (multiplication ``5·D + 4``), ``D`` the largest
    ``digits``."""

    digits: Annotated[TunableInt, Bounds(ge=1, le=32)] = 5

    default_loss: ClassVar[LossMode] = "answer_only"
    procedural: ClassVar[bool] = True
    #: sequence length per digit of the largest operand, and the constant (the task files' ``max_lenl``)
    per_digit: ClassVar[int] = 3

    def vocab_size(self) -> int:
        return 31

    def _tokens(self, pick, context: int) -> int:
        return self.per_digit * int(maximum(self.digits)) + 4


class AdditionSource(_ArithmeticSource):
    """``addition(digits=5)``: ``a + b = c``, most-significant digit first (``forwardaddition_5``)."""

    kind: Literal["addition"] = "addition"


class ReversedAdditionSource(_ArithmeticSource):
    """``reversed_addition(digits=10)``: every number least-significant digit first (``additionstream_10``)."""

    kind: Literal["reversed_addition"] = "reversed_addition"
    digits: Annotated[TunableInt, Bounds(ge=1, le=32)] = 10


class MultiplicationSource(_ArithmeticSource):
    """``multiplication(digits=5)``: ``a * b = c`` (``multiplication_5``)."""

    kind: Literal["multiplication"] = "multiplication"
    digits: Annotated[TunableInt, Bounds(ge=1, le=16)] = 5
    per_digit: ClassVar[int] = 5


class SortingSource(SourceBase):
    """``sorting(length=, vocab=)``: the diagnostic sorting probe, answer-only loss."""

    kind: Literal["sorting"] = "sorting"
    length: Annotated[TunableInt, Bounds(ge=1)] = 10
    vocab: Annotated[int, Bounds(ge=3)] = 100

    default_loss: ClassVar[LossMode] = "answer_only"
    procedural: ClassVar[bool] = True

    def vocab_size(self) -> int:
        return self.vocab + 2

    def _tokens(self, pick, context: int) -> int:
        return 2 * int(pick(self.length)) + 1


# --------------------------------------------------------------------------------------------
# Data sources
# --------------------------------------------------------------------------------------------


class DataSourceBase(SourceBase):
    """Common parameters of the data sources (they go through the tokenizer).

    ``heldout`` is the fraction of documents set aside for evaluation: a document belongs to the
    held-out split when a stable hash of its identity (its text; for ``dm_math`` the problem's
    numbers) falls below it, so train and held-out are disjoint by construction
    (``procdsl.data.split``). Train and eval blocks reading the same source agree on it.
    """

    heldout: Annotated[float, Bounds(ge=0.0, le=0.5)] = 0.01


class HfSource(DataSourceBase):
    """``hf(dataset, name=, split=, field=, revision=, data_files=)``: a 🤗 datasets dataset, streamed.

    ``dataset`` is a hub name (``"allenai/c4"``), a local directory, or a packaged builder
    (``"json"``, ``"parquet"``, ``"text"``) that reads ``data_files``.
    """

    kind: Literal["hf"] = "hf"
    dataset: str
    name: Optional[str] = None
    split: str = "train"
    field: str = "text"
    revision: Optional[str] = None
    data_files: Optional[tuple[str, ...]] = None

    positional: ClassVar[tuple[str, ...]] = ("dataset",)


class JsonlSource(DataSourceBase):
    """``jsonl(path, field=)``: one JSON object per line; the text is in ``field``."""

    kind: Literal["jsonl"] = "jsonl"
    path: str
    field: str = "text"

    positional: ClassVar[tuple[str, ...]] = ("path",)


class TextSource(DataSourceBase):
    """``text(path_or_glob)``: each matching file is one document."""

    kind: Literal["text"] = "text"
    path: str

    positional: ClassVar[tuple[str, ...]] = ("path",)


class ParquetSource(DataSourceBase):
    """``parquet(path, field=)``: a column of a parquet file (or glob of files)."""

    kind: Literal["parquet"] = "parquet"
    path: str
    field: str = "text"

    positional: ClassVar[tuple[str, ...]] = ("path",)


class PythonCodeSource(DataSourceBase):
    """``python_code()``: the Python standard library's ``.py`` files — a real, offline code corpus."""

    kind: Literal["python_code"] = "python_code"


#: The DeepMind mathematics modules procdsl generates locally (a subset of the original's).
DM_MATH_MODULES = (
    "arithmetic__add_or_sub",
    "arithmetic__mul",
    "arithmetic__div",
    "arithmetic__mixed",
    "numbers__gcd",
    "numbers__lcm",
    "numbers__is_prime",
    "numbers__round_number",
    "algebra__linear_1d",
    "comparison__sort",
    "comparison__closest",
)


class DmMathSource(DataSourceBase):
    """``dm_math(modules=[…])``: DeepMind-mathematics-style question/answer pairs, made locally."""

    kind: Literal["dm_math"] = "dm_math"
    # Literal of a tuple constant: pydantic expands it at runtime, a checker cannot
    modules: tuple[Literal[DM_MATH_MODULES], ...] = DM_MATH_MODULES  # type: ignore[valid-type]

    default_loss: ClassVar[LossMode] = "answer_only"


#: Any source of a plan, told apart by ``kind``.
Source = Annotated[
    Union[
        TaskSource,
        DyckSource,
        ShuffleDyckSource,
        EcaSource,
        WwSource,
        HaystackSource,
        AdditionSource,
        ReversedAdditionSource,
        MultiplicationSource,
        SortingSource,
        HfSource,
        JsonlSource,
        TextSource,
        ParquetSource,
        PythonCodeSource,
        DmMathSource,
    ],
    Field(discriminator="kind"),
]

_MODELS: tuple[type[SourceBase], ...] = get_args(get_args(Source)[0])

#: kind -> model, for every source a ``.curr`` call can build.
SOURCE_KINDS: dict[str, type[SourceBase]] = {model.model_fields["kind"].default: model for model in _MODELS}
