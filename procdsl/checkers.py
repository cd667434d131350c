"""Independent validity checks of generated examples, one checker per source kind.

A second code path: plain Python over lists, sharing nothing with ``procdsl.generators`` but
the plan's source models. A checker takes one example's tokens and loss mask, the source and
the phase's context, and returns a list of problems (empty = valid). It checks the language
(balanced brackets, sorted outputs, recomputed automaton rows, Python-int arithmetic, …), that
the example's size matches the source's parameters, that every token is in the source's
vocabulary, and that the loss mask is True exactly on the targets.

>>> from procdsl.plan.sources import DyckSource
>>> src = DyckSource(k=2, length=4)
>>> check_example(src, [0, 1, 3, 2], [False, True, True, True], context=64)
[]
>>> check_example(src, [0, 1, 2, 3], [False, True, True, True], context=64)
['position 2: )0 closes (1', 'position 3: )1 closes (0']
>>> check_example(src, [0, 1, 3, 2], [True, True, True, True], context=64)
['loss mask differs from the expected one first at position 0 (got True)']
"""

from __future__ import annotations

from collections import Counter

from procdsl.plan.base import Number, Ramp, Range


def _bounds(value, context: int) -> tuple[Number, Number]:
    """Smallest and largest value a parameter may take (``None`` = the context)."""
    if value is None:
        return context, context
    if isinstance(value, Range):
        return value.low, value.high
    if isinstance(value, Ramp):
        return min(value.start, value.end), max(value.start, value.end)
    return value, value


def _within(what: str, value: int, bounds: tuple[Number, Number]) -> list[str]:
    lo, hi = bounds
    return [] if lo <= value <= hi else [f"{what} {value} outside {lo}..{hi}"]


def _mask(mask: list[bool], expected: list[bool]) -> list[str]:
    if len(mask) != len(expected):
        return [f"loss mask has {len(mask)} entries, expected {len(expected)}"]
    for p, (got, want) in enumerate(zip(mask, expected)):
        if got != want:
            return [f"loss mask differs from the expected one first at position {p} (got {got})"]
    return []


def _split(tokens: list[int], sep: int) -> list[list[int]]:
    parts: list[list[int]] = []
    current: list[int] = []
    for t in tokens:
        if t == sep:
            parts.append(current)
            current = []
        else:
            current.append(t)
    return parts + [current]


def _symbols(what: str, values: list[int], lo: int, hi: int) -> list[str]:
    bad = [v for v in values if not lo <= v < hi]
    return [f"{what} holds {bad[0]}, not a symbol in {lo}..{hi - 1}"] if bad else []


# -- algorithmic tasks ---------------------------------------------------------------------------


def _apply(rule: str, xs: list[int]) -> list[int]:
    if rule == "identity":
        return list(xs)
    if rule == "reverse":
        return xs[::-1]
    if rule == "sort":
        return sorted(xs)
    if rule == "set":
        seen, out = set(), []
        for x in xs:
            if x not in seen:
                seen.add(x)
                out.append(x)
        return out
    raise ValueError(f"unknown unary rule {rule!r}")


def _output(y: list[int], expected: list[int], pad: int, start: int, n: int) -> tuple[list[str], list[bool]]:
    """Compare an output section with ``expected`` then PAD; return problems and the expected mask."""
    problems = []
    want = expected + [pad] * (len(y) - len(expected))
    if len(expected) > len(y):
        problems.append(f"output has room for {len(y)} tokens, the answer has {len(expected)}")
    elif y != want:
        problems.append(f"output {y} != expected {want}")
    mask = [False] * n
    for p in range(start, min(start + len(expected), n)):
        mask[p] = True
    return problems, mask


