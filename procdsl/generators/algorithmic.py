"""Algorithmic rules (``task(RULE, length=L, vocab=V)``): a random input and the rule's output.

Token ids: symbols ``1 … V-1``, ``SEP = V``, ``PAD = V + 1`` (vocabulary ``V + 2``); ``stack``
writes a pop as ``0``. Input symbols are i.i.d. uniform on ``1 … V-1``. The loss
(``output_only``) is on the output tokens ``y`` that are not ``PAD``; input, ``SEP`` and
``PAD`` are never targets. Layouts (PAPER.md), with ``L`` drawn per example when tunable:

==========================  ==========================  ==============================================
rule                        layout (tokens)             output ``y``
==========================  ==========================  ==============================================
identity/reverse/sort/set   ``x SEP y`` (2L+1)          the unary chain applied to ``x``, padded to L
union                       ``a SEP b SEP y``           dedup of ``a + b`` (``a`` ⌈L/2⌉, ``b`` ⌊L/2⌋ long), to L
delete                      ``x SEP t SEP y`` (2L+3)    ``x`` without the first ``t``, padded to L
stack                       ``ops SEP y PAD…`` (2L)     final stack top→bottom, padded to L-1
==========================  ==========================  ==============================================

A chain of unary rules applies left to right (``("set", "sort")``: deduplicate, then sort).
``set`` keeps first occurrences in order. ``delete``'s ``t`` is drawn independently of ``x``,
so ``y = x`` when ``t`` is absent. ``stack`` ops (L ≥ 3): a push writes the pushed symbol,
drawn uniformly among the symbols not on the stack; with at most one element on the stack the
op is a push; otherwise the favoured op (push in the first ``int(2L/3)`` steps, pop after) has
probability 0.75; the last op pops when the stack holds more than one element; a push with no
free symbol becomes a pop. The final stack is therefore never empty.

Worked example (targets in brackets):

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.sources import TaskSource
>>> src = TaskSource(rule=("set", "sort"), length=6, vocab=5)
>>> ex = generate(src, seed=0, name="demo", start=0, count=2, context=64)
>>> for j in range(2): print(render(src, *ex[j]))
1 1 3 2 1 4 SEP [1] [2] [3] [4] PAD PAD
3 2 4 1 2 3 SEP [1] [2] [3] [4] PAD PAD
>>> src = TaskSource(rule=("stack",), length=6, vocab=5)
>>> print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
4 3 POP 2 POP 1 SEP [1] [4] PAD PAD PAD
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.core import Block, Grid, namer, segments
from procdsl.plan.base import maximum
from procdsl.plan.sources import OTHER_RULES, UNARY_RULES, TaskSource

_ABSENT = np.int64(1 << 30)  # sorts after every symbol


def _columns(width: int) -> np.ndarray:
    return np.arange(width)[None, :]


def _compact(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each row's kept cells to its front, in order; return them and how many there are."""
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), keep.sum(axis=1)


