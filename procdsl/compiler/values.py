"""Reading typed values out of expressions, with a diagnostic (and a span) for each mistake.

A :class:`Reader` resolves ``let`` names, then checks that an expression is what a setting
needs. Every reader returns ``None`` after reporting an error, so elaboration goes on and all
errors of a file are reported together.

>>> from procdsl.lang.nodes import Number, Name
>>> from procdsl.lang.diagnostics import Span
>>> r = Reader({})
>>> r.integer(Number(5, "5", Span.point("f")), "steps", minimum=1)
5
>>> r.integer(Number(-5, "-5", Span.point("f")), "steps", minimum=1) is None, r.diagnostics[0].code
(True, 'E202')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, TypeVar

from pydantic import BaseModel, ValidationError

from procdsl.compiler.suggest import did_you_mean, one_of
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Diagnostic, Span
from procdsl.limits import field_maximum, maximum_of
from procdsl.plan.base import Ramp, Range, is_tunable

_KIND_WORDS = {
    n.Number: "a number",
    n.Percent: "a percentage",
    n.Quantity: "a quantity",
    n.String: "a string",
    n.Name: "a name",
    n.RangeExpr: "a range",
    n.ListExpr: "a list",
    n.TupleExpr: "a tuple",
    n.MapExpr: "a map",
    n.Call: "a call",
    n.Compose: "a rule composition",
}


def _show(number: float) -> str:
    """A bound as written in messages: whole numbers in full (``9223372036854775807``)."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def describe(expr: n.Expr) -> str:
    """What an expression is, for "expected X, found Y" messages."""
    if isinstance(expr, n.Call) and expr.name == "ramp":
        return "a ramp"
    return _KIND_WORDS.get(type(expr), "a value")


def expr_text(expr: n.Expr) -> str:
    """A short source-like rendering of an expression, for messages."""
    from procdsl.lang.fmt import format_expr  # the formatter owns the canonical spelling

    return format_expr(expr)


M = TypeVar("M", bound=BaseModel)