def check_task(tokens, mask, source, context) -> list[str]:
    V, head = source.vocab, source.rule[0]
    sep, pad = V, V + 1
    if head == "stack":
        return _check_stack(tokens, mask, source)
    parts = _split(tokens, sep)
    want_parts = {"union": 3, "delete": 3}.get(head, 2)
    if len(parts) != want_parts:
        return [f"expected {want_parts - 1} SEP, found {len(parts) - 1}"]
    y = parts[-1]
    L = len(y)
    problems = _within("length", L, _bounds(source.length, context))
    inputs = parts[:-1]
    for i, part in enumerate(inputs):
        problems += _symbols(f"input {i}", part, 1, V)
    if head == "union":
        a, b = inputs
        if (len(a), len(b)) != ((L + 1) // 2, L // 2):
            problems.append(
                f"union inputs of {len(a)} and {len(b)} symbols, expected {(L + 1) // 2} and {L // 2}"
            )
        expected = _apply("set", a + b)
    elif head == "delete":
        x, t = inputs
        if len(t) != 1 or len(x) != L:
            return problems + [f"delete expects x ({L}) SEP t SEP, got {len(x)} and {len(t)} tokens"]
        expected = list(x)
        if t[0] in expected:
            del expected[expected.index(t[0])]
    else:
        (x,) = inputs
        if len(x) != L:
            problems.append(f"input has {len(x)} symbols, output section {L}")
        expected = x
        for rule in source.rule:
            expected = _apply(rule, expected)
    more, expected_mask = _output(y, expected, pad, len(tokens) - L, len(tokens))
    return problems + more + _mask(mask, expected_mask)


def _check_stack(tokens, mask, source) -> list[str]:
    V = source.vocab
    n = len(tokens)
    if n % 2 or n < 6:
        return [f"stack example has {n} tokens, expected 2L with L >= 3"]
    L = n // 2
    problems = _within("length", L, _bounds(source.length, 0))
    ops, y = tokens[:L], tokens[L + 1 :]
    if tokens[L] != V:
        problems.append(f"position {L} is {tokens[L]}, expected SEP")
    stack: list[int] = []
    for t, op in enumerate(ops):
        if t == L - 1 and len(stack) > 1 and op != 0:
            problems.append(f"op {t}: the last op must pop a stack of {len(stack)}")
        if op == 0:
            if len(stack) <= 1:
                problems.append(f"op {t}: pop with {len(stack)} element(s) on the stack")
            if stack:
                stack.pop()
        elif 1 <= op < V:
            if op in stack:
                problems.append(f"op {t}: pushes {op}, already on the stack")
            stack.append(op)
        else:
            problems.append(f"op {t}: {op} is neither a symbol nor POP")
    if not stack:
        problems.append("final stack is empty")
    more, expected_mask = _output(y, stack[::-1], V + 1, L + 1, n)
    return problems + more + _mask(mask, expected_mask)


# -- bracket languages ---------------------------------------------------------------------------


def _bracket_length(tokens, source, context) -> list[str]:
    return _within("length", len(tokens), _bounds(source.length, context))


def check_dyck(tokens, mask, source, context) -> list[str]:
    k = source.k
    problems = _bracket_length(tokens, source, context)
    if len(tokens) % 2:
        problems.append(f"odd length {len(tokens)}")
    stack: list[int] = []
    for p, t in enumerate(tokens):
        if 0 <= t < k:
            stack.append(t)
            if source.max_depth is not None and len(stack) > source.max_depth:
                problems.append(f"position {p}: depth {len(stack)} exceeds max_depth {source.max_depth}")
        elif k <= t < 2 * k:
            if not stack:
                problems.append(f"position {p}: ){t - k} closes nothing")
            elif stack[-1] != t - k:
                problems.append(f"position {p}: ){t - k} closes ({stack[-1]}")
                stack.pop()
            else:
                stack.pop()
        else:
            problems.append(f"position {p}: token {t} is not a bracket")
    if stack:
        problems.append(f"incomplete: {len(stack)} bracket(s) left open")
    return problems + _mask(mask, [False] + [True] * (len(tokens) - 1))


def check_shuffle_dyck(tokens, mask, source, context) -> list[str]:
    k = source.k
    problems = _bracket_length(tokens, source, context)
    counts = [0] * k
    for p, t in enumerate(tokens):
        if 0 <= t < k:
            counts[t] += 1
            if sum(counts) > source.max_depth:
                problems.append(f"position {p}: depth {sum(counts)} exceeds max_depth {source.max_depth}")
        elif k <= t < 2 * k:
            counts[t - k] -= 1
            if counts[t - k] < 0:
                problems.append(f"position {p}: ){t - k} closes no open ({t - k}")
                counts[t - k] = 0
        else:
            problems.append(f"position {p}: token {t} is not a bracket")
    return problems + _mask(mask, [False] + [True] * (len(tokens) - 1))


# -- cellular automata and copying ---------------------------------------------------------------


def check_eca(tokens, mask, source, context) -> list[str]:
    sep = 2
    if not tokens or tokens[-1] != sep:
        return ["an ECA example ends with SEP"]
    rows = _split(tokens[:-1], sep)
    W = len(rows[0])
    problems = _within("width", W, _bounds(source.width, context))
    if source.steps is not None:
        problems += _within("steps", len(rows) - 1, _bounds(source.steps, context))
    else:
        lo, hi = _bounds(source.length, context)
        if not lo // (W + 1) <= len(rows) <= hi // (W + 1):
            problems.append(f"{len(rows)} rows of width {W} do not fill a length in {lo}..{hi}")
        if len(rows) < 2:
            problems.append("fewer than two rows")
    for r, row in enumerate(rows):
        if len(row) != W or any(c not in (0, 1) for c in row):
            return problems + [f"row {r} is not {W} cells of 0/1: {row}"]
    for r in range(1, len(rows)):
        prev = rows[r - 1]
        want = [(source.rule >> (4 * prev[j - 1] + 2 * prev[j] + prev[(j + 1) % W])) & 1 for j in range(W)]
        if rows[r] != want:
            problems.append(f"row {r} is {rows[r]}, rule {source.rule} gives {want}")
    return problems + _mask(mask, [False] * (W + 1) + [True] * (len(tokens) - W - 1))


def check_ww(tokens, mask, source, context) -> list[str]:
    n = len(tokens)
    L = n // 2
    problems = _within("length", L, _bounds(source.length, context))
    if n % 2:
        problems.append(f"odd length {n}")
    problems += _symbols("w", tokens, 1, source.vocab)
    if tokens[:L] != tokens[L:]:
        problems.append("second copy differs from the first")
    return problems + _mask(mask, [False] * L + [True] * (n - L))


# -- diagnostic probes ---------------------------------------------------------------------------


def _most(value) -> int:
    """The largest value a tunable parameter takes (what the probes pad to)."""
    return int(max(_bounds(value, 0)))


def check_haystack(tokens, mask, source, context) -> list[str]:
    H, M = source.vocab // 2, _most(source.pairs)
    n = len(tokens)
    if n != 2 * M + 3:
        return [f"{n} tokens, expected 2·{M} + 3 = {2 * M + 3} (padded)"]
    at = next((i for i, t in enumerate(tokens) if t >= H + M), None)
    if at is None or at % 2 or at == 0:
        return [f"no query token ({H + M}..{H + 2 * M - 1}) after the pairs"]
    P = at // 2
    problems = _within("pairs", P, _bounds(source.pairs, context))
    keys = [t - H for t in tokens[0:at:2]]
    values = tokens[1:at:2]
    problems += _symbols("keys", keys, 0, M) + _symbols("values", values, 1, H)
    if len(set(keys)) != len(keys):
        problems.append(f"keys repeat: {keys}")
    query, answer = tokens[at] - H - M, tokens[at + 1]
    if query not in keys:
        problems.append(f"query {query} is not a key")
    elif answer != values[keys.index(query)]:
        problems.append(f"answer {answer} but key {query} holds {values[keys.index(query)]}")
    if any(t != 0 for t in tokens[at + 2 :]):
        problems.append("padding after the answer is not all PAD (0)")
    return problems + _mask(mask, [i == at + 1 for i in range(n)])


def _arithmetic(tokens, mask, source, context, operation, msd_first: bool) -> list[str]:
    op, equals, pad, stop = 10, 11, 12, 30
    width = (5 if source.kind == "multiplication" else 3) * _most(source.digits) + 4
    if len(tokens) != width:
        return [f"{len(tokens)} tokens, expected {width} (padded)"]
    if tokens.count(op) != 1 or tokens.count(equals) != 1 or tokens.count(stop) != 1:
        return ["expected digits OP digits = answer STOP PAD…"]
    i, e, s = tokens.index(op), tokens.index(equals), tokens.index(stop)
    if not i < e < s:
        return ["expected digits OP digits = answer STOP PAD…"]
    numbers = [tokens[:i], tokens[i + 1 : e], [t - 20 for t in tokens[e + 1 : s]]]
    problems = []
    for what, digits in zip(("a", "b", "answer"), numbers):
        written = digits if msd_first else digits[::-1]
        if not digits or any(not 0 <= d <= 9 for d in digits):
            return [f"{what} is not a number: {digits}"]
        if written[0] == 0 and len(written) > 1:
            problems.append(f"{what} has a leading zero: {digits}")
    a, b, c = (int("".join(map(str, d if msd_first else d[::-1]))) for d in numbers)
    for what, digits in zip(("a", "b"), numbers):
        problems += _within(f"digits of {what}", len(digits), _bounds(source.digits, context))
    if operation(a, b) != c:
        problems.append(f"{a} and {b} give {operation(a, b)}, not {c}")
    if any(t != pad for t in tokens[s + 1 :]):
        problems.append("padding after STOP is not all PAD")
    # the task files score the prediction made at an answer digit or STOP: the token after it
    return problems + _mask(mask, [j > 0 and tokens[j - 1] >= 20 for j in range(len(tokens))])


def check_addition(tokens, mask, source, context) -> list[str]:
    return _arithmetic(tokens, mask, source, context, lambda a, b: a + b, msd_first=True)


def check_reversed_addition(tokens, mask, source, context) -> list[str]:
    return _arithmetic(tokens, mask, source, context, lambda a, b: a + b, msd_first=False)


def check_multiplication(tokens, mask, source, context) -> list[str]:
    return _arithmetic(tokens, mask, source, context, lambda a, b: a * b, msd_first=True)


def check_sorting(tokens, mask, source, context) -> list[str]:
    parts = _split(tokens, source.vocab)
    if len(parts) != 2:
        return [f"expected one SEP, found {len(parts) - 1}"]
    x, y = parts
    problems = _within("length", len(x), _bounds(source.length, context))
    problems += _symbols("input", x, 1, source.vocab)
    if len(y) != len(x):
        problems.append(f"output has {len(y)} tokens, input {len(x)}")
    if any(a > b for a, b in zip(y, y[1:])):
        problems.append(f"output {y} is not sorted")
    if Counter(y) != Counter(x):
        problems.append("output is not a permutation of the input")
    return problems + _mask(mask, [False] * (len(x) + 1) + [True] * len(y))


CHECKERS = {
    "task": check_task,
    "dyck": check_dyck,
    "shuffle_dyck": check_shuffle_dyck,
    "eca": check_eca,
    "ww": check_ww,
    "haystack": check_haystack,
    "addition": check_addition,
    "reversed_addition": check_reversed_addition,
    "multiplication": check_multiplication,
    "sorting": check_sorting,
}


def check_example(source, tokens, mask, context: int) -> list[str]:
    """Problems with one example (token and mask sequences) of ``source``; empty when valid."""
    tokens, mask = [int(t) for t in tokens], [bool(m) for m in mask]
    vocab = source.vocab_size()
    bad = [t for t in tokens if not 0 <= t < vocab]
    if bad:
        return [f"token {bad[0]} outside the vocabulary 0..{vocab - 1}"]
    if not tokens:
        return ["empty example"]
    return CHECKERS[source.kind](tokens, mask, source, context)


def check_examples(source, examples, context: int) -> list[str]:
    """Problems with a batch of :class:`procdsl.generators.Examples`, each naming its example."""
    offsets = [int(o) for o in examples.offsets]
    n = len(examples.tokens)
    if offsets[0] != 0 or offsets[-1] != n or len(examples.loss_mask) != n:
        return ["offsets, tokens and loss mask do not line up"]
    if any(a > b for a, b in zip(offsets, offsets[1:])):
        return ["offsets decrease"]
    if str(examples.tokens.dtype) != "int32" or str(examples.loss_mask.dtype) != "bool":
        return [f"dtypes {examples.tokens.dtype}/{examples.loss_mask.dtype}, expected int32/bool"]
    tokens, mask = examples.tokens.tolist(), examples.loss_mask.tolist()
    problems = []
    for j, (a, b) in enumerate(zip(offsets, offsets[1:])):
        problems += [f"example {j}: {p}" for p in check_example(source, tokens[a:b], mask[a:b], context)]
    return problems
