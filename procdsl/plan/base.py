"""Building blocks shared by every plan model: the frozen base and tunable generator parameters.

A generator parameter that takes a number accepts three forms (DESIGN.md §1):

- a fixed value: ``64``
- a range, sampled uniformly per example: ``8..64`` -> ``Range(low=8, high=64)``
- a ramp, linear over the phase: ``ramp(8, 64)`` -> ``Ramp(start=8, end=64)``

A field states its type as an ``Annotated`` alias (visible to a type checker) and its limits as
:class:`Bounds`, which pydantic applies as a validator:

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Annotated[TunableInt, Bounds(ge=1)]).validate_python({"kind": "range", "low": 8, "high": 64})
Range(kind='range', low=8, high=64)
>>> TypeAdapter(Annotated[TunableInt, Bounds(ge=1)]).validate_python(0)
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
  Value error, must be at least 1, got 0 ...
...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema


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


TunableInt = Annotated[Union[int, Range, Ramp], TUNABLE]
"""A whole-number parameter that also takes a Range or a Ramp; its limits go in :class:`Bounds`."""
TunableFloat = Annotated[Union[float, Range, Ramp], TUNABLE]
"""A real parameter that also takes a Range or a Ramp; its limits go in :class:`Bounds`."""


@dataclass(frozen=True)
class Bounds:
    """The bounds of a tunable or fixed parameter: ``Annotated[TunableInt, Bounds(ge=1)]``,
    ``Annotated[int, Bounds(ge=3)]``. pydantic applies them as a validator (each end of a range or
    ramp within bounds, whole numbers for ``int``); kept as metadata, the registry (hover,
    reference docs) states the same limits the validator enforces."""

    ge: Number | None = None
    le: Number | None = None
    even: bool = False

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        kind = source if source in (int, float) else get_args(source)[0]
        return core_schema.no_info_after_validator_function(
            _bounded(kind, self.ge, self.le, self.even), handler(source)
        )


def is_tunable(model: type[BaseModel], field: str) -> bool:
    """Whether ``model.field`` admits a Range or Ramp (the compiler's E204 check asks this).

    >>> class P(Frozen):
    ...     length: Annotated[TunableInt, Bounds(ge=1)] = 64
    ...     vocab: Annotated[int, Bounds(ge=3)] = 100
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
