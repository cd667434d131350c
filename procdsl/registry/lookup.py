"""Finding registry entries by name and role.

A name can mean different things in different places (``gpt2`` is a model and a tokenizer,
``batch`` a curriculum setting and a phase key), so lookups name the roles they accept, in order.

>>> find("gpt2", "tokenizer").doc
"GPT-2's byte-level BPE (50,257 tokens), shipped offline"
>>> find("gpt2", "model", "tokenizer").category
'model'
>>> [i.name for i in category("schedule")]
['constant', 'cosine', 'linear', 'wsd']
"""

from __future__ import annotations

from typing import Optional

from procdsl.registry.calls import CALLS
from procdsl.registry.items import Item
from procdsl.registry.settings import KEYS
from procdsl.registry.words import WORDS

ITEMS: tuple[Item, ...] = tuple(item for table in KEYS.values() for item in table) + CALLS + WORDS

_BY_CATEGORY: dict[str, list[Item]] = {}
for _item in ITEMS:
    _BY_CATEGORY.setdefault(_item.category, []).append(_item)


def category(name: str) -> tuple[Item, ...]:
    """Every item of one role (``"schedule"``, ``"phase key"``, …), in registry order."""
    return tuple(_BY_CATEGORY.get(name, ()))


def find(name: str, *categories: str) -> Optional[Item]:
    """The first item called ``name`` in the first of ``categories`` that has one."""
    for wanted in categories:
        for item in _BY_CATEGORY.get(wanted, ()):
            if item.name == name:
                return item
    return None
