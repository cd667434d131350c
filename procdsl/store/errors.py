"""The token store's one exception: a :class:`StoreError` names the source and what to run.

It is a :class:`procdsl.data.DataError`, so every caller that reports bad data reports a bad
store the same way (``error: …``, exit 1), never with a traceback:

>>> err = StoreError("c4 (train)", "was prepared with tokenizer bytes, the plan uses gpt2")
>>> str(err)
'token store of source c4 (train): was prepared with tokenizer bytes, the plan uses gpt2; run `procdsl prepare FILE.curr`'
>>> err.source
'c4 (train)'
"""

from __future__ import annotations

from procdsl.data.errors import DataError

#: what to run, unless the caller knows the .curr file
PREPARE_HINT = "procdsl prepare FILE.curr"


class StoreError(DataError):
    """A token store is missing, stale, corrupt, or could not be written."""

    def __init__(self, source: str, message: str, *, hint: str | None = PREPARE_HINT):
        self.source = source
        tail = f"; run `{hint}`" if hint else ""
        super().__init__(f"token store of source {source}: {message}{tail}")
