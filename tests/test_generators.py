"""Procedural generators: validity (independent checkers), determinism, statistics, checker self-tests.

The checkers of ``procdsl.checkers`` share no code with the generators; the self-tests at the
end show that they reject corrupted examples, so the validity tests can fail.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from procdsl.checkers import check_example, check_examples
from procdsl.generators import (
    BLOCK,
    GENERATORS,
    Examples,
    GeneratorSpec,
    generate,
    generate_at,
    generate_lengths,
    render,
    stable_hash,
)
from procdsl.generators.core import Block, block_size
from procdsl.plan.base import Ramp, Range, maximum
from procdsl.plan.sources import (
    SOURCE_KINDS,
    AdditionSource,
    DyckSource,
    EcaSource,
    HaystackSource,
    MultiplicationSource,
    ReversedAdditionSource,
    ShuffleDyckSource,
    SortingSource,
    TaskSource,
    WwSource,
)

CONTEXT = 256
RULES = ("identity", "reverse", "sort", "set", "union", "delete", "stack")

#: The paper's settings (PAPER.md) and variants: small vocabularies, ranges, ramps, caps.
SOURCES = [TaskSource(rule=(r,)) for r in RULES] + [
    TaskSource(rule=("set", "sort")),
    TaskSource(rule=("sort", "reverse", "set"), length=Range(low=1, high=12), vocab=4),
    TaskSource(rule=("stack",), length=Range(low=3, high=30), vocab=3),
    TaskSource(rule=("stack",), length=7, vocab=100),
    TaskSource(rule=("union",), length=Range(low=2, high=11), vocab=5),
    TaskSource(rule=("delete",), length=Ramp(start=1, end=20), vocab=3),
    DyckSource(k=64, length=2048),
    DyckSource(k=3, length=Range(low=2, high=64), p_open=Range(low=0.0, high=1.0)),
    DyckSource(k=2, length=40, p_open=0.9, max_depth=3),
    DyckSource(k=5),
    ShuffleDyckSource(k=64, length=2048),
    ShuffleDyckSource(k=2, length=Range(low=1, high=49), p_open=Ramp(start=0.1, end=0.9), max_depth=2),
    ShuffleDyckSource(k=1, max_depth=1),
    EcaSource(),
    EcaSource(rule=30, width=Range(low=3, high=9), length=Range(low=20, high=100)),
    EcaSource(rule=90, width=5, steps=Ramp(start=1, end=6)),
    WwSource(),
    WwSource(length=Range(low=1, high=6), vocab=3),
    HaystackSource(),
    HaystackSource(pairs=Range(low=1, high=2), vocab=8),
    HaystackSource(pairs=3, vocab=12),
    AdditionSource(),
    ReversedAdditionSource(),
    MultiplicationSource(),
    AdditionSource(digits=Range(low=1, high=32)),
    MultiplicationSource(digits=Ramp(start=1, end=16)),
    SortingSource(),
    SortingSource(length=Range(low=1, high=5), vocab=3),
]


def _id(source) -> str:
    return f"{source.kind}:{source.model_dump(exclude_defaults=True)}"


def _progress(i: np.ndarray) -> np.ndarray:
    return (i % 1000) / 999


def _examples(source, count, *, seed=0, name="t", start=0, context=CONTEXT, progress=_progress):
    return generate(
        source, seed=seed, name=name, start=start, count=count, context=context, progress=progress
    )


def _fixed(source) -> bool:
    return not any(isinstance(v, (Range, Ramp)) for v in dict(source).values())


def _count(source, context=CONTEXT, tokens=250_000) -> int:
    """Enough examples for ``tokens`` tokens, at least a few hundred, at most 3000."""
    one = _examples(source, 8, context=context)
    return int(np.clip(tokens * len(one) // max(1, one.offsets[-1]), 40, 3000))


# -- validity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_examples_pass_the_independent_checker(source):
    examples = _examples(source, _count(source), start=BLOCK - 100)  # crosses a block boundary
    assert check_examples(source, examples, CONTEXT) == []


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_examples_structure(source):
    ex = _examples(source, 300, start=7)
    assert ex.tokens.dtype == np.int32 and ex.loss_mask.dtype == bool and ex.offsets.dtype == np.int64
    assert ex.offsets.shape == (301,) and ex.offsets[0] == 0 and ex.offsets[-1] == len(ex.tokens)
    assert len(ex.loss_mask) == len(ex.tokens) and len(ex) == 300
    lengths = np.diff(ex.offsets)
    assert (lengths > 0).all()
    assert not ex.loss_mask[ex.offsets[:-1]].any(), "the first token of an example is never a target"
    assert ex.loss_mask.any()
    assert 0 <= ex.tokens.min() and ex.tokens.max() < source.vocab_size()
    if _fixed(source):  # then min_tokens (what a context must hold) bounds every example
        assert lengths.min() >= source.min_tokens(CONTEXT)
    assert lengths.max() <= source.max_tokens(CONTEXT)


def test_paper_layout_lengths():
    for rule, tokens in [("sort", 129), ("set", 129), ("union", 130), ("delete", 131), ("stack", 128)]:
        assert set(np.diff(_examples(TaskSource(rule=(rule,)), 50).offsets)) == {tokens}
    assert set(np.diff(_examples(DyckSource(), 5, context=512).offsets)) == {512}
    assert set(np.diff(_examples(ShuffleDyckSource(), 5, context=300).offsets)) == {300}
    assert set(np.diff(_examples(EcaSource(width=64), 5, context=2048).offsets)) == {31 * 65}


def test_empty_request_and_non_procedural_source():
    ex = _examples(DyckSource(k=2, length=4), 0, start=5)
    assert len(ex) == 0 and len(ex.tokens) == 0 and ex.offsets.tolist() == [0]
    with pytest.raises(ValueError, match="not a procedural source"):
        generate(SOURCE_KINDS["text"](path="x"), seed=0, name="t", start=0, count=1, context=8)


def test_every_procedural_kind_has_a_generator():
    procedural = {kind for kind, model in SOURCE_KINDS.items() if model.procedural}
    assert procedural == set(GENERATORS)


# -- property tests over parameters ---------------------------------------------------------------


def _tunable(draw, lo, hi, *, even=False, real=False):
    """A fixed number, a Range or a Ramp with ends in [lo, hi]."""

    def one():
        if real:
            return draw(st.floats(lo, hi))
        value = draw(st.integers(lo, hi))
        return value - value % 2 if even else value

    form = draw(st.sampled_from(["fixed", "range", "ramp"]))
    a, b = sorted((one(), one()))
    if form == "fixed":
        return a
    return (
        Range(low=a, high=b)
        if form == "range"
        else Ramp(start=b, end=a)
        if draw(st.booleans())
        else Ramp(start=a, end=b)
    )


@st.composite
def sources(draw):
    kind = draw(st.sampled_from(sorted(GENERATORS)))
    if kind == "task":
        rule = draw(
            st.one_of(
                st.lists(st.sampled_from(RULES[:4]), min_size=1, max_size=3).map(tuple),
                st.sampled_from([("union",), ("delete",), ("stack",)]),
            )
        )
        low = {"stack": 3, "union": 2}.get(rule[0], 1)
        return TaskSource(rule=rule, length=_tunable(draw, low, 40), vocab=draw(st.integers(3, 30)))
    if kind == "dyck":
        return DyckSource(
            k=draw(st.integers(1, 5)),
            length=_tunable(draw, 2, 60, even=True),
            p_open=_tunable(draw, 0.0, 1.0, real=True),
            max_depth=draw(st.one_of(st.none(), st.integers(1, 6))),
        )
    if kind == "shuffle_dyck":
        return ShuffleDyckSource(
            k=draw(st.integers(1, 5)),
            length=_tunable(draw, 1, 60),
            p_open=_tunable(draw, 0.0, 1.0, real=True),
            max_depth=draw(st.integers(1, 6)),
        )
    if kind == "eca":
        width = _tunable(draw, 3, 12)
        if draw(st.booleans()):
            return EcaSource(rule=draw(st.integers(0, 255)), width=width, steps=_tunable(draw, 1, 6))
        return EcaSource(
            rule=draw(st.integers(0, 255)), width=width, length=_tunable(draw, 2 * (maximum(width) + 1), 120)
        )
    if kind == "ww":
        return WwSource(length=_tunable(draw, 1, 30), vocab=draw(st.integers(3, 10)))
    if kind == "haystack":
        vocab = draw(st.integers(4, 40))
        return HaystackSource(pairs=_tunable(draw, 1, (vocab - vocab // 2) // 2), vocab=vocab)
    if kind == "sorting":
        return SortingSource(length=_tunable(draw, 1, 30), vocab=draw(st.integers(3, 30)))
    return SOURCE_KINDS[kind](digits=_tunable(draw, 1, 16 if kind == "multiplication" else 32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=sources(),
    seed=st.integers(0, 2**32),
    start=st.integers(0, 3 * BLOCK),
    count=st.integers(1, 40),
    context=st.integers(120, 300),
)
def test_any_parameters_give_valid_examples(source, seed, start, count, context):
    ex = generate(
        source,
        seed=seed,
        name="prop",
        start=start,
        count=count,
        context=context,
        progress=lambda i: (i % 37) / 36,
    )
    assert len(ex) == count
    assert check_examples(source, ex, context) == []


# -- determinism ----------------------------------------------------------------------------------

DETERMINISM = [
    TaskSource(rule=("stack",), length=Range(low=3, high=20)),
    TaskSource(rule=("set", "sort"), length=Ramp(start=2, end=30), vocab=10),
    DyckSource(k=4, length=Range(low=2, high=40)),
    ShuffleDyckSource(k=3, length=30, p_open=Ramp(start=0.2, end=0.8)),
    EcaSource(width=Range(low=3, high=8), steps=3),
    WwSource(length=Range(low=1, high=9)),
    HaystackSource(pairs=Range(low=1, high=9), vocab=40),
    MultiplicationSource(digits=Range(low=1, high=6)),
    SortingSource(),
]


def _same(a: Examples, b: Examples) -> bool:
    return (
        np.array_equal(a.tokens, b.tokens)
        and np.array_equal(a.loss_mask, b.loss_mask)
        and np.array_equal(a.offsets, b.offsets)
    )


@pytest.mark.parametrize("source", DETERMINISM, ids=_id)
def test_any_chunking_gives_the_same_examples(source):
    whole = _examples(source, 1400, start=300)
    for cuts in ([300, 301, 811, 812, 1024, 1700], [300, 700, 1536, 1537, 1700], [300, 1700]):
        parts = [_examples(source, b - a, start=a) for a, b in zip(cuts, cuts[1:])]
        assert _same(Examples.concat(parts), whole)
    for i in (300, 511, 512, 1699):
        tokens, mask = _examples(source, 1, start=i)[0]
        assert np.array_equal(tokens, whole[i - 300][0]) and np.array_equal(mask, whole[i - 300][1])


#: sources whose examples exceed SHORT_EXAMPLE tokens: blocks of a few examples, drawn example-major
LONG = [
    DyckSource(k=4, length=300),
    DyckSource(k=64, length=Range(low=258, high=2048)),
    ShuffleDyckSource(k=3, length=600, max_depth=8),
    EcaSource(width=40, steps=9),
]


@pytest.mark.parametrize("source", DETERMINISM + LONG, ids=_id)
def test_any_subset_of_indices_gives_the_same_examples(source):
    """What a rank asks for (``generate_at``: a few examples scattered over many blocks) are the
    examples the whole range holds, whichever others are asked with them."""
    context = max(64, source.max_tokens(64))
    whole = generate(source, seed=3, name="at", start=0, count=700, context=context)
    assert check_examples(source, whole, context) == []
    rng = np.random.default_rng(0)
    for size in (1, 5, 80, 700):
        wanted = np.sort(rng.choice(700, size, replace=False))
        some = generate_at(source, seed=3, name="at", indices=wanted, context=context)
        assert len(some) == size
        for j, i in enumerate(wanted):
            assert np.array_equal(some[j][0], whole[i][0]) and np.array_equal(some[j][1], whole[i][1])
    with pytest.raises(ValueError, match="sorted"):
        generate_at(source, seed=3, name="at", indices=np.array([5, 2]), context=context)


def test_long_examples_come_in_small_blocks():
    """Examples over 256 tokens: a block holds at most 8,192 tokens, so the examples of the next
    block do not depend on this one's (a rank pays for what it uses)."""
    assert [block_size(n) for n in (1, 256, 257, 1024, 2048, 8192, 9000)] == [512, 512, 16, 8, 4, 1, 1]
    source = DyckSource(k=4, length=2048)
    a = generate(source, seed=0, name="b", start=0, count=8, context=2048)
    b = generate(source, seed=0, name="b", start=4, count=4, context=2048)
    assert _same(Examples.concat([generate(source, seed=0, name="b", start=0, count=4, context=2048), b]), a)


