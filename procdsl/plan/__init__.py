"""The plan: a frozen, validated, hashed description of a run (DESIGN.md §2).

>>> from procdsl.plan import Plan
>>> sorted(Plan.model_fields)[:5]
['batch', 'budget', 'context', 'hash', 'model']
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from procdsl.plan.hashing import canonical_json, plan_hash, with_hash
from procdsl.plan.model import (
    COMPONENTS,
    AdamW,
    BpeTokenizer,
    BytesTokenizer,
    CharTokenizer,
    Constant,
    ContinueOptimizer,
    Cosine,
    Eval,
    FileTokenizer,
    Fsdp,
    Gpt2Model,
    Gpt2Tokenizer,
    Linear,
    LlamaModel,
    LmEval,
    MixRamp,
    Phase,
    Plan,
    Runtime,
    Transfer,
    Wsd,
)
from procdsl.plan.sources import SOURCE_KINDS


def to_json(plan: Plan, indent: int = 2) -> str:
    """The plan as pretty JSON (keys in schema order), as ``procdsl plan --json`` prints it."""
    return json.dumps(plan.model_dump(mode="json"), indent=indent, ensure_ascii=False)


def plans_json(plans: list[Plan]) -> str:
    """A file's plans as ``procdsl plan --json`` prints them: the plan, or a sweep's list."""
    if len(plans) == 1:
        return to_json(plans[0])
    return "[\n" + ",\n".join(to_json(p) for p in plans) + "\n]"


def load_plan(path: str | Path) -> Plan:
    """Read a plan.json back, checking that its hash still matches its content.

    Anything else (``[]``, truncated JSON, bad UTF-8, a plan of another schema) is a
    ``ValueError`` naming the file, never a validation dump or a decoding traceback.
    """
    try:
        plan = Plan.model_validate_json(Path(path).read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        raise ValueError(f"{path}: not a procdsl plan ({first['msg']} at {where})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    if plan.hash and plan.hash != plan_hash(plan):
        raise ValueError(f"{path}: plan hash does not match its content (edited by hand?)")
    return plan


__all__ = [
    "COMPONENTS",
    "SOURCE_KINDS",
    "AdamW",
    "BpeTokenizer",
    "BytesTokenizer",
    "CharTokenizer",
    "Constant",
    "ContinueOptimizer",
    "Cosine",
    "Eval",
    "FileTokenizer",
    "Fsdp",
    "Gpt2Model",
    "Gpt2Tokenizer",
    "Linear",
    "LlamaModel",
    "LmEval",
    "MixRamp",
    "Phase",
    "Plan",
    "Runtime",
    "Transfer",
    "Wsd",
    "canonical_json",
    "load_plan",
    "plan_hash",
    "plans_json",
    "to_json",
    "with_hash",
]
