"""Building blocks shared by every plan model: the frozen base and tunable generator parameters.

A generator parameter that takes a number accepts three forms (DESIGN.md §1):

- a fixed value: ``64``
- a range, sampled uniformly per example: ``8..64`` -> ``Range(low=8, high=64)``
- a ramp, linear over the phase: ``ramp(8, 64)`` -> ``Ramp(start=8, end=64)``

>>> from pydantic import TypeAdapter
>>> TypeAdapter(tunable(int, ge=1)).validate_python({"kind": "range", "low": 8, "high": 64})
Range(kind='range', low=8, high=64)
>>> TypeAdapter(tunable(int, ge=1)).validate_python(0)
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
  Value error, must be at least 1, got 0 ...
...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base of every plan model: immutable, and unknown fields are an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Number = Union[int, float]


class Range(Frozen):
    """``low..high`` (inclusive): each example draws its own value uniformly."""

    kind: Literal["range"] = "range"
    low: Number
    high: Number


class Ramp(Frozen):
    """``ramp(start, end)``: the value moves linearly from start to end over the phase."""

    kind: Literal["ramp"] = "ramp"
    start: Number
    end: Number


Tunable = Union[Number, Range, Ramp]


def endpoints(value: Tunable) -> tuple[Number, ...]:
    """Every number a tunable value can take at its extremes.

    >>> endpoints(Range(low=2, high=9)), endpoints(7)
    ((2, 9), (7,))
    """
    if isinstance(value, Range):
        return (value.low, value.high)
    if isinstance(value, Ramp):
        return (value.start, value.end)
    return (value,)


def maximum(value: Tunable) -> Number:
    """The largest value a tunable parameter reaches (used for worst-case example sizes)."""
    return max(endpoints(value))


def minimum(value: Tunable) -> Number:
    """The smallest value a tunable parameter reaches."""
    return min(endpoints(value))


def _bounded(kind: type, ge: Number | None, le: Number | None, even: bool):
    def check(value: Any) -> Any:
        for end in endpoints(value):
            if kind is int and (isinstance(end, bool) or float(end) != int(end)):
                raise ValueError(f"must be a whole number, got {end}")
            if ge is not None and end < ge:
                raise ValueError(f"must be at least {ge}, got {end}")
            if le is not None and end > le:
                raise ValueError(f"must be at most {le}, got {end}")
            if even and int(end) % 2:
                raise ValueError(f"must be even, got {end}")
        if isinstance(value, Range) and value.low > value.high:
            raise ValueError(f"range {value.low}..{value.high} is empty: write the smaller end first")
        if kind is int:
            value = _as_int(value)
        return value

    return check


def _as_int(value: Tunable) -> Tunable:
    if isinstance(value, Range):
        return Range(low=int(value.low), high=int(value.high))
    if isinstance(value, Ramp):
        return Ramp(start=int(value.start), end=int(value.end))
    return int(value)


class _TunableMarker:
    """Metadata marking a field as tunable, so checks can tell it from a fixed-only field."""

    def __repr__(self) -> str:
        return "TUNABLE"


TUNABLE = _TunableMarker()


@dataclass(frozen=True)
class Bounds:
    """The bounds of a ``tunable``/``fixed`` parameter, kept as metadata so the registry
    (hover, reference docs) states the same limits the validator enforces."""

    ge: Number | None = None
    le: Number | None = None
    even: bool = False


def tunable(kind: type, *, ge: Number | None = None, le: Number | None = None, even: bool = False):
    """A parameter type accepting a fixed number, a Range or a Ramp, each end within bounds."""
    return Annotated[Union[kind, Range, Ramp], AfterValidator(_bounded(kind, ge, le, even)), TUNABLE,
                     Bounds(ge, le, even)]


def fixed(kind: type, *, ge: Number | None = None, le: Number | None = None, even: bool = False):
    """A parameter type accepting only a fixed number within bounds (no range, no ramp)."""
    return Annotated[kind, AfterValidator(_bounded(kind, ge, le, even)), Bounds(ge, le, even)]


def is_tunable(model: type[BaseModel], field: str) -> bool:
    """Whether ``model.field`` admits a Range or Ramp (the compiler's E204 check asks this).

    >>> class P(Frozen):
    ...     length: tunable(int, ge=1) = 64
    ...     vocab: fixed(int, ge=3) = 100
    >>> is_tunable(P, "length"), is_tunable(P, "vocab")
    (True, False)
    """
    info = model.model_fields[field]
    return TUNABLE in info.metadata or _marked(info.annotation)


def _marked(annotation: Any) -> bool:
    """Whether TUNABLE appears anywhere in a (possibly Optional-wrapped) annotation."""
    if TUNABLE in getattr(annotation, "__metadata__", ()):
        return True
    return any(_marked(arg) for arg in get_args(annotation))