class Reader:
    def __init__(self, lets: dict[str, n.Definition], diagnostics: Optional[list[Diagnostic]] = None):
        self.lets = lets
        self.diagnostics: list[Diagnostic] = diagnostics if diagnostics is not None else []
        self._resolved: dict[str, n.Expr] = {}  # let name -> its final value

    # ------------------------------------------------------------------------------ basics
    def error(self, code: str, message: str, span: Span, help: Optional[str] = None, notes=()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, help=help, notes=tuple(notes)))

    def resolve(self, expr: n.Expr) -> n.Expr:
        """Follow ``let`` names to their values (lets may refer to lets).

        Iterative and memoised, so a chain of thousands of lets costs its length once.
        """
        chain: dict[str, None] = {}  # the names followed, in order (a dict: O(1) membership)
        while isinstance(expr, n.Name) and expr.name in self.lets:
            if expr.name in self._resolved:
                expr = self._resolved[expr.name]
                break
            if expr.name in chain:
                self.error(
                    codes.SELF_REFERENCE,
                    f"let `{expr.name}` refers to itself",
                    expr.span,
                    help="a let must end in a value, not loop back to its own name",
                )
                return n.String("", expr.span)
            chain[expr.name] = None
            expr = self.lets[expr.name].value
        for name in chain:
            self._resolved[name] = expr
        return expr

    def unknown(self, what: str, name: str, span: Span, allowed: Iterable[str]) -> None:
        """E104 for a key or word outside ``allowed``, with the closest spelling or the list."""
        allowed = tuple(allowed)
        self.error(
            codes.UNKNOWN_KEY,
            f"unknown {what} `{name}`",
            span,
            help=did_you_mean(name, allowed) or f"use {one_of(allowed)}",
        )

    def undefined_source(self, name: str, span: Span, sources: Iterable[str], where: str) -> None:
        """E101 for a source name that no `source` defines, with the closest spelling."""
        self.error(
            codes.UNDEFINED_SOURCE,
            f"undefined source `{name}` in {where}",
            span,
            help=did_you_mean(name, sources) or "define it with `source NAME = …`",
        )

    def expected(self, what: str, wanted: str, expr: n.Expr, help: Optional[str] = None) -> None:
        self.error(
            codes.WRONG_TYPE, f"`{what}` expects {wanted}, found {describe(expr)}", expr.span, help=help
        )

    # ------------------------------------------------------------------------ scalar kinds
    def number(
        self,
        expr: n.Expr,
        what: str,
        *,
        minimum: Optional[float] = None,
        positive: bool = False,
        maximum: Optional[float] = None,
    ) -> Optional[float]:
        expr = self.resolve(expr)
        if not isinstance(expr, (n.Number, n.Percent)):
            self.expected(what, "a number", expr)
            return None
        value = expr.value
        if positive and value <= 0:
            self.error(codes.BELOW_MINIMUM, f"`{what}` must be positive, got {expr.text}", expr.span)
            return None
        if minimum is not None and value < minimum:
            self.error(
                codes.BELOW_MINIMUM, f"`{what}` must be at least {minimum:g}, got {expr.text}", expr.span
            )
            return None
        if maximum is not None and value > maximum:
            self.error(
                codes.OUT_OF_RANGE, f"`{what}` must be at most {_show(maximum)}, got {expr.text}", expr.span
            )
            return None
        if value != value or value in (float("inf"), float("-inf")):
            self.error(codes.WRONG_TYPE, f"`{what}` is not a finite number", expr.span)
            return None
        return value

    def integer(self, expr: n.Expr, what: str, *, minimum: Optional[int] = None) -> Optional[int]:
        """A whole number, at most the stated maximum of ``what`` (:mod:`procdsl.limits`, int64 at most)."""
        resolved = self.resolve(expr)
        value = self.number(resolved, what, minimum=minimum, maximum=maximum_of(what))
        if value is None:
            return None
        assert isinstance(resolved, (n.Number, n.Percent))  # what number() reads
        if float(value) != int(value):
            self.error(
                codes.WRONG_TYPE, f"`{what}` must be a whole number, got {resolved.text}", resolved.span
            )
            return None
        return int(value)

    def count(self, expr: n.Expr, what: str, unit: str, *, minimum: int = 1) -> Optional[int]:
        """A whole number, written bare (``2501``) or with its unit (``2501 steps``)."""
        expr = self.resolve(expr)
        if isinstance(expr, n.Quantity):
            if expr.unit != unit:
                self.error(
                    codes.WRONG_TYPE,
                    f"`{what}` is counted in {unit}, not {expr.unit}",
                    expr.span,
                    help=f"write `{what} = {expr.text.split()[0]}` or use the `{expr.unit}` key",
                )
                return None
            expr = n.Number(expr.value, expr.text, expr.span)
        return self.integer(expr, what, minimum=minimum)

    def fraction(self, expr: n.Expr, what: str) -> Optional[float]:
        """A share in [0, 1], written as a percentage (``10%``) or a fraction (``0.1``)."""
        value = self.number(expr, what, minimum=0)
        if value is not None and value > 1:
            expr = self.resolve(expr)
            assert isinstance(expr, (n.Number, n.Percent))  # what number() reads
            self.error(codes.OUT_OF_RANGE, f"`{what}` must be at most 100%, got {expr.text}", expr.span)
            return None
        return value

    def string(self, expr: n.Expr, what: str) -> Optional[str]:
        expr = self.resolve(expr)
        if not isinstance(expr, n.String):
            self.expected(what, "a string", expr)
            return None
        return expr.value

    def boolean(self, expr: Optional[n.Expr], what: str) -> Optional[bool]:
        if expr is None:  # a bare flag
            return True
        word = self.word(expr, what, ("true", "false"))
        return None if word is None else word == "true"

    def word(self, expr: n.Expr, what: str, allowed: Sequence[str]) -> Optional[str]:
        """One of a fixed set of bare words (E206 otherwise, with a suggestion)."""
        expr = self.resolve(expr)
        if isinstance(expr, n.Call) and expr.name in allowed and not expr.args and not expr.kwargs:
            return expr.name
        if not isinstance(expr, n.Name):
            self.expected(what, one_of(allowed), expr)
            return None
        if expr.name not in allowed:
            self.error(
                codes.INVALID_WORD,
                f"`{expr.name}` is not a valid `{what}`",
                expr.span,
                help=did_you_mean(expr.name, allowed) or f"use {one_of(allowed)}",
            )
            return None
        return expr.name

    def names(
        self, expr: n.Expr, what: str, allowed: Optional[Iterable[str]] = None
    ) -> Optional[list[tuple[str, Span]]]:
        """A list of bare names (``[attn, mlp]``); a single name is a list of one."""
        expr = self.resolve(expr)
        items = expr.items if isinstance(expr, (n.ListExpr, n.TupleExpr)) else (expr,)
        out: list[tuple[str, Span]] = []
        allowed = tuple(allowed) if allowed is not None else None
        for item in items:
            item = self.resolve(item)
            if not isinstance(item, n.Name):
                self.expected(what, "a list of names", item)
                return None
            if allowed is not None and item.name not in allowed:
                self.unknown(what, item.name, item.span, allowed)
                return None
            out.append((item.name, item.span))
        return out

    # ---------------------------------------------------------------------- python values
    def python(self, expr: n.Expr) -> Any:
        """The plain value of an expression, for pydantic: ranges and ramps become plan types."""
        expr = self.resolve(expr)
        if isinstance(expr, (n.Number, n.Percent)):
            return expr.value
        if isinstance(expr, n.Quantity):
            return expr.value
        if isinstance(expr, n.String):
            return expr.value
        if isinstance(expr, n.Name):
            return {"true": True, "false": False}.get(expr.name, expr.name)
        if isinstance(expr, n.RangeExpr):
            return Range(low=expr.low.value, high=expr.high.value)
        if isinstance(expr, (n.ListExpr, n.TupleExpr)):
            return tuple(self.python(i) for i in expr.items)
        if isinstance(expr, n.MapExpr):
            return {e.key: self.python(e.value) for e in expr.entries}
        if isinstance(expr, n.Call) and expr.name == "ramp":
            return self.ramp(expr)
        if isinstance(expr, n.Call):
            return {"kind": expr.name, **{k.name: self.python(k.value) for k in expr.kwargs}}
        return None

    def ramp(self, call: n.Call) -> Optional[Ramp]:
        if len(call.args) != 2 or call.kwargs:
            self.error(codes.WRONG_ARITY, "`ramp` takes exactly two numbers: ramp(start, end)", call.span)
            return None
        start, end = (self.resolve(a) for a in call.args)
        if not (isinstance(start, n.Number) and isinstance(end, n.Number)):
            self.error(codes.WRONG_TYPE, "`ramp` ends must be numbers", call.span)
            return None
        return Ramp(start=start.value, end=end.value)

    # ------------------------------------------------------------------------------ calls
    def bind(
        self,
        call: n.Call,
        model: type[M],
        what: str,
        positional: Sequence[str] = (),
        skip: Sequence[str] = ("kind",),
        extra: Optional[dict[str, Any]] = None,
        defaults: Optional[dict[str, Any]] = None,
    ) -> Optional[M]:
        """Build ``model`` from a call's arguments; every mistake becomes a spanned diagnostic.

        ``positional`` names the fields positional arguments fill, ``extra`` adds values the
        call does not spell (e.g. ``rule`` of a short-form task), ``defaults`` fill fields the
        call leaves out.
        """
        fields = [f for f in model.model_fields if f not in skip]
        values: dict[str, Any] = dict(defaults or {})
        spans: dict[str, n.Expr] = {}
        ok = True
        if len(call.args) > len(positional):
            extra_arg = call.args[len(positional)]
            takes = f"takes {len(positional)} positional argument{'s' if len(positional) != 1 else ''}"
            self.error(
                codes.WRONG_ARITY,
                f"`{call.name}` {takes}, got {len(call.args)}",
                extra_arg.span,
                help=f"name the parameter: {one_of(fields)}" if fields else f"write `{call.name}()`",
            )
            ok = False
        for name, arg in zip(positional, call.args):
            values[name], spans[name] = self.python(arg), arg
        for kw in call.kwargs:
            if kw.name not in fields:
                self.error(
                    codes.UNKNOWN_PARAMETER,
                    f"`{call.name}` has no parameter `{kw.name}`",
                    kw.name_span,
                    help=did_you_mean(kw.name, fields)
                    or (
                        f"its parameters are {one_of(fields)}"
                        if fields
                        else f"`{call.name}` takes no parameters"
                    ),
                )
                ok = False
                continue
            if kw.name in spans:
                self.error(codes.WRONG_ARITY, f"`{kw.name}` is given twice", kw.name_span)
                ok = False
                continue
            values[kw.name], spans[kw.name] = self.python(kw.value), kw.value
        if not ok:
            return None
        for name, value in values.items():
            if (
                isinstance(value, (Range, Ramp))
                and name in model.model_fields
                and not is_tunable(model, name)
            ):
                form = "a range" if isinstance(value, Range) else "a ramp"
                self.error(
                    codes.CANNOT_RAMP,
                    f"`{name}` of `{call.name}` cannot take {form}",
                    spans[name].span,
                    help=f"give `{name}` one fixed value",
                )
                ok = False
        if not ok:
            return None
        for name, arg in spans.items():
            ok = self._within_maximum(call, name, values[name], arg) and ok
        if not ok:
            return None
        try:
            return model.model_validate({**values, **(extra or {})})
        except ValidationError as exc:
            self._report_validation(exc, call, spans, what)
            return None

    def _within_maximum(self, call: n.Call, name: str, value: Any, arg: n.Expr) -> bool:
        """E203 for an argument beyond its stated maximum (:data:`procdsl.limits.FIELD_MAXIMUM`)."""
        limit = field_maximum(name)
        largest = (
            max(value.low, value.high)
            if isinstance(value, Range)
            else (max(value.start, value.end) if isinstance(value, Ramp) else value)
        )
        if (
            limit is None
            or not isinstance(largest, (int, float))
            or isinstance(largest, bool)
            or largest <= limit
        ):
            return True
        self.error(
            codes.OUT_OF_RANGE,
            f"`{name}` of `{call.name}` must be at most {_show(limit)}, got {expr_text(self.resolve(arg))}",
            arg.span,
            help="the stated maximum (README, Limits): no run could take more",
        )
        return False

    def _report_validation(
        self, exc: ValidationError, call: n.Call, spans: dict[str, n.Expr], what: str
    ) -> None:
        reported: set[str] = set()
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, str)]
            field = next((p for p in loc if p in spans), None)
            if (field or "") in reported:
                continue  # a union reports once per member; one message per argument is enough
            reported.add(field or "")
            span = spans[field].span if field else call.span
            message = err["msg"].removeprefix("Value error, ")
            kind = err["type"]
            if kind == "missing":
                missing = loc[0] if loc else "?"
                self.error(
                    codes.MISSING_REQUIRED,
                    f"`{call.name}` needs `{missing}`",
                    call.span,
                    help=f"add `{missing}=…` to the call",
                )
                continue
            code = (
                codes.OUT_OF_RANGE
                if kind
                in (
                    "value_error",
                    "greater_than",
                    "greater_than_equal",
                    "less_than",
                    "less_than_equal",
                    "too_short",
                    "too_long",
                )
                else codes.WRONG_TYPE
            )
            name = field or (loc[0] if loc else None)
            where = f"`{name}` for `{call.name}`" if name else f"`{call.name}(…)`"
            self.error(code, f"invalid {where}: {message[0].lower() + message[1:]}", span)
