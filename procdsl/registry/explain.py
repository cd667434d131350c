"""``procdsl explain NAME``: what a setting, key, call, parameter or word means — from the registry.

``NAME`` is a bare name (every role it has is shown: ``batch`` is a curriculum setting and a
phase key), a name inside a block (``runtime.log_every``, ``phase.mix``, ``transfer.keep``), or
a call's parameter (``dyck.k``, ``adamw.lr``).

>>> print(explain("adamw.lr"))
lr — parameter of adamw
  number · default: 0.0005 · range: > 0
  peak learning rate
>>> print(explain("runtime.log_every").splitlines()[0])
log_every — runtime setting
>>> [line for line in explain("batch").splitlines() if " — " in line]
['batch — curriculum setting', 'batch — phase key']
>>> explain("dyk")
Traceback (most recent call last):
  ...
procdsl.registry.explain.Unknown: nothing is called `dyk`; did you mean `dyck`?
"""

from __future__ import annotations

from procdsl.registry.items import Item, Param

#: ``BLOCK.NAME``: the block's word and the registry role it means
BLOCKS = {
    "curriculum": "curriculum setting",
    "runtime": "runtime setting",
    "phase": "phase key",
    "phases": "phase key",
    "transfer": "transfer key",
}


class Unknown(LookupError):
    """No registry entry has the name; the message suggests the closest one."""


def _item_text(item: Item) -> str:
    lines = [f"{item.name} — {item.category}"]
    facts = " · ".join(
        x
        for x in (
            item.type,
            f"default: {item.default}" if item.default else "",
            f"range: {item.range}" if item.range else "",
        )
        if x
    )
    if facts:
        lines.append("  " + facts)
    lines.append("  " + item.doc)
    if item.callable:
        lines.append("  " + item.signature())
        lines += [f"    {p.name}: {p.facts(code=False)} — {p.doc}" for p in item.params]
    return "\n".join(lines)


def _param_text(item: Item, param: Param) -> str:
    return "\n".join(
        [f"{param.name} — parameter of {item.name}", "  " + param.facts(code=False), "  " + param.doc]
    )


def explain(name: str) -> str:
    """The registry's entries for ``name`` as plain text (module docstring); :class:`Unknown` if none."""
    from procdsl.compiler.suggest import did_you_mean
    from procdsl.registry.lookup import ITEMS

    head, _, tail = name.strip().partition(".")
    if tail and head in BLOCKS:
        found = [i for i in ITEMS if i.category == BLOCKS[head] and i.name == tail]
        if found:
            return "\n\n".join(_item_text(i) for i in found)
        raise Unknown(
            f"no {BLOCKS[head]} is called `{tail}`"
            + _suffix(did_you_mean(tail, [i.name for i in ITEMS if i.category == BLOCKS[head]]))
        )
    if tail:
        calls = [i for i in ITEMS if i.callable and i.name == head]
        if not calls:
            raise Unknown(
                f"no call is called `{head}`"
                + _suffix(did_you_mean(head, [i.name for i in ITEMS if i.callable]))
            )
        texts = [_param_text(i, p) for i in calls for p in i.params if p.name == tail]
        if texts:
            return "\n\n".join(texts)
        raise Unknown(
            f"`{head}` has no parameter `{tail}`"
            + _suffix(did_you_mean(tail, [p.name for i in calls for p in i.params]))
        )
    found = [i for i in ITEMS if i.name == head]
    if not found:
        raise Unknown(f"nothing is called `{head}`" + _suffix(did_you_mean(head, [i.name for i in ITEMS])))
    return "\n\n".join(_item_text(i) for i in found)


def _suffix(suggestion: str | None) -> str:
    return f"; {suggestion}" if suggestion else ""