# -- lengths path --------------------------------------------------------------------------------

#: Kinds whose example length depends on the examples' content, so they have no lengths path.
#: None today, each checked: ``set``/``union``/``delete`` pad their output to ``L`` and ``stack``
#: to ``L - 1`` (2L+1, 2L+2, 2L+3, 2L tokens whatever the symbols), the arithmetic probes pad
#: every example to ``per_digit·D + 4`` whatever the carries, haystack to ``2M + 3``; dyck,
#: shuffle_dyck, ww, sorting and eca are sized by their parameters. The tests below hold the
#: lengths path to the examples themselves, over any parameters.
CONTENT_DEPENDENT: set[str] = set()

PROGRESSES = [
    None,
    lambda i: (i % 37) / 36,
    lambda i: np.clip(i / 1500, 0, 1),
    lambda i: np.full(len(i), 0.5),
]


@st.composite
def long_sources(draw):
    """Sources whose longest example exceeds 256 tokens (blocks of a few examples)."""
    kind = draw(st.sampled_from(["dyck", "shuffle_dyck", "ww", "sorting", "task", "eca"]))
    if kind == "dyck":
        return DyckSource(
            k=draw(st.integers(1, 64)),
            length=_tunable(draw, 258, 700, even=True),
            max_depth=draw(st.one_of(st.none(), st.integers(1, 40))),
        )
    if kind == "shuffle_dyck":
        return ShuffleDyckSource(k=draw(st.integers(1, 8)), length=_tunable(draw, 257, 700))
    if kind == "ww":
        return WwSource(length=_tunable(draw, 129, 350), vocab=draw(st.integers(3, 50)))
    if kind == "sorting":
        return SortingSource(length=_tunable(draw, 128, 350), vocab=draw(st.integers(3, 50)))
    if kind == "task":
        rule = draw(st.sampled_from([("set", "sort"), ("reverse",), ("union",), ("delete",), ("stack",)]))
        return TaskSource(rule=rule, length=_tunable(draw, 129, 300), vocab=draw(st.integers(3, 50)))
    width = _tunable(draw, 3, 30)
    return EcaSource(width=width, length=_tunable(draw, 300, 700))  # whole rows: over 256 tokens


