"""The independent checkers on hand-written examples: each clause of each checker can fail."""

from __future__ import annotations

import pytest

from procdsl.checkers import check_example
from procdsl.plan.base import Range
from procdsl.plan.sources import (
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

F, T = False, True


def _problems(source, tokens, mask, context=64):
    return " | ".join(check_example(source, tokens, mask, context))


def _task_mask(n_before, n_targets, n_after):
    return [F] * n_before + [T] * n_targets + [F] * n_after


# Task layouts with vocab 10: SEP = 10, PAD = 11.
@pytest.mark.parametrize(
    "rule, tokens, n_targets, problem",
    [
        (("identity",), [3, 4, 5, 10, 3, 4, 5], 3, ""),
        (("identity",), [3, 4, 5, 10, 3, 5, 4], 3, "output"),
        (("reverse",), [3, 4, 5, 10, 5, 4, 3], 3, ""),
        (("sort",), [5, 3, 4, 10, 3, 4, 5], 3, ""),
        (("sort",), [5, 3, 4, 10, 3, 5, 4], 3, "output"),
        (("sort",), [5, 3, 4, 10, 3, 4, 4], 3, "output"),  # sorted, not a permutation
        (("set",), [4, 2, 4, 10, 4, 2, 11], 2, ""),
        (("set",), [4, 2, 4, 10, 2, 4, 11], 2, "output"),  # not first-occurrence order
        (("set", "sort"), [4, 2, 4, 10, 2, 4, 11], 2, ""),
        (("set",), [4, 2, 4, 10, 4, 2, 4], 3, "output"),  # a duplicate kept
    ],
)
def test_unary_rules(rule, tokens, n_targets, problem):
    source = TaskSource(rule=rule, length=3, vocab=10)
    found = _problems(source, tokens, _task_mask(4, n_targets, 3 - n_targets))
    assert (problem in found) if problem else found == ""


def test_union_and_delete():
    union = TaskSource(rule=("union",), length=4, vocab=10)
    assert _problems(union, [1, 2, 10, 2, 3, 10, 1, 2, 3, 11], _task_mask(6, 3, 1)) == ""
    assert "output" in _problems(union, [1, 2, 10, 2, 3, 10, 2, 1, 3, 11], _task_mask(6, 3, 1))
    assert "union inputs" in _problems(union, [1, 10, 2, 3, 10, 1, 2, 3, 11], _task_mask(5, 3, 1))
    delete = TaskSource(rule=("delete",), length=4, vocab=10)
    assert _problems(delete, [1, 2, 1, 3, 10, 1, 10, 2, 1, 3, 11], _task_mask(7, 3, 1)) == ""
    assert "output" in _problems(
        delete, [1, 2, 1, 3, 10, 1, 10, 1, 2, 3, 11], _task_mask(7, 3, 1)
    )  # second removed
    assert _problems(delete, [1, 2, 1, 3, 10, 5, 10, 1, 2, 1, 3], _task_mask(7, 4, 0)) == ""  # t absent
    assert "output" in _problems(delete, [1, 2, 1, 3, 10, 5, 10, 1, 2, 1, 11], _task_mask(7, 3, 1))


def test_stack_replay():
    stack = TaskSource(rule=("stack",), length=4, vocab=10)
    # ops: push 3, push 5, pop, push 7 -> stack [3, 7], top first: 7 3, padded to L - 1 = 3
    assert _problems(stack, [3, 5, 0, 7, 10, 7, 3, 11], _task_mask(5, 2, 1)) == ""
    assert "output" in _problems(stack, [3, 5, 0, 7, 10, 3, 7, 11], _task_mask(5, 2, 1))  # bottom first
    assert "already on the stack" in _problems(stack, [3, 5, 0, 3, 10, 3, 3, 11], _task_mask(5, 2, 1))
    assert "pop with 1" in _problems(stack, [3, 0, 5, 7, 10, 7, 5, 11], _task_mask(5, 2, 1))
    assert "last op must pop" in _problems(stack, [3, 5, 7, 8, 10, 8, 7, 5], _task_mask(5, 3, 0))
    assert "SEP" in _problems(stack, [3, 5, 0, 7, 11, 7, 3, 11], _task_mask(5, 2, 1))


def test_dyck():
    dyck = DyckSource(k=2, length=Range(low=2, high=8), max_depth=2)
    ok = [F] + [T] * 5
    assert _problems(dyck, [0, 1, 3, 2, 1, 3], ok) == ""
    assert "closes (1" in _problems(dyck, [0, 1, 2, 3, 1, 3], ok)
    assert "exceeds max_depth" in _problems(dyck, [0, 1, 0, 2, 3, 2], ok)
    assert "incomplete" in _problems(dyck, [0, 1, 3, 0, 1, 3], ok)
    assert "closes nothing" in _problems(dyck, [0, 2, 3, 0, 1, 3], ok)
    assert "outside 2..8" in _problems(dyck, [0, 2] * 5, [F] + [T] * 9)
    assert "odd length" in _problems(DyckSource(k=2, length=Range(low=2, high=8)), [0, 2, 0], [F, T, T])
    assert "loss mask" in _problems(dyck, [0, 1, 3, 2, 1, 3], [F] * 6)


def test_shuffle_dyck():
    shuffle = ShuffleDyckSource(k=2, length=6, max_depth=2)
    ok = [F] + [T] * 5
    assert _problems(shuffle, [0, 1, 2, 3, 1, 0], ok) == ""  # interleaved, ends open
    assert "closes no open" in _problems(shuffle, [0, 3, 1, 2, 0, 2], ok)
    assert "exceeds max_depth" in _problems(shuffle, [0, 1, 0, 2, 3, 2], ok)
    assert "outside 6..6" in _problems(shuffle, [0, 2, 0, 2], [F, T, T, T])


def test_eca():
    eca = EcaSource(rule=110, width=3, steps=2)
    # 110 = 0b01101110. Row 0 0 1: neighbourhoods (1,0,0) (0,0,1) (0,1,0) -> bits 4, 1, 2 -> 0 1 1
    # Row 0 1 1: (1,0,1) (0,1,1) (1,1,0) -> bits 5, 3, 6 -> 1 1 1
    good = [0, 0, 1, 2, 0, 1, 1, 2, 1, 1, 1, 2]
    mask = [F] * 4 + [T] * 8
    assert _problems(eca, good, mask) == ""
    bad = good[:]
    bad[9] = 0
    assert "rule 110 gives" in _problems(eca, bad, mask)
    assert "steps 1 outside" in _problems(eca, good[:8], mask[:8])
    assert "ends with SEP" in _problems(eca, good[:-1], mask[:-1])
    assert "loss mask" in _problems(eca, good, [F] * 3 + [T] * 9)


def test_ww_haystack_sorting():
    ww = WwSource(length=3, vocab=5)
    assert _problems(ww, [1, 2, 3, 1, 2, 3], [F] * 3 + [T] * 3) == ""
    assert "differs" in _problems(ww, [1, 2, 3, 1, 3, 2], [F] * 3 + [T] * 3)
    hay = HaystackSource(pairs=2, vocab=8)  # PAD 0, values 1-3, keys 4-5, queries 6-7; 7 tokens
    assert _problems(hay, [5, 1, 4, 3, 6, 3, 0], [F] * 5 + [T, F]) == ""  # key 0 holds 3
    assert "key 0 holds 3" in _problems(hay, [5, 1, 4, 3, 6, 1, 0], [F] * 5 + [T, F])
    assert "keys repeat" in _problems(hay, [5, 1, 5, 3, 7, 1, 0], [F] * 5 + [T, F])
    assert "pairs 1 outside 2..2" in _problems(hay, [4, 2, 6, 2, 0, 0, 0], [F] * 3 + [T, F, F, F])
    hay = HaystackSource(pairs=Range(low=1, high=2), vocab=8)
    assert _problems(hay, [4, 2, 6, 2, 0, 0, 0], [F] * 3 + [T, F, F, F]) == ""  # one pair
    assert "not all PAD" in _problems(hay, [4, 2, 6, 2, 0, 1, 0], [F] * 3 + [T, F, F, F])
    assert "expected 2·2 + 3" in _problems(hay, [4, 2, 6, 2], [F] * 3 + [T])
    assert "loss mask" in _problems(hay, [5, 1, 4, 3, 6, 3, 0], [F] * 5 + [T, T])
    sorting = SortingSource(length=3, vocab=10)
    assert _problems(sorting, [3, 1, 2, 10, 1, 2, 3], [F] * 4 + [T] * 3) == ""
    assert "not sorted" in _problems(sorting, [3, 1, 2, 10, 2, 1, 3], [F] * 4 + [T] * 3)
    assert "permutation" in _problems(sorting, [3, 1, 2, 10, 1, 2, 2], [F] * 4 + [T] * 3)


def test_arithmetic():
    # + 10, "=" 11, PAD 12, answer digits 20-29, STOP 30; 3·2 + 4 = 10 tokens. Targets: the
    # tokens after an answer digit or STOP (the task files' scoring), not the first answer digit.
    add = AdditionSource(digits=2)
    mask = [F] * 7 + [T] * 3
    assert _problems(add, [4, 7, 10, 5, 8, 11, 21, 20, 25, 30], mask) == ""  # 47 + 58 = 105
    assert "give 105" in _problems(add, [4, 7, 10, 5, 8, 11, 21, 20, 26, 30], mask)
    assert "leading zero" in _problems(add, [0, 7, 10, 5, 8, 11, 26, 25, 30, 12], [F] * 7 + [T] * 3)
    assert "expected 10" in _problems(add, [1, 4, 7, 10, 1, 5, 8, 11, 23, 20, 25, 30], [F] * 9 + [T] * 3)
    assert _problems(add, [1, 2, 10, 3, 4, 11, 24, 26, 30, 12], [F] * 7 + [T] * 3) == ""  # pad scored
    assert "not all PAD" in _problems(add, [1, 2, 10, 3, 4, 11, 24, 26, 30, 0], [F] * 7 + [T] * 3)
    rev = ReversedAdditionSource(digits=2)
    assert _problems(rev, [7, 4, 10, 8, 5, 11, 25, 20, 21, 30], mask) == ""  # reversed 47 + 58
    assert "give" in _problems(rev, [4, 7, 10, 5, 8, 11, 21, 20, 25, 30], mask)
    mul = MultiplicationSource(digits=2)  # 5·2 + 4 = 14 tokens
    good = [1, 2, 10, 3, 4, 11, 24, 20, 28, 30, 12, 12, 12, 12]  # 12 * 34 = 408
    assert _problems(mul, good, [F] * 7 + [T] * 4 + [F] * 3) == ""
    assert "loss mask" in _problems(mul, good, [F] * 6 + [T] * 4 + [F] * 4)
    assert "digits of a 1 outside 2..2" in _problems(
        mul, [3, 10, 3, 4, 11, 21, 20, 22, 30] + [12] * 5, [F] * 6 + [T] * 3 + [F] * 4
    )


def test_vocabulary():
    assert "outside the vocabulary" in _problems(WwSource(length=1, vocab=5), [1, 7], [F, T])
    assert "outside the vocabulary" in _problems(DyckSource(k=2, length=2), [0, -1], [F, T])
