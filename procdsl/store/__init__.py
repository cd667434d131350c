"""Token stores: a plan's data sources tokenized once into memory-mapped arrays (DESIGN.md §4).

``procdsl prepare FILE`` (:func:`prepare_plan`) writes, for every data source a plan reads
(each split it reads, each seed of a generated source), a store under the cache root
(``$PROCDSL_CACHE``, else ``$HF_HOME/procdsl``, else ``~/.cache/procdsl``)::

    store/<kind>-<split>-<key>/<tokenizer>-<tid>/
        source.json            what it is: source, split, seed, tokenizer, content, shards
        part-00000/            one per shard of the source, in order
            tokens.bin         every document's ids then EOS (uint16 if the vocabulary fits, else uint32)
            ends.bin           int64: where each document ends in tokens.bin
            mask.bin           uint8 targets (sources with answers only: dm_math)
            progress.json      what is committed (a killed preparer resumes from here)
        manifest.json          written last: the parts and counts a reader may use

:class:`TokenStore` reads one: document ``i`` in O(1) from the offsets, memory-map slices, and
every check a run needs before it starts (prepared, same tokenizer, same files, big enough,
intact). ``procdsl.stream.units.StoreUnits`` turns a store into the same units the streaming
path reads. One module per job:

==========  ===================================================================
needs       which stores a plan reads, and a safe bound on the tokens of each
identity    cache root, store directories, tokenizer identity, content fingerprints
shards      a source's documents in shards (files; an hf dataset's own shards)
encode      documents → token arrays on worker processes, in order
writer      one part: chunked appends, atomic commits, resume, a full disk
manifest    atomic JSON files
lock        flock on a store or a part, for processes sharing a file system
progress    the progress line (tokens/s, ETA)
prepare     all of it, for a plan
reader      :class:`TokenStore`
==========  ===================================================================

>>> import os, tempfile
>>> from procdsl.compiler import compile_text
>>> d = tempfile.mkdtemp()
>>> _ = open(os.path.join(d, "a.jsonl"), "w").write("".join('{"text": "doc %d"}\\n' % i for i in range(99)))
>>> plan = compile_text('''curriculum s { model = gpt2(layers=1, heads=1, dim=8)
...   context = 8  batch = 2  tokenizer = bytes  source a = jsonl("a.jsonl")
...   phase p { steps = 2  mix = { a: 100% } } }''', os.path.join(d, "s.curr")).plan
>>> [p.written > 0 for p in prepare_plan(plan, cache_dir=d, progress=False)]
[True]
>>> [p.written for p in prepare_plan(plan, cache_dir=d, progress=False)]   # again: a no-op
[0]
>>> store = TokenStore.open(plan, "a", "train", cache_dir=d)
>>> store.documents, store.exhausted, store.n_tokens > plan_needs(plan)[0].tokens
(12, False, True)
"""

from procdsl.store.errors import StoreError
from procdsl.store.identity import cache_root
from procdsl.store.needs import Need, plan_needs
from procdsl.store.prepare import Prepared, prepare_plan
from procdsl.store.reader import TokenStore

__all__ = ["Need", "Prepared", "StoreError", "TokenStore", "cache_root", "plan_needs", "prepare_plan"]