def _lengths_match(source, seed, start, count, progress, context):
    context = max(context, source.max_tokens(context))
    lengths = generate_lengths(
        source, seed=seed, name="len", start=start, count=count, context=context, progress=progress
    )
    ex = generate(source, seed=seed, name="len", start=start, count=count, context=context, progress=progress)
    assert lengths is not None and lengths.dtype == np.int64
    assert lengths.tolist() == np.diff(ex.offsets).tolist()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=sources(),
    seed=st.integers(0, 2**32),
    start=st.integers(0, 3 * BLOCK),
    count=st.integers(0, 700),
    progress=st.sampled_from(PROGRESSES),
    context=st.integers(120, 300),
)
def test_lengths_path_gives_the_lengths_of_the_examples(source, seed, start, count, progress, context):
    _lengths_match(source, seed, start, count, progress, context)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=long_sources(),
    seed=st.integers(0, 2**32),
    start=st.integers(0, 200),
    count=st.integers(0, 60),
    progress=st.sampled_from(PROGRESSES),
)
def test_lengths_path_of_long_examples_crosses_small_blocks(source, seed, start, count, progress):
    assert block_size(source.max_tokens(CONTEXT)) < BLOCK
    _lengths_match(source, seed, start, count, progress, CONTEXT)


@pytest.mark.parametrize("source", SOURCES + DETERMINISM + LONG, ids=_id)
def test_lengths_path_of_every_listed_source(source):
    for start, count in ((0, 1), (BLOCK - 30, 60), (3 * BLOCK + 5, 0)):
        _lengths_match(source, 7, start, count, _progress, CONTEXT)


