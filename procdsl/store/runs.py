"""Where a run reads its data from: the token store (the default), or the files as it goes.

Torch-free, so that ``procdsl bench --pipeline`` follows the same rule as ``procdsl run``.

``procdsl run`` tokenizes every data source a plan reads into the token store before training
(``procdsl prepare``: idempotent, shared between the ranks and nodes through file locks, a
no-op when the store is complete) and the ranks read memory-mapped slices of it — what a
cluster run needs: a rank's data cost falls with the world size and resume is O(1).
``procdsl run --stream`` (``PROCDSL_DATA=stream``, inherited by every rank a launcher starts)
reads and tokenizes the files as the stream goes instead: no preparation, for quick runs.

>>> data_store({"PROCDSL_DATA": "stream"}) is None
True
>>> data_store({"PROCDSL_CACHE": "/tmp/c"})
'/tmp/c'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Optional

#: ``store`` (the default) or ``stream``; an environment variable so that every rank sees it
DATA_ENV = "PROCDSL_DATA"


def data_store(env: Mapping[str, str]) -> Optional[str]:
    """The token store's cache root to read from, or None to stream."""
    mode = env.get(DATA_ENV, "store")
    if mode not in ("store", "stream"):
        raise ValueError(f"{DATA_ENV}={mode!r}: use 'store' or 'stream'")
    if mode == "stream":
        return None
    from procdsl.store import cache_root

    return cache_root(env)


def prepare_stores(plan: Any, root: str, *, announce: bool) -> None:
    """Prepare what the plan's stores lack (every rank calls it; the locks share the work)."""
    from procdsl.store import plan_needs, prepare_plan

    if not plan_needs(plan):
        return
    prepare_plan(plan, cache_dir=root, progress=announce, stream=sys.stderr)
