"""``dm_math(modules=[…])``: DeepMind-mathematics-style question/answer problems, made locally.

The PyPI ``mathematics_dataset`` pins a sympy that conflicts with torch's, so procdsl generates
its own problems for the modules in ``DM_MATH_MODULES``, phrased like the original dataset's,
with exact integer answers. A document is ``question + "\\n" + answer``; ``answer_start`` marks
the answer for the ``answer_only`` loss.

Problems come in blocks of ``BLOCK``: block ``b`` draws from
``numpy.random.default_rng([seed, DM_TAG, b])`` which module each problem uses, its numbers
(vectorised per module) and its wording. The stream is infinite and a pure function of the seed
and the module list. The train/held-out split hashes each problem's *numbers* (not its wording,
so "Add 2 and 3." and "What is 2 + 3?" fall on the same side): disjoint by construction.

>>> from procdsl.plan.sources import DmMathSource
>>> docs = generate(DmMathSource(modules=("arithmetic__add_or_sub",)), "train", seed=0)
>>> doc = next(docs)
>>> doc.prompt.endswith("\\n"), doc.answer.lstrip("-").isdigit()
(True, True)
>>> render("numbers__gcd", (12, 18), style=1)
('What is the greatest common divisor of 12 and 18?', '6')
>>> render("algebra__linear_1d", (0, 3, 4, 5, 0), style=0)
('Solve 3*a + 5 = 17 for a.', '4')
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Optional

import numpy as np

from procdsl.data.document import Document, ReadStats, SourceInfo
from procdsl.data.split import Split
from procdsl.plan.sources import DM_MATH_MODULES, DmMathSource

#: problems per block (one RNG per block)
BLOCK = 1024
#: the constant that separates this generator's RNG streams from every other's
DM_TAG = 0x646D5F6D617468  # "dm_math"

Params = np.ndarray  # (n, width) int64: the numbers that define each problem
Sampler = Callable[[np.random.Generator, int], Params]
Renderer = Callable[[Sequence[int], int], tuple[str, str]]


@dataclass(frozen=True)
class Module:
    """One problem family: ``sample`` draws the numbers of ``n`` problems (vectorised),
    ``render`` turns one row and a style number into ``(question, answer)``, and ``valid``
    (optional) drops rows without a unique answer."""

    sample: Sampler
    render: Renderer
    valid: Optional[Callable[[Params], np.ndarray]] = None


def generate(
    source: DmMathSource, split: Split, *, seed: int = 0, start: int = 0, stats: Optional[ReadStats] = None
) -> Iterator[Document]:
    """The problems of ``split`` (``"all"``: both) from the ``start``-th on, in order, forever.

    Skipping renders nothing: resuming a million problems in takes about a second. With
    ``heldout=0`` the held-out split is empty (not an endless search).
    """
    if split == "heldout" and source.heldout == 0:
        return
    for block in itertools.count():
        drawn = _Block.draw(seed, source.modules, block, source.heldout)
        keep = drawn.valid if split == "all" else drawn.valid & (drawn.held == (split == "heldout"))
        positions = np.flatnonzero(keep)
        if start >= len(positions):
            start -= len(positions)
            continue
        if stats is not None:
            stats.excluded += int(drawn.valid.sum()) - len(positions)
        module, row, style = drawn.module.tolist(), drawn.row.tolist(), drawn.style.tolist()
        params = {m: p.tolist() for m, p in drawn.params.items()}
        for pos in positions[start:].tolist():
            m = module[pos]
            question, answer = MODULES[source.modules[m]].render(params[m][row[pos]], style[pos])
            doc = Document(
                f"{question}\n{answer}",
                answer_start=len(question) + 1,
                origin=f"dm_math#{block * BLOCK + pos}",
            )
            if stats is not None:
                stats.count(doc)
            yield doc
        start = 0


def render(name: str, params: Sequence[int], style: int = 0) -> tuple[str, str]:
    """``(question, answer)`` of module ``name`` for the numbers ``params``, wording ``style``."""
    return MODULES[name].render(list(params), style)


def validate_dm_math(source: DmMathSource) -> SourceInfo:
    first = next(generate(source, "all"))
    return SourceInfo(
        "dm_math", f"dm_math: {len(source.modules)} module(s), generated locally; e.g. {first.text!r}"
    )


@dataclass(frozen=True)
class _Block:
    """The problems of one block, as arrays over its ``BLOCK`` positions."""

    module: np.ndarray  # which of the source's modules each position uses
    row: np.ndarray  # its row in ``params[module]``
    style: np.ndarray  # its wording
    valid: np.ndarray  # whether it has a unique answer
    held: np.ndarray  # whether it belongs to the held-out split
    params: dict[int, Params]  # module -> the numbers of its problems

    @classmethod
    def draw(cls, seed: int, modules: Sequence[str], block: int, heldout: float) -> _Block:
        rng = np.random.default_rng([seed, DM_TAG, block])
        module = rng.integers(len(modules), size=BLOCK)
        style = rng.integers(0, 2**31, size=BLOCK)
        row = np.zeros(BLOCK, dtype=np.int64)
        valid = np.ones(BLOCK, dtype=bool)
        held = np.zeros(BLOCK, dtype=bool)
        threshold = np.uint64(int(heldout * 2**32))
        params: dict[int, Params] = {}
        for m, name in enumerate(modules):
            positions = np.flatnonzero(module == m)
            if positions.size == 0:
                continue
            generator = MODULES[name]
            params[m] = generator.sample(rng, positions.size)
            row[positions] = np.arange(positions.size)
            if generator.valid is not None:
                valid[positions] = generator.valid(params[m])
            held[positions] = _bucket(name, params[m]) < threshold
        return cls(module, row, style, valid, held, params)


# ------------------------------------------------------------------------------ split hashing


@cache
def _tag(name: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big"))


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _bucket(name: str, params: Params) -> np.ndarray:
    """A 32-bit bucket per problem, from its module and numbers only (the split key)."""
    words = np.ascontiguousarray(params, dtype=np.int64).view(np.uint64)
    h = np.full(len(words), _tag(name), dtype=np.uint64)
    for column in words.T:
        h = _splitmix(h ^ column)
    return h >> np.uint64(32)


# ------------------------------------------------------------------------------ number helpers


def _signed(rng: np.random.Generator, n: int, max_digits: int, min_digits: int = 1) -> np.ndarray:
    """Integers with a uniformly drawn digit count, then uniform (either sign) at that size."""
    high = 10 ** rng.integers(min_digits, max_digits + 1, size=n)
    return rng.integers(-(high - 1), high)


def _nonzero(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """Magnitude uniform in ``low..high``, random sign."""
    return rng.integers(low, high + 1, size=n) * rng.choice(np.array([-1, 1]), size=n)


def _columns(*cols: np.ndarray) -> Params:
    return np.stack([np.asarray(c, dtype=np.int64) for c in cols], axis=1)


def _pick(templates: Sequence[str], style: int) -> str:
    return templates[style % len(templates)]


def _paren(x: int) -> str:
    """A factor of a product or quotient: negatives in parentheses, as the DM dataset has them."""
    return f"({x})" if x < 0 else str(x)


# ------------------------------------------------------------------------------ arithmetic

_ADD = (
    "What is {a} + {b}?",
    "Calculate {a} + {b}.",
    "Add {a} and {b}.",
    "Sum {a} and {b}.",
    "What is {a} plus {b}?",
    "{a} + {b}",
    "Put together {a} and {b}.",
    "Total of {a} and {b}.",
    "Work out {a} + {b}.",
    "What is the sum of {a} and {b}?",
)
_SUB = (
    "What is {a} - {b}?",
    "Calculate {a} - {b}.",
    "Subtract {b} from {a}.",
    "What is {a} minus {b}?",
    "{a} - {b}",
    "Work out {a} - {b}.",
    "Take {b} from {a}.",
    "What is the difference between {a} and {b}?",
)


def _add_or_sub_sample(rng, n):
    return _columns(rng.integers(2, size=n), _signed(rng, n, 6), _signed(rng, n, 6))


def _add_or_sub_render(p, style):
    op, a, b = p
    return _pick(_SUB if op else _ADD, style).format(a=a, b=b), str(a - b if op else a + b)


_MUL = (
    "What is {a} times {b}?",
    "Multiply {a} and {b}.",
    "Calculate {a}*{b}.",
    "Product of {a} and {b}.",
    "{a} * {b}",
    "Work out {a} * {b}.",
    "What is the product of {a} and {b}?",
    "{a}*{b}",
)


def _mul_sample(rng, n):
    return _columns(_signed(rng, n, 4), _signed(rng, n, 3))


def _mul_render(p, style):
    a, b = p
    return _pick(_MUL, style).format(a=a, b=b), str(a * b)


_DIV = (
    "Divide {a} by {b}.",
    "What is {a} divided by {b}?",
    "Calculate {a} divided by {b}.",
    "{a} / {b}",
    "Calculate {a}/{b}.",
    "What is {a} / {b}?",
    "Work out {a} / {b}.",
)


def _div_sample(rng, n):
    divisor = _nonzero(rng, n, 2, 99)
    return _columns(_signed(rng, n, 3) * divisor, divisor)


def _div_render(p, style):
    a, b = p
    return _pick(_DIV, style).format(a=a, b=b), str(a // b)


_EVAL = (
    "What is {e}?",
    "Evaluate {e}.",
    "Calculate {e}.",
    "What is the value of {e}?",
    "{e}",
    "Work out {e}.",
)

#: form -> (expression, value) of a, b, c, d; form 3 divides exactly by construction
_MIXED_FORMS: tuple[Callable[[int, int, int, int], tuple[str, int]], ...] = (
    lambda a, b, c, d: (f"{a} + ({b} - {c})", a + (b - c)),
    lambda a, b, c, d: (f"({a} - {b})*{_paren(c)}", (a - b) * c),
    lambda a, b, c, d: (f"{a} - {_paren(b)}*{_paren(c)}", a - b * c),
    lambda a, b, c, d: (f"({a} + {b})/{_paren(c)}", (a + b) // c),
    lambda a, b, c, d: (f"{_paren(a)}*{_paren(b)} + {_paren(c)}*{_paren(d)}", a * b + c * d),
    lambda a, b, c, d: (f"{a} - ({b} + {c}) + {d}", a - (b + c) + d),
    lambda a, b, c, d: (f"{_paren(a)}*({b} + {c})", a * (b + c)),
)


def _mixed_sample(rng, n):
    form = rng.integers(len(_MIXED_FORMS), size=n)
    a, b, d = _signed(rng, n, 2), _signed(rng, n, 2), _signed(rng, n, 2)
    c = np.where(form == 3, _nonzero(rng, n, 2, 12), _signed(rng, n, 2))
    quotient = _signed(rng, n, 2)
    b = np.where(form == 3, quotient * c - a, b)  # (a + b) / c == quotient exactly
    return _columns(form, a, b, c, d)


def _mixed_render(p, style):
    form, a, b, c, d = p
    expression, value = _MIXED_FORMS[form](a, b, c, d)
    return _pick(_EVAL, style).format(e=expression), str(value)


# ------------------------------------------------------------------------------ numbers

_GCD = (
    "Calculate the greatest common divisor of {a} and {b}.",
    "What is the greatest common divisor of {a} and {b}?",
    "What is the highest common factor of {a} and {b}?",
    "Calculate the highest common factor of {a} and {b}.",
    "What is the greatest common factor of {a} and {b}?",
)


def _gcd_sample(rng, n):
    g = rng.integers(1, 100, size=n)
    return _columns(g * rng.integers(1, 200, size=n), g * rng.integers(1, 200, size=n))


def _gcd_render(p, style):
    a, b = p
    return _pick(_GCD, style).format(a=a, b=b), str(math.gcd(a, b))


_LCM = (
    "What is the least common multiple of {a} and {b}?",
    "Calculate the least common multiple of {a} and {b}.",
    "What is the smallest common multiple of {a} and {b}?",
    "Calculate the lowest common multiple of {a} and {b}.",
    "What is the lowest common multiple of {a} and {b}?",
)


def _lcm_sample(rng, n):
    g = rng.integers(1, 30, size=n)
    return _columns(g * rng.integers(1, 40, size=n), g * rng.integers(1, 40, size=n))


def _lcm_render(p, style):
    a, b = p
    return _pick(_LCM, style).format(a=a, b=b), str(math.lcm(a, b))


PRIME_LIMIT = 100_000


@lru_cache(maxsize=1)
def _sieve() -> np.ndarray:
    """``is_prime[n]`` for ``n < PRIME_LIMIT``."""
    is_prime = np.ones(PRIME_LIMIT, dtype=bool)
    is_prime[:2] = False
    for k in range(2, int(PRIME_LIMIT**0.5) + 1):
        if is_prime[k]:
            is_prime[k * k :: k] = False
    return is_prime


#: (template, whether the question asks "prime?" rather than "composite?")
_PRIME = (
    ("Is {n} a prime number?", True),
    ("Is {n} prime?", True),
    ("Is {n} composite?", False),
    ("Is {n} a composite number?", False),
)


def _is_prime_sample(rng, n):
    primes = np.flatnonzero(_sieve())
    value = np.where(
        rng.random(n) < 0.5, primes[rng.integers(len(primes), size=n)], rng.integers(2, PRIME_LIMIT, size=n)
    )
    return _columns(value)


def _is_prime_render(p, style):
    (value,) = p
    template, asks_prime = _pick(_PRIME, style)
    return template.format(n=value), str(bool(_sieve()[value]) == asks_prime)


_UNITS = {
    1: "ten",
    2: "one hundred",
    3: "one thousand",
    4: "ten thousand",
    5: "one hundred thousand",
    6: "one million",
}
_ROUND = (
    "Round {x} to the nearest {w}.",
    "What is {x} rounded to the nearest {w}?",
    "What is {x} to the nearest {w}?",
)


def _round_sample(rng, n):
    power = rng.integers(1, 7, size=n)
    digits = rng.integers(power + 1, 9)
    x = rng.integers(10 ** (digits - 1), 10**digits) * rng.choice(np.array([-1, 1]), size=n)
    unit = 10**power
    x = np.where(np.mod(x, unit) == unit // 2, x + 1, x)  # no ties: the answer is unambiguous
    return _columns(x, power)


def _round_render(p, style):
    x, power = p
    unit = 10**power
    return _pick(_ROUND, style).format(x=x, w=_UNITS[power]), str((x + unit // 2) // unit * unit)


# ------------------------------------------------------------------------------ algebra

_LETTERS = "abcdfghjklmnopqrstuvwxyz"  # no e or i: they read as constants


def _linear(a: int, v: str, b: int) -> str:
    """``a*v + b`` written as the DM dataset does: ``3*x - 5``, ``-x``, ``x``."""
    term = v if a == 1 else f"-{v}" if a == -1 else f"{a}*{v}"
    return term if b == 0 else f"{term} + {b}" if b > 0 else f"{term} - {-b}"


def _linear_1d_sample(rng, n):
    form = rng.integers(5, size=n)
    return _columns(
        form, _nonzero(rng, n, 1, 12), _signed(rng, n, 2), _signed(rng, n, 3), _nonzero(rng, n, 1, 5)
    )


def _linear_1d_render(p, style):
    form, a, x, b, d = p
    v = _LETTERS[style % len(_LETTERS)]
    c = a * x + b
    if form == 0:
        equation = f"{_linear(a, v, b)} = {c}"
    elif form == 1:
        equation = f"{c} = {_linear(a, v, b)}"
    elif form == 2:
        equation = f"0 = {_linear(a, v, -a * x)}"
    elif form == 3:
        equation = f"{_linear(a, v, 0)} = {a * x}"
    else:  # a*v + b = (a+d)*v + b', with x the solution
        other = a + d
        right = _linear(other, v, c - other * x) if other else str(c)
        equation = f"{_linear(a, v, b)} = {right}"
    return f"Solve {equation} for {v}.", str(x)


# ------------------------------------------------------------------------------ comparison

_SORT_UP = (
    "Sort {l} in ascending order.",
    "Sort {l} in increasing order.",
    "Put {l} in increasing order.",
    "Put {l} in ascending order.",
    "Sort {l}.",
)
_SORT_DOWN = (
    "Sort {l} in descending order.",
    "Sort {l} in decreasing order.",
    "Put {l} in decreasing order.",
    "Put {l} in descending order.",
)
_MAX_ITEMS = 6


def _sort_sample(rng, n):
    count = rng.integers(3, _MAX_ITEMS + 1, size=n)
    values = _signed(rng, n * _MAX_ITEMS, 3).reshape(n, _MAX_ITEMS)
    values[np.arange(_MAX_ITEMS)[None, :] >= count[:, None]] = 0  # unused slots: canonical 0
    return np.concatenate([_columns(count, rng.integers(2, size=n)), values], axis=1)


def _sort_render(p, style):
    count, descending, *values = p
    items = values[:count]
    template = _pick(_SORT_DOWN if descending else _SORT_UP, style)
    answer = sorted(items, reverse=bool(descending))
    return template.format(l=", ".join(map(str, items))), ", ".join(map(str, answer))


_CLOSEST_IN = (
    "What is the closest to {t} in {l}?",
    "What is the nearest to {t} in {l}?",
    "Which is the closest to {t} in {l}?",
)
_CLOSEST_CHOICE = ("Which is the closest to {t}?", "Which is the nearest to {t}?")
_MAX_CHOICES = 5


def _closest_sample(rng, n):
    count = rng.integers(3, _MAX_CHOICES + 1, size=n)
    values = _signed(rng, n * _MAX_CHOICES, 2).reshape(n, _MAX_CHOICES)
    values[np.arange(_MAX_CHOICES)[None, :] >= count[:, None]] = 0
    return np.concatenate([_columns(count, _signed(rng, n, 2)), values], axis=1)


def _closest_valid(params):
    count, target, values = params[:, 0], params[:, 1], params[:, 2:]
    distance = np.abs(values - target[:, None]).astype(float)
    distance[np.arange(values.shape[1])[None, :] >= count[:, None]] = np.inf
    return (distance == distance.min(axis=1, keepdims=True)).sum(axis=1) == 1


def _closest_render(p, style):
    count, target, *values = p
    items = values[:count]
    best = min(range(count), key=lambda k: abs(items[k] - target))
    form = style % (len(_CLOSEST_IN) + len(_CLOSEST_CHOICE))
    if form < len(_CLOSEST_IN):
        question = _CLOSEST_IN[form].format(t=target, l=", ".join(map(str, items)))
        return question, str(items[best])
    letters = "abcde"
    choices = "  ".join(f"({letters[k]}) {v}" for k, v in enumerate(items))
    question = _CLOSEST_CHOICE[form - len(_CLOSEST_IN)].format(t=target)
    return f"{question}  {choices}", letters[best]


#: module name -> generator; keys are exactly ``DM_MATH_MODULES``
MODULES: dict[str, Module] = {
    "arithmetic__add_or_sub": Module(_add_or_sub_sample, _add_or_sub_render),
    "arithmetic__mul": Module(_mul_sample, _mul_render),
    "arithmetic__div": Module(_div_sample, _div_render),
    "arithmetic__mixed": Module(_mixed_sample, _mixed_render),
    "numbers__gcd": Module(_gcd_sample, _gcd_render),
    "numbers__lcm": Module(_lcm_sample, _lcm_render),
    "numbers__is_prime": Module(_is_prime_sample, _is_prime_render),
    "numbers__round_number": Module(_round_sample, _round_render),
    "algebra__linear_1d": Module(_linear_1d_sample, _linear_1d_render),
    "comparison__sort": Module(_sort_sample, _sort_render),
    "comparison__closest": Module(_closest_sample, _closest_render, _closest_valid),
}
assert tuple(MODULES) == DM_MATH_MODULES