def test_only_content_dependent_kinds_lack_a_lengths_path():
    assert {kind for kind, spec in GENERATORS.items() if spec.lengths is None} == CONTENT_DEPENDENT
    for source in SOURCES + DETERMINISM + LONG:
        context = max(CONTEXT, source.max_tokens(CONTEXT))
        assert generate_lengths(source, seed=0, name="t", start=0, count=3, context=context) is not None
    without = GeneratorSpec(
        "dyck", GENERATORS["dyck"].make_block, GENERATORS["dyck"].check, GENERATORS["dyck"].token_names
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "dyck", without)
        assert (
            generate_lengths(
                DyckSource(k=2, length=Range(low=2, high=8)), seed=0, name="t", start=0, count=3, context=8
            )
            is None
        )


def test_lengths_path_draws_only_the_parameters(monkeypatch):
    """Cheap: no family's per-position or per-symbol randomness is drawn for lengths."""

    def refuse(*args, **kwargs):
        raise AssertionError("the lengths path drew an example's content")

    for method in ("integers", "random", "random_chunks", "_example_major"):
        monkeypatch.setattr(Block, method, refuse)
    for source in SOURCES + DETERMINISM + LONG:
        context = max(CONTEXT, source.max_tokens(CONTEXT))
        lengths = generate_lengths(
            source, seed=0, name="t", start=500, count=40, context=context, progress=_progress
        )
        assert len(lengths) == 40


