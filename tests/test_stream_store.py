"""The stream on a prepared token store: the same global batches as streaming, on any world size,
after any resume, in flat memory.

The layout of a step is global and only a rank's own rows are materialised, so the rows of all
ranks concatenated must be the single-rank batch exactly — on the store and on the streaming
path, which must agree with each other too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from procdsl.compiler import compile_text
from procdsl.store import StoreError, prepare_plan
from procdsl.stream import PhaseStream
from procdsl.stream.bench import rss_mb

FIELDS = ("tokens", "targets", "source", "starts", "positions", "document")


def write_docs(path, count: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(count):
            size = int(rng.integers(300, 900)) if i % 5 == 0 else int(rng.integers(5, 120))
            f.write(json.dumps({"text": f"doc-{i}: " + "ab c" * (size // 4)}) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A packed mixed phase (text + sort + fixed-length dyck) and a prepared store for it."""
    folder = tmp_path_factory.mktemp("store")
    docs = write_docs(folder / "docs.jsonl", 400)
    plan = compile_text(
        f"""curriculum s {{
  model = gpt2(layers=1, heads=1, dim=8)
  tokenizer = bytes
  context = 64
  batch = 8
  source text = jsonl("{docs}")
  source srt  = sort(length=4..20, vocab=20)
  source dy   = dyck(k=3, length=32)
  phase p {{ steps = 1200  mix = {{ text: 50%, srt: 30%, dy: 20% }} }}
}}""",
        str(folder / "s.curr"),
    ).plan
    root = str(folder / "cache")
    prepare_plan(plan, cache_dir=root, progress=False)
    return plan, root


def take(stream, steps):
    it = iter(stream)
    return [next(it) for _ in range(steps)]


def assert_same(got, want, rows=slice(None)):
    for field in FIELDS:
        assert (getattr(got, field) == getattr(want, field)[rows]).all(), field
    assert got.source_tokens == want.source_tokens and got.pad_tokens == want.pad_tokens


def test_store_and_streaming_give_the_same_batches(stored):
    plan, root = stored
    for got, want in zip(take(PhaseStream(plan, "p", store=root), 40), take(PhaseStream(plan, "p"), 40)):
        assert_same(got, want)


@pytest.mark.parametrize("store", [True, False], ids=["store", "streaming"])
def test_every_world_size_and_resume_gives_the_global_batch(stored, store):
    plan, root = stored
    where = root if store else None
    whole = take(PhaseStream(plan, "p", store=where), 40)
    rng = np.random.default_rng(7)
    for world in (2, 4, 8):
        rows = 8 // world
        start = int(rng.integers(1, 30))
        first = PhaseStream(plan, "p", store=where)
        take(first, start)
        state = json.loads(json.dumps(first.state_dict()))
        for rank in range(world):
            resumed = PhaseStream(plan, "p", rank=rank, world=world, store=where)
            resumed.load_state_dict(state)
            for got, want in zip(resumed, whole[start:]):
                assert_same(got, want, slice(rank * rows, (rank + 1) * rows))


def test_a_missing_store_names_what_to_run(stored, tmp_path):
    plan, _ = stored
    with pytest.raises(StoreError, match="procdsl prepare"):
        PhaseStream(plan, "p", store=str(tmp_path / "empty"))


@pytest.mark.slow
def test_memory_stays_flat_over_a_thousand_steps(stored):
    plan, root = stored
    stream = PhaseStream(plan, "p", rank=1, world=4, store=root)
    for _ in range(100):
        stream.next_batch()
    before = rss_mb()
    for _ in range(1000):
        stream.next_batch()
    assert rss_mb() - before < 20, "the stream keeps more than its current blocks"


RUN = """curriculum stored_run {
  seed    = 0
  model   = gpt2(layers=1, heads=2, dim=16)
  tokenizer = bytes
  context = 48
  batch   = 4
  source code = python_code()
  source s    = sort(length=3..9, vocab=10)
  source val  = python_code()
  phase p {
    steps = 6
    mix   = { code: 70%, s: 30% }
    eval every 3 steps { perplexity(val, batches=1) }
  }
}
"""


def test_a_run_prepares_the_store_and_trains_as_streaming_does(tmp_path, monkeypatch):
    """procdsl run prepares the store first and reads it; --stream reads the files as it goes:
    the same batches, hence bitwise the same losses."""
    pytest.importorskip("torchtitan")
    from procdsl.runtime.run import execute

    from procdsl.compiler import compile_file
    from procdsl.rundir import read_metrics
    from procdsl.store import TokenStore

    path = tmp_path / "run.curr"
    path.write_text(RUN)
    plan = compile_file(str(path)).plan
    monkeypatch.setenv("PROCDSL_CACHE", str(tmp_path / "cache"))
    losses = {}
    for mode in ("store", "stream"):
        monkeypatch.setenv("PROCDSL_DATA", mode)
        assert execute(plan, out=str(tmp_path / mode), device="cpu", claim=True)["status"] == "done"
        losses[mode] = [(r["kind"], r["loss"]) for r in read_metrics(str(tmp_path / mode))]
    assert TokenStore.open(plan, "code", "train", cache_dir=str(tmp_path / "cache")).documents > 0
    assert losses["store"] == losses["stream"]


def test_a_short_phase_never_reads_past_what_was_prepared(tmp_path):
    """The store holds what the plan can read (plus a step): the stream's read-ahead must stay
    within it however large its usual pull, to the last step and for every eval batch."""
    from procdsl.stream import EvalStream

    plan = compile_text(
        """curriculum tiny {
  model = gpt2(layers=1, heads=1, dim=8)
  tokenizer = bytes
  context = 32
  batch = 2
  source code = python_code()
  source val  = python_code()
  phase p { steps = 3  mix = { code: 100% }  eval every 3 steps { perplexity(val, batches=2) } }
}""",
        str(tmp_path / "t.curr"),
    ).plan
    root = str(tmp_path / "cache")
    prepare_plan(plan, cache_dir=root, progress=False)
    assert len(list(PhaseStream(plan, "p", store=root))) == 3
    assert len(list(EvalStream(plan, "val", 2, 32, 2, store=root))) == 2