def _first_occurrences(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mask of the valid cells holding a value's first occurrence in their row."""
    width = values.shape[1]
    key = np.where(valid, values, _ABSENT) * width + _columns(width)
    key.sort(axis=1)
    value, column = key // width, key % width
    first = np.empty_like(valid)
    first[:, 0] = True
    first[:, 1:] = value[:, 1:] != value[:, :-1]
    first &= value != _ABSENT
    out = np.zeros_like(valid)
    np.put_along_axis(out, column, first, axis=1)
    return out


def _identity(x, n):
    return x, n


def _reverse(x, n):
    width = x.shape[1]
    return np.take_along_axis(x, np.maximum(n[:, None] - 1 - _columns(width), 0), axis=1), n


def _sort(x, n):
    return np.sort(np.where(_columns(x.shape[1]) < n[:, None], x, _ABSENT), axis=1), n


def _set(x, n):
    return _compact(x, _first_occurrences(x, _columns(x.shape[1]) < n[:, None]))


UNARY = {"identity": _identity, "reverse": _reverse, "sort": _sort, "set": _set}
assert set(UNARY) == set(UNARY_RULES)


def _output(y: np.ndarray, count: np.ndarray, width: np.ndarray, pad: int):
    """The output segment: ``y`` (targets) then PAD up to ``width`` cells per example."""
    j = _columns(y.shape[1])
    return np.where(j < count[:, None], y, pad), j < count[:, None], j < width[:, None]


def unary_grid(rule: tuple[str, ...], length: np.ndarray, max_length: int, vocab: int, b: Block) -> Grid:
    """``x SEP y`` for a chain of unary rules (also the diagnostic ``sorting`` probe)."""
    x = b.integers(1, vocab, max_length).astype(np.int64)
    y, count = x, length
    for name in rule:
        y, count = UNARY[name](y, count)
    j = _columns(max_length)
    return segments(
        b.n, (x, False, j < length[:, None]), (vocab, False, True), _output(y, count, length, vocab + 1)
    )


def _union(length, max_length, vocab, b: Block) -> Grid:
    # a takes the larger half of an odd length: |a| + |b| = L, as y is padded to L
    half_a, half_b = (length + 1) // 2, length // 2
    max_a = (max_length + 1) // 2
    ab = b.integers(1, vocab, max_length).astype(np.int64)
    j = _columns(max_length)
    valid = np.where(j < max_a, j < half_a[:, None], (j - max_a) < half_b[:, None])
    y, count = _compact(ab, _first_occurrences(ab, valid))
    return segments(
        b.n,
        (ab[:, :max_a], False, valid[:, :max_a]),
        (vocab, False, True),
        (ab[:, max_a:], False, valid[:, max_a:]),
        (vocab, False, True),
        _output(y, count, length, vocab + 1),
    )


def _delete(length, max_length, vocab, b: Block) -> Grid:
    x = b.integers(1, vocab, max_length).astype(np.int64)
    t = b.integers(1, vocab).astype(np.int64)
    j = _columns(max_length)
    valid = j < length[:, None]
    match = valid & (x == t[:, None])
    where = np.where(match.any(axis=1), match.argmax(axis=1), max_length)
    y, count = _compact(x, valid & (j != where[:, None]))
    return segments(
        b.n,
        (x, False, valid),
        (vocab, False, True),
        (t, False, True),
        (vocab, False, True),
        _output(y, count, length, vocab + 1),
    )


def _stack(length, max_length, vocab, b: Block) -> Grid:
    n, symbols = b.n, vocab - 1
    u_op, u_symbol = b.random(max_length), b.random(max_length)
    # Per example a flat row perm[base : base + symbols]: the stack bottom→top, then the free
    # symbols. A push swaps a uniformly drawn free symbol to the top (free rows swap in place).
    perm = np.tile(np.arange(1, vocab, dtype=np.int64), n)
    base = np.arange(n, dtype=np.int64) * symbols
    size = np.zeros(n, np.int64)
    t = np.arange(max_length)[None, :]
    active = (t < length[:, None]).T
    favoured = ((u_op < 0.75) == (t < (2 * length[:, None]) // 3)).T  # push w.p. .75, then pop
    not_last = (t != length[:, None] - 1).T
    ops = np.zeros((max_length, n), np.int64)
    for i in range(max_length):
        small = size <= 1
        push = (favoured[i] | small) & (not_last[i] | small) & (size < symbols) & active[i]
        top = base + np.minimum(size, symbols - 1)  # a full stack cannot push: any cell will do
        pick = np.where(push, top + (u_symbol[:, i] * (symbols - size)).astype(np.int64), top)
        pushed = perm.take(pick)
        perm.put(pick, perm.take(top))
        perm.put(top, pushed)
        ops[i] = np.where(push, pushed, 0)
        size += 2 * push - active[i]
    final = base[:, None] + (size[:, None] - 1 - _columns(max_length)) % symbols  # top→bottom
    return segments(
        n,
        (ops.T, False, active.T),
        (vocab, False, True),
        _output(perm.take(final), size, length - 1, vocab + 1),
    )


def check_rule(rule: tuple[str, ...]) -> None:
    """Raise ValueError unless ``rule`` is a chain of unary rules or one non-unary rule."""
    if not rule:
        raise ValueError("a task needs a rule")
    unknown = [r for r in rule if r not in UNARY and r not in OTHER_RULES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}")
    if len(rule) > 1 and any(r in OTHER_RULES for r in rule):
        raise ValueError(f"cannot compose {rule}: only unary rules chain")


#: tokens of an example of input length ``L`` by the rule (the first of a chain): ``a·L + c``
#: (the layouts of the module docstring; every output is padded, so content never changes them)
_LAYOUT = {"union": (2, 2), "delete": (2, 3), "stack": (2, 0)}
_UNARY_LAYOUT = (2, 1)


def _input_lengths(source: TaskSource, b: Block) -> np.ndarray:
    """Per example its input length ``L`` (the block's first draw), once the rule is checked."""
    check_rule(source.rule)
    length = b.param(source.length)
    if source.rule[0] == "stack" and length.size and length.min() < 3:
        raise ValueError("stack needs length >= 3 (its output must fit the 2L layout)")
    return length


def lengths(source: TaskSource, b: Block) -> np.ndarray:
    """Tokens of each example, from its input length alone."""
    per, extra = _LAYOUT.get(source.rule[0], _UNARY_LAYOUT)
    return per * _input_lengths(source, b) + extra


def make_block(source: TaskSource, b: Block) -> Grid:
    length, max_length = _input_lengths(source, b), int(maximum(source.length))
    build = {"union": _union, "delete": _delete, "stack": _stack}.get(source.rule[0])
    if build is None:
        return unary_grid(source.rule, length, max_length, source.vocab, b)
    return build(length, max_length, source.vocab, b)


def token_names(source: TaskSource):
    names = {source.vocab: "SEP", source.vocab + 1: "PAD"}
    if source.rule[0] == "stack":
        names[0] = "POP"
    return namer(names)