@pytest.mark.parametrize("source", DETERMINISM, ids=_id)
def test_seed_and_name_change_the_examples(source):
    base = _examples(source, 64)
    assert _same(base, _examples(source, 64))
    assert not np.array_equal(base.tokens, _examples(source, 64, seed=1).tokens)
    assert not np.array_equal(base.tokens, _examples(source, 64, name="u").tokens)


def test_an_example_depends_only_on_its_own_progress():
    source = TaskSource(rule=("sort",), length=Ramp(start=2, end=60), vocab=50)
    i = 700
    calm = lambda idx: idx / 2000  # noqa: E731
    noisy = lambda idx: np.where(idx == i, i / 2000, np.random.default_rng(1).random(len(idx)))  # noqa: E731
    a = _examples(source, 1, start=i, progress=calm)
    b = _examples(source, 1, start=i, progress=noisy)
    assert _same(a, b)


def test_stable_hash_is_fixed():
    assert stable_hash("dyck") == 2712743246387080468  # blake2b, the same in every process


#: sha256 of tokens and masks of examples 0..99 (seed 0, name "golden"). They change only when
#: the data contract changes (a generator's draws or layout, BLOCK, SHORT_EXAMPLE,
#: LONG_BLOCK_TOKENS, numpy's PCG64 stream):
#: every trained run's data would change with them, so update them deliberately.
GOLDEN = {
    "task": (TaskSource(rule=("stack",), vocab=20), "995424797b00f9db"),
    "dyck": (DyckSource(k=8, length=64), "ccad7a5134f56389"),
    "shuffle_dyck": (ShuffleDyckSource(k=8, length=64, max_depth=4), "351164d8bde1213c"),
    "eca": (EcaSource(width=8, steps=4), "332d47cd6ae9d3b0"),
    "haystack": (HaystackSource(pairs=5, vocab=30), "d4bbd9f2dd6c9e64"),
    "multiplication": (MultiplicationSource(), "49d079aec8b8e5b1"),
    # long examples (> 256 tokens): blocks of at most 8,192 tokens, uniforms example-major
    "dyck_long": (DyckSource(k=8, length=300), "490e647548d3647a"),
    "shuffle_dyck_long": (ShuffleDyckSource(k=8, length=400, max_depth=6), "8f79af05e48b77f6"),
}


def _digest(ex: Examples) -> str:
    return hashlib.sha256(ex.tokens.tobytes() + ex.loss_mask.tobytes() + ex.offsets.tobytes()).hexdigest()[
        :16
    ]


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_examples(kind):
    source, digest = GOLDEN[kind]
    context = max(64, source.max_tokens(64))
    assert _digest(generate(source, seed=0, name="golden", start=0, count=100, context=context)) == digest


