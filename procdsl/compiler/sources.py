"""``rule`` and ``source`` definitions → rule chains and validated source models.

A rule expression is a built-in rule, a user rule, or a ``>>`` chain of unary ones; it
flattens to a tuple of built-in names. ``task(RULE, …)`` and the short form ``RULE(…)`` build
the same :class:`~procdsl.plan.sources.TaskSource`.

>>> from procdsl.compiler import compile_text
>>> src = 'rule sorted_set = set >> sort\\nsource s = task(sorted_set, length=4..8)\\nsource t = sort(vocab=10)'
>>> r = compile_text(src, "lib.curr")
>>> r.sources["s"].rule, r.sources["s"].length, r.sources["t"].rule
(('set', 'sort'), Range(kind='range', low=4, high=8), ('sort',))
"""

from __future__ import annotations

import os
from typing import Optional

from procdsl.compiler.scope import Scope
from procdsl.compiler.suggest import did_you_mean, one_of
from procdsl.compiler.values import Reader, describe
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.plan.sources import (
    OTHER_RULES,
    RULES,
    SOURCE_KINDS,
    UNARY_RULES,
    HfSource,
    SourceBase,
    TaskSource,
)

#: source parameters that are file paths, resolved against the .curr file's directory
PATH_FIELDS = {"jsonl": "path", "text": "path", "parquet": "path"}


class RuleResolver:
    """Flattens rule expressions to chains of built-in rules, reporting E102/E207."""

    def __init__(self, scope: Scope, reader: Reader):
        self.scope, self.reader = scope, reader
        self._cache: dict[str, Optional[tuple[str, ...]]] = {}
        self._active: list[str] = []

    def known(self) -> list[str]:
        return list(RULES) + list(self.scope.rules)

    def chain(self, expr: n.Expr) -> Optional[tuple[str, ...]]:
        expr = self.reader.resolve(expr)
        if isinstance(expr, n.Compose):
            parts = [self.chain(p) for p in expr.parts]
            chains = [p for p in parts if p is not None]
            if len(chains) < len(parts):
                return None
            ok = True
            for part_expr, part in zip(expr.parts, chains):
                if len(part) == 1 and part[0] in OTHER_RULES:
                    rule = part[0]
                    self.reader.error(
                        codes.NOT_COMPOSABLE,
                        f"`{rule}` cannot be composed with `>>`: it is {OTHER_RULES[rule]}",
                        part_expr.span,
                        help=f"only unary rules compose ({one_of(UNARY_RULES)}); use `task({rule}, …)` on its own",
                    )
                    ok = False
            return tuple(r for p in chains for r in p) if ok else None
        if not isinstance(expr, n.Name):
            self.reader.error(
                codes.WRONG_TYPE,
                f"expected a rule, found {describe(expr)}",
                expr.span,
                help=f"rules are {one_of(RULES)} or a `rule` you define",
            )
            return None
        if expr.name in self.scope.rules:
            return self._user_rule(expr.name)
        if expr.name in RULES:
            return (expr.name,)
        self.reader.error(
            codes.UNDEFINED_RULE,
            f"undefined rule `{expr.name}`",
            expr.span,
            help=did_you_mean(expr.name, self.known()) or f"rules are {one_of(self.known())}",
        )
        return None

    def _user_rule(self, name: str) -> Optional[tuple[str, ...]]:
        if name in self._cache:
            return self._cache[name]
        definition = self.scope.rules[name]
        if name in self._active:
            self.reader.error(
                codes.SELF_REFERENCE, f"rule `{name}` is defined in terms of itself", definition.name_span
            )
            return None
        self._active.append(name)
        try:
            self._cache[name] = self.chain(definition.value)
        finally:
            self._active.pop()
        return self._cache[name]


def build_source(definition: n.Definition, rules: RuleResolver, reader: Reader) -> Optional[SourceBase]:
    """The validated model of ``source NAME = CALL``, or None after reporting why not."""
    call = reader.resolve(definition.value)
    if not isinstance(call, n.Call):
        reader.error(
            codes.WRONG_TYPE,
            f"source `{definition.name}` must be a call such as `dyck(k=64)`, found {describe(call)}",
            call.span,
        )
        return None
    kinds = [k for k in SOURCE_KINDS if k != "task"] + ["task"] + rules.known()
    if call.name == "task":
        if not call.args:
            reader.error(
                codes.MISSING_REQUIRED,
                "`task` needs a rule as its first argument",
                call.span,
                help="write e.g. `task(sort, length=64)`",
            )
            return None
        chain = rules.chain(call.args[0])
        if chain is None:
            return None
        rest = n.Call(call.name, call.name_span, call.args[1:], call.kwargs, call.span)
        return reader.bind(rest, TaskSource, "task", skip=("kind", "rule"), extra={"rule": chain})
    if call.name in RULES or call.name in rules.scope.rules:
        chain = rules.chain(n.Name(call.name, call.name_span))
        if chain is None:
            return None
        return reader.bind(call, TaskSource, "task", skip=("kind", "rule"), extra={"rule": chain})
    model = SOURCE_KINDS.get(call.name)
    if model is None:
        reader.error(
            codes.UNKNOWN_KIND,
            f"unknown source kind `{call.name}`",
            call.name_span,
            help=did_you_mean(call.name, kinds) or f"sources are {one_of(kinds)}",
        )
        return None
    built = reader.bind(call, model, call.name, positional=model.positional)
    if built is None:
        return None
    base = os.path.dirname(os.path.abspath(definition.span.file))
    resolve = lambda path: os.path.normpath(os.path.join(base, path))  # noqa: E731
    if call.name in PATH_FIELDS:
        field = PATH_FIELDS[call.name]
        built = built.model_copy(update={field: resolve(getattr(built, field))})
    if isinstance(built, HfSource) and built.data_files:  # local files behind `hf("json", data_files=[…])`
        built = built.model_copy(update={"data_files": tuple(resolve(p) for p in built.data_files)})
    return built
