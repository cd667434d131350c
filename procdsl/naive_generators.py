"""Naive per-example reference generators: the speed baseline of ``procdsl bench``.

Written the way the paper's public code is (``zlshinnick/procedural-pretraining``): a fresh
random state per example (``np.random.RandomState(seed + idx)`` for the algorithmic tasks,
``random.Random`` for the bracket languages), Python loops over tokens, and the loss mask
built position by position. They produce the *same formats* as ``procdsl.generators`` (the
tests run procdsl's checkers on them), but not the same random streams.

``naive_generate(source, seed, start, count, context)`` returns ``[(tokens, loss_mask), ...]``.
"""

from __future__ import annotations

import random

import numpy as np


def _length(value, context):
    return context if value is None else value


def _mask_from(tokens, first_target, pad):
    mask = []
    for i, t in enumerate(tokens):
        mask.append(i >= first_target and t != pad)
    return mask


def _task(source, rng):
    V, L, rule = source.vocab, source.length, source.rule
    sep, pad = V, V + 1
    if rule[0] == "stack":
        return _stack(V, L, rng)
    if rule[0] == "union":
        a = rng.randint(1, V, size=L // 2).tolist()
        b = rng.randint(1, V, size=L // 2).tolist()
        out, seen = [], set()
        for t in a + b:
            if t not in seen:
                seen.add(t)
                out.append(t)
        head = a + [sep] + b + [sep]
    elif rule[0] == "delete":
        x = rng.randint(1, V, size=L).tolist()
        t = rng.randint(1, V, size=1).tolist()
        out, removed = [], False
        for s in x:
            if s == t[0] and not removed:
                removed = True
            else:
                out.append(s)
        head = x + [sep] + t + [sep]
    else:
        x = rng.randint(1, V, size=L).tolist()
        out = x
        for r in rule:
            if r == "reverse":
                out = out[::-1]
            elif r == "sort":
                out = sorted(out)
            elif r == "set":
                seen, dedup = set(), []
                for s in out:
                    if s not in seen:
                        seen.add(s)
                        dedup.append(s)
                out = dedup
        head = x + [sep]
    tokens = head + out + [pad] * (L - len(out))
    return tokens, _mask_from(tokens, len(head), pad)


def _stack(V, L, rng):
    ops, stack, on = [], [], set()
    for step in range(L):
        if step == L - 1 and len(stack) > 1:
            on.remove(stack.pop())
            ops.append(0)
            continue
        if len(stack) <= 1:
            op = "push"
        elif step < int(L * 2 / 3):
            op = "push" if rng.random_sample() < 0.75 else "pop"
        else:
            op = "pop" if rng.random_sample() < 0.75 else "push"
        free = list(set(range(1, V)) - on)
        if op == "push" and not free:
            op = "pop"
        if op == "push":
            s = free[rng.randint(0, len(free))]
            stack.append(s)
            on.add(s)
            ops.append(s)
        else:
            on.remove(stack.pop())
            ops.append(0)
    tokens = ops + [V] + stack[::-1]
    tokens += [V + 1] * (2 * L - len(tokens))
    return tokens, _mask_from(tokens, L + 1, V + 1)


def _dyck(source, rng, context):
    k, L, p = source.k, _length(source.length, context), source.p_open
    seq, stack, remaining = [], [], L
    while remaining > 0:
        if not stack:
            t = rng.randint(0, k - 1)
            seq.append(t)
            stack.append(t)
            remaining -= 1
        elif remaining <= len(stack):
            while stack and remaining > 0:
                seq.append(stack.pop() + k)
                remaining -= 1
        else:
            cap_ok = source.max_depth is None or len(stack) < source.max_depth
            if rng.random() < p and len(stack) < remaining - 1 and cap_ok:
                t = rng.randint(0, k - 1)
                seq.append(t)
                stack.append(t)
            else:
                seq.append(stack.pop() + k)
            remaining -= 1
    return seq, [i > 0 for i in range(len(seq))]


def _shuffle_dyck(source, rng, context):
    k, L, p, cap = source.k, _length(source.length, context), source.p_open, source.max_depth
    seq, counts = [], [0] * k
    while len(seq) < L:
        depth = sum(counts)
        if depth == 0 or (depth < cap and rng.random() < p):
            t = rng.randint(0, k - 1)
            seq.append(t)
            counts[t] += 1
        else:
            t = rng.choice([i for i, c in enumerate(counts) if c > 0])
            seq.append(t + k)
            counts[t] -= 1
    return seq, [i > 0 for i in range(len(seq))]


def _eca(source, rng, context):
    W = source.width
    rows = source.steps + 1 if source.steps is not None else _length(source.length, context) // (W + 1)
    row = rng.randint(0, 2, size=W).tolist()
    tokens = []
    for _ in range(rows):
        tokens += row + [2]
        nxt = []
        for j in range(W):
            nxt.append((source.rule >> (4 * row[j - 1] + 2 * row[j] + row[(j + 1) % W])) & 1)
        row = nxt
    return tokens, [i > W for i in range(len(tokens))]


def _ww(source, rng):
    w = rng.randint(1, source.vocab, size=source.length).tolist()
    return w + w, [i >= len(w) for i in range(2 * len(w))]


def _ends(value):
    """``(low, high)`` of a fixed value or a Range."""
    return (value.low, value.high) if hasattr(value, "low") else (value, value)


def _haystack(source, rng):
    half, (low, most) = source.vocab // 2, _ends(source.pairs)
    pairs = rng.randint(low, most)
    keys = list(range(most))
    rng.shuffle(keys)
    keys = keys[:pairs]
    values = [rng.randint(1, half - 1) for _ in keys]
    q = rng.choice(keys)
    tokens = sum(([k + half, v] for k, v in zip(keys, values)), []) + [q + half + most, values[keys.index(q)]]
    tokens += [0] * (2 * most + 3 - len(tokens))
    return tokens, [i == 2 * pairs + 1 for i in range(len(tokens))]


def _arithmetic(source, rng):
    low, high = _ends(source.digits)

    def number():
        o = rng.randint(low, high)
        return rng.randint(10 ** (o - 1), 10**o - 1)

    a, b = number(), number()
    c = a * b if source.kind == "multiplication" else a + b
    flip = (lambda s: s[::-1]) if source.kind == "reversed_addition" else (lambda s: s)
    tokens = [int(d) for d in flip(str(a))] + [10] + [int(d) for d in flip(str(b))] + [11]
    tokens += [20 + int(d) for d in flip(str(c))] + [30]
    tokens += [12] * ((5 if source.kind == "multiplication" else 3) * high + 4 - len(tokens))
    return tokens, [i > 0 and tokens[i - 1] >= 20 for i in range(len(tokens))]


def _sorting(source, rng):
    x = rng.randint(1, source.vocab, size=source.length).tolist()
    y = sorted(x)
    tokens = x + [source.vocab] + y
    return tokens, [i > len(x) for i in range(len(tokens))]


def naive_generate(source, seed: int, start: int, count: int, context: int):
    """Examples ``[start, start + count)``, one random state per example (integer params only)."""
    out = []
    for idx in range(start, start + count):
        kind = source.kind
        if kind == "dyck":
            out.append(_dyck(source, random.Random(seed + idx), context))
        elif kind == "shuffle_dyck":
            out.append(_shuffle_dyck(source, random.Random(seed + idx), context))
        elif kind == "haystack":
            out.append(_haystack(source, random.Random(seed + idx)))
        elif kind in ("addition", "reversed_addition", "multiplication"):
            out.append(_arithmetic(source, random.Random(seed + idx)))
        elif kind == "task":
            out.append(_task(source, np.random.RandomState(seed + idx)))
        elif kind == "eca":
            out.append(_eca(source, np.random.RandomState(seed + idx), context))
        elif kind == "ww":
            out.append(_ww(source, np.random.RandomState(seed + idx)))
        elif kind == "sorting":
            out.append(_sorting(source, np.random.RandomState(seed + idx)))
        else:
            raise ValueError(f"no naive generator for {kind!r}")
    return out