# -- statistics -----------------------------------------------------------------------------------


def _chi2_ok(counts: np.ndarray) -> bool:
    """Chi-square test of uniform counts, at a level far below 1e-6 (tests must not flake)."""
    counts = np.asarray(counts, float)
    expected = counts.sum() / len(counts)
    stat = ((counts - expected) ** 2 / expected).sum()
    df = len(counts) - 1
    return stat < df + 7 * np.sqrt(2 * df) + 10


def _within(observed: float, p: float, n: int) -> bool:
    return abs(observed - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9


def _depths(tokens: np.ndarray, k: int) -> np.ndarray:
    """Depth before each token of one bracket string."""
    steps = np.where(tokens < k, 1, -1)
    return np.concatenate([[0], np.cumsum(steps)[:-1]])


@pytest.mark.parametrize("p_open", [0.5, 0.3, 0.8])
def test_dyck_opens_with_p_open_where_free(p_open):
    k, length = 8, 512
    ex = _examples(DyckSource(k=k, length=length, p_open=p_open), 120)
    opened, free = 0, 0
    kinds = np.zeros(k, int)
    for j in range(len(ex)):
        tokens = ex[j][0]
        depth = _depths(tokens, k)
        chance = (depth > 0) & (depth < length - np.arange(length) - 1)
        free += chance.sum()
        opened += (tokens[chance] < k).sum()
        kinds += np.bincount(tokens[tokens < k], minlength=k)
    assert _within(opened / free, p_open, free)
    assert _chi2_ok(kinds)


@pytest.mark.parametrize("kind", [DyckSource, ShuffleDyckSource])
def test_a_depth_cap_beyond_the_length_acts_as_no_cap(kind):
    """Issue #10 item 6: ``max_depth=40000`` passed the schema, then overflowed int16."""
    capped = _examples(kind(k=4, length=64, max_depth=40000), 50, context=64)
    free = _examples(kind(k=4, length=64, max_depth=64), 50, context=64)
    assert check_examples(kind(k=4, length=64, max_depth=40000), capped, 64) == []
    assert capped.tokens.tolist() == free.tokens.tolist()


def test_shuffle_dyck_statistics():
    k, cap = 4, 5
    ex = _examples(ShuffleDyckSource(k=k, length=400, p_open=0.4, max_depth=cap), 150)
    opened = free = smaller = pairs = 0
    for j in range(len(ex)):
        tokens = ex[j][0].tolist()
        counts = [0] * k
        for t in tokens:
            depth = sum(counts)
            if 0 < depth < cap:
                free += 1
                opened += t < k
            open_types = [i for i in range(k) if counts[i]]
            if t >= k and len(open_types) == 2:  # a close chooses among two types
                pairs += 1
                smaller += t - k == open_types[0]
            counts[t % k] += 1 if t < k else -1
    assert _within(opened / free, 0.4, free)
    assert _within(smaller / pairs, 0.5, pairs)


def test_shuffle_dyck_at_paper_settings_usually_ends_open():
    ex = _examples(ShuffleDyckSource(k=64, length=2048, max_depth=16), 200)
    ends_open = [np.where(ex[j][0] < 64, 1, -1).sum() > 0 for j in range(len(ex))]
    assert 0.85 < np.mean(ends_open) < 0.99  # PAPER.md: ~93%


def test_symbols_are_uniform():
    V = 20
    x = _examples(TaskSource(rule=("identity",), length=30, vocab=V), 2000)
    inputs = x.tokens.reshape(-1, 61)[:, :30]
    assert inputs.min() == 1 and inputs.max() == V - 1 and _chi2_ok(np.bincount(inputs.ravel())[1:])
    pushes = _examples(TaskSource(rule=("stack",), length=30, vocab=V), 2000).tokens.reshape(-1, 60)[:, :30]
    assert _chi2_ok(np.bincount(pushes[pushes > 0].ravel())[1:])
    eca = _examples(EcaSource(width=16, steps=1), 2000).tokens.reshape(-1, 34)[:, :16]
    assert _within(eca.mean(), 0.5, eca.size)
    hay = _examples(HaystackSource(pairs=6, vocab=40), 3000).tokens.reshape(-1, 15)
    assert _chi2_ok(np.bincount(hay[:, 0:12:2].ravel() - 20, minlength=6))  # keys 20-25
    assert _chi2_ok(np.bincount(hay[:, 1:12:2].ravel(), minlength=20)[1:])  # values 1-19
    asked = np.argmax(hay[:, 0:12:2] + 6 == hay[:, 12:13], axis=1)  # which pair is queried
    assert _chi2_ok(np.bincount(asked, minlength=6))
    sums = _examples(AdditionSource(digits=4), 3000)
    a = np.stack([sums[j][0][:4] for j in range(len(sums))])  # a, MSD first
    assert a[:, 0].min() == 1 and _chi2_ok(np.bincount(a[:, 0], minlength=10)[1:])
    assert _chi2_ok(np.bincount(a[:, 1:].ravel(), minlength=10))


def test_stack_favours_pushes_then_pops():
    L = 60
    ops = _examples(TaskSource(rule=("stack",), length=L, vocab=100), 1500).tokens.reshape(-1, 2 * L)[:, :L]
    size = np.concatenate(
        [np.zeros((len(ops), 1), int), np.cumsum(np.where(ops > 0, 1, -1), axis=1)[:, :-1]], axis=1
    )
    t = np.arange(L)[None, :]
    free = (size >= 2) & (t < L - 1)  # below two the op is a push; the last op pops
    early, late = free & (t < 2 * L // 3), free & (t >= 2 * L // 3)
    assert _within((ops[early] > 0).mean(), 0.75, early.sum())
    assert _within((ops[late] > 0).mean(), 0.25, late.sum())
    assert (ops[size <= 1] > 0).all() and (ops[:, -1][size[:, -1] > 1] == 0).all()


def test_delete_target_is_absent_about_half_the_time():
    ex = _examples(TaskSource(rule=("delete",)), 4000)
    rows = ex.tokens.reshape(-1, 131)
    absent = (rows[:, :64] != rows[:, 65:66]).all(axis=1)
    assert _within(absent.mean(), (98 / 99) ** 64, len(rows))


def test_ranges_cover_both_ends_uniformly():
    lengths = np.diff(_examples(TaskSource(rule=("sort",), length=Range(low=3, high=9)), 3000).offsets)
    L = (lengths - 1) // 2
    assert set(L) == set(range(3, 10)) and _chi2_ok(np.bincount(L)[3:])
    dyck = np.diff(_examples(DyckSource(k=2, length=Range(low=2, high=10)), 2000).offsets)
    assert set(dyck) == {2, 4, 6, 8, 10} and _chi2_ok(np.bincount(dyck)[2::2])
    for p_open in (0.0, 1.0):  # the extreme p_open values still give valid strings
        source = DyckSource(k=2, length=20, p_open=p_open)
        assert check_examples(source, _examples(source, 50), CONTEXT) == []
    sums = _examples(AdditionSource(digits=Range(low=1, high=4)), 2000)
    a = [list(sums[j][0]).index(10) for j in range(len(sums))]  # digits of a
    b = [list(sums[j][0]).index(11) - a[j] - 1 for j in range(len(sums))]  # digits of b
    assert set(a) == set(b) == {1, 2, 3, 4} and _chi2_ok(np.bincount(a)[1:])
    assert 0.2 < np.mean(np.array(a) == np.array(b)) < 0.3  # drawn independently


def test_ramps_follow_progress():
    n = 1200
    source = TaskSource(rule=("reverse",), length=Ramp(start=4, end=40))
    ex = generate(source, seed=0, name="r", start=0, count=n, context=CONTEXT, progress=lambda i: i / (n - 1))
    L = (np.diff(ex.offsets) - 1) // 2
    assert L[0] == 4 and L[-1] == 40 and (np.diff(L) >= 0).all()
    assert set(L) == set(range(4, 41))
    still = generate(source, seed=0, name="r", start=0, count=10, context=CONTEXT)  # no progress: start
    assert set((np.diff(still.offsets) - 1) // 2) == {4}


def test_dyck_length_defaults_to_the_context():
    for context in (2, 64, 130):
        assert set(np.diff(_examples(DyckSource(k=3), 20, context=context).offsets)) == {context}


# -- checker self-tests: a checker that cannot fail is worthless ----------------------------------


def _swap(source, tokens: np.ndarray, mask: np.ndarray, rng) -> np.ndarray | None:
    """A swap of two different tokens that makes the example invalid by construction."""
    tokens = tokens.copy()
    targets = np.flatnonzero(mask)
    if source.kind in ("dyck", "shuffle_dyck"):  # a close moved to the front closes nothing
        closes = np.flatnonzero(tokens >= source.k)
        if not len(closes):
            return None
        p, q = 0, closes[rng.integers(len(closes))]
    elif source.kind == "haystack":  # the answer (a value) becomes the query
        q = int(np.flatnonzero(mask)[0])
        p = q - 1
    else:
        # Targets are a function of the input: swapping two different targets, or a target with
        # the PAD/EOS after them, leaves the input alone and breaks the answer.
        if not len(targets):
            return None
        q = targets[rng.integers(len(targets))]
        after = np.arange(targets[-1] + 1, len(tokens))
        others = [p for p in np.concatenate([targets, after]) if tokens[p] != tokens[q]]
        if not others:
            return None
        p = others[rng.integers(len(others))]
    tokens[p], tokens[q] = tokens[q], tokens[p]
    return tokens


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_checker_rejects_corrupted_examples(source):
    rng = np.random.default_rng(0)
    ex = _examples(source, 60)
    swapped = 0
    for j in range(len(ex)):
        tokens, mask = ex[j]
        bad = _swap(source, tokens, mask, rng)
        if bad is not None:
            swapped += 1
            assert check_example(source, bad, mask, CONTEXT), f"swap not caught: {render(source, bad, mask)}"
        flipped = mask.copy()
        flipped[rng.integers(len(mask))] ^= True
        assert check_example(source, tokens, flipped, CONTEXT), "mask flip not caught"
        if _fixed(source):  # the example's size is pinned: a truncated one is invalid
            assert check_example(source, tokens[:-1], mask[:-1], CONTEXT), "truncation not caught"
    assert swapped >= 20


def test_checker_catches_out_of_vocabulary_and_misaligned_batches():
    source = WwSource(length=3, vocab=5)
    assert check_example(source, [1, 2, 7, 1, 2, 7], [False] * 3 + [True] * 3, CONTEXT)
    ex = _examples(source, 3)
    broken = Examples(ex.tokens, ex.loss_mask, ex.offsets + 1)
    assert check_examples(source, broken, CONTEXT) == ["offsets, tokens and loss mask do not line up"]
    wrong_dtype = Examples(ex.tokens.astype(np.int64), ex.loss_mask, ex.offsets)
    assert "dtypes" in check_examples(source, wrong_dtype, CONTEXT)[0]


def test_naive_reference_makes_the_same_formats():
    """The bench compares like with like: the naive generators pass procdsl's checkers."""
    from procdsl.bench import CASES
    from procdsl.naive_generators import naive_generate

    for _, source in CASES:
        for tokens, mask in naive_generate(source, seed=0, start=0, count=3, context=2048):
            assert check_example(source, tokens, mask, 2048) == []


def test_render_names_special_tokens():
    source = DyckSource(k=4, length=4)
    assert render(source, np.array([0, 3, 7, 4]), np.array([False, True, True, True])) == "(0 [(3] [)3] [)0]"
    names = GENERATORS["task"].token_names(TaskSource(rule=("stack",), vocab=10))
    assert [names(t) for t in (0, 5, 10, 11)] == ["POP", "5", "SEP", "PAD"]


def test_schema_rejects_layouts_that_cannot_exist():
    with pytest.raises(ValidationError, match="stack needs length >= 3"):
        TaskSource(rule=("stack",), length=Range(low=2, high=9))
    with pytest.raises(ValidationError, match="room for 5 pairs"):
        HaystackSource(pairs=6, vocab=20)
    with pytest.raises(ValidationError, match="not both"):
        EcaSource(steps=3, length=100)


def test_generators_never_import_torch():
    code = "import sys, procdsl.generators, procdsl.checkers, procdsl.bench; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
