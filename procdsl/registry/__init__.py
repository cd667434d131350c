"""The one registry of what a .curr file can say: settings and keys (:mod:`.settings`), calls with
their parameters (:mod:`.calls`), bare words (:mod:`.words`). Hover, completion, ``procdsl plan
--help`` and ``docs/reference.md`` (:mod:`.render`) all read it; :mod:`.lookup` finds an entry.

Importing this package is free: each module is imported where it is needed, so ``plan --help``
reads the settings without loading pydantic models.
"""
