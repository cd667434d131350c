"""Canonical JSON and the plan hash.

The hash is the SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of every
field but ``hash`` itself, so equal plans hash equal whatever produced them — the compiler, an
override, or a plan.json read back from disk.

>>> canonical_json({"b": 1, "a": [1.5, "x"]})
'{"a":[1.5,"x"],"b":1}'
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from pydantic import BaseModel


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content(plan: BaseModel) -> dict:
    """The plan as JSON data, without its hash."""
    return plan.model_dump(mode="json", exclude={"hash"})


def plan_hash(plan: BaseModel) -> str:
    return hashlib.sha256(canonical_json(content(plan)).encode("utf-8")).hexdigest()


P = TypeVar("P", bound=BaseModel)


def with_hash(plan: P) -> P:
    """The same plan with ``hash`` filled in."""
    return plan.model_copy(update={"hash": plan_hash(plan)})
