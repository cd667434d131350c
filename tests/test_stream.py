"""The mixture stream: sharding, resume, shares, held-out separation, vocabulary, loss masks."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procdsl.compiler import compile_text
from procdsl.data import in_split
from procdsl.generators import GENERATORS, generate
from procdsl.plan.base import Range
from procdsl.plan.sources import DyckSource
from procdsl.stream import EvalStream, PhaseStream, PhaseVocab, Shares
from procdsl.stream.interleave import Interleave
from procdsl.stream.units import Cursor, LazyUnits, ProceduralUnits


def plan_of(body: str, *, context: int, batch: int, seed: int = 0):
    text = (
        f"curriculum t {{\n  seed = {seed}\n  model = gpt2(layers=1, heads=1, dim=8)\n"
        f"  tokenizer = bytes\n  context = {context}\n  batch = {batch}\n{body}\n}}\n"
    )
    result = compile_text(text, "t.curr")
    assert result.plan is not None, [str(d) for d in result.diagnostics]
    return result.plan


def write_docs(path, count: int, *, seed: int = 0, long_every: int = 5) -> str:
    """jsonl documents ``doc-N: …`` of varied lengths; every ``long_every``-th is long."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(count):
            size = int(rng.integers(300, 900)) if i % long_every == 0 else int(rng.integers(5, 120))
            f.write(json.dumps({"text": f"doc-{i}: " + "ab c" * (size // 4)}) + "\n")
    return str(path)


def take(stream, steps: int):
    it = iter(stream)
    return [next(it) for _ in range(steps)]


def flat(batches, field="tokens"):
    """A field of the unit stream: every row's units in order, padding left out."""
    return np.concatenate([getattr(b, field)[~b.padding] for b in batches])


@pytest.fixture
def mixed_plan(tmp_path):
    """Text (long documents chunked, epochs roll over), a ranged and a ramped procedural source,
    and a mix ramp."""
    docs = write_docs(tmp_path / "docs.jsonl", 40)
    return plan_of(
        f"""
  source text = jsonl("{docs}", heldout=0.2)
  source srt  = sort(length=4..30, vocab=20)
  source dy   = dyck(k=3, length=ramp(8, 48))
  phase p {{
    steps = 40
    mix = ramp({{ text: 60%, srt: 40% }}, {{ text: 30%, srt: 30%, dy: 40% }})
  }}""",
        context=64,
        batch=8,
    )


# ---------------------------------------------------------------------------------- sharding


def test_every_world_size_gives_the_same_global_batches(mixed_plan):
    single = take(PhaseStream(mixed_plan, "p"), 12)
    for world in (2, 4):
        shards = [take(PhaseStream(mixed_plan, "p", rank=r, world=world), 12) for r in range(world)]
        for step, whole in enumerate(single):
            parts = [s[step] for s in shards]
            for field in ("tokens", "targets", "source", "starts"):
                joined = np.concatenate([getattr(p, field) for p in parts])
                assert (joined == getattr(whole, field)).all(), (world, step, field)
            assert all(p.source_tokens == whole.source_tokens for p in parts)
            assert np.sum([p.source_targets for p in parts], axis=0).tolist() == list(whole.source_targets)


@pytest.fixture
def long_plan(tmp_path):
    """Fixed-length sources a rank makes ahead (long k-Dyck in blocks of a few examples, short
    SORT in blocks of 512) packed with chunked text: the layout-ahead and prefetch path."""
    docs = write_docs(tmp_path / "docs.jsonl", 60)
    return plan_of(
        f"""
  source text = jsonl("{docs}")
  source srt  = sort(length=12, vocab=20)
  source dy   = dyck(k=5, length=300)
  phase p {{ steps = 30  mix = {{ text: 40%, srt: 20%, dy: 40% }} }}""",
        context=320,
        batch=8,
    )


def assert_every_world_and_resume_agree(plan, *, steps: int, worlds, seed: int, ahead: bool = False):
    """The global batches of phase ``p`` are the same on every world size (ranks' rows joined),
    and a state taken at random steps on 8 ranks resumes them on another world size."""
    fields = ("tokens", "targets", "source", "starts")
    single = take(PhaseStream(plan, "p"), steps)
    for world in worlds:
        shards = [take(PhaseStream(plan, "p", rank=r, world=world), steps) for r in range(world)]
        for step, whole in enumerate(single):
            for field in fields:
                joined = np.concatenate([getattr(s[step], field) for s in shards])
                assert (joined == getattr(whole, field)).all(), (world, step, field)
            assert all(s[step].source_tokens == whole.source_tokens for s in shards)
    rng = np.random.default_rng(seed)
    for stop in rng.integers(1, steps - 3, 3):
        first = PhaseStream(plan, "p", rank=int(rng.integers(8)), world=8)
        take(first, int(stop))
        if ahead:
            assert first._ready, "the test must stop a stream with steps laid out ahead"
        world = int(rng.choice([1, 2, 4, 8]))
        rank = int(rng.integers(world))
        resumed = PhaseStream(plan, "p", rank=rank, world=world)
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        rows = 8 // world
        for got, want in zip(resumed, single[int(stop) :]):
            for field in fields:
                mine = getattr(want, field)[rank * rows : (rank + 1) * rows]
                assert (getattr(got, field) == mine).all(), (stop, world, got.step, field)


def test_ranks_that_make_their_examples_ahead_give_the_same_global_batches(long_plan):
    assert_every_world_and_resume_agree(long_plan, steps=30, worlds=(2, 8), seed=1, ahead=True)


@pytest.fixture
def variable_plan(tmp_path):
    """Variable-length procedural sources (long k-Dyck over 256 tokens in blocks of a few
    examples, short ranged SORT, a ramped ww) packed with chunked text: the lengths path."""
    docs = write_docs(tmp_path / "docs.jsonl", 60)
    return plan_of(
        f"""
  source text = jsonl("{docs}")
  source srt  = sort(length=4..30, vocab=20)
  source dy   = dyck(k=5, length=258..400)
  source w    = ww(length=ramp(10, 150), vocab=20)
  phase p {{ steps = 30  layout = packed  mix = {{ text: 30%, srt: 20%, dy: 30%, w: 20% }} }}""",
        context=400,
        batch=8,
    )


def test_ranks_lay_out_variable_length_examples_from_their_lengths_alone(variable_plan):
    reader = PhaseStream(variable_plan, "p").interleave.readers[2]
    assert isinstance(reader.read(Cursor(0, 0, 0)), LazyUnits)
    assert_every_world_and_resume_agree(variable_plan, steps=30, worlds=(2, 8), seed=2)


def test_a_rank_of_many_makes_only_its_own_variable_length_examples(variable_plan, monkeypatch):
    import procdsl.stream.units as units_module

    made: dict[str, int] = {}

    def counting(real, count_of):
        def wrapper(source, **kwargs):
            made[kwargs["name"]] = made.get(kwargs["name"], 0) + count_of(kwargs)
            return real(source, **kwargs)

        return wrapper

    monkeypatch.setattr(units_module, "generate", counting(units_module.generate, lambda kw: kw["count"]))
    monkeypatch.setattr(
        units_module, "generate_at", counting(units_module.generate_at, lambda kw: len(kw["indices"]))
    )
    whole = take(PhaseStream(variable_plan, "p"), 30)
    made.clear()
    rank0 = take(PhaseStream(variable_plan, "p", rank=0, world=8), 30)
    sources = whole[0].sources
    for name in ("srt", "dy", "w"):
        k = sources.index(name)
        in_window = sum(int((b.starts & (b.source == k)).sum()) for b in whole)
        own = sum(int((b.starts & (b.source == k)).sum()) for b in rank0)
        assert in_window > 40, name
        # what its own rows hold (all 30 steps are laid out at once), not the window
        assert made[f"{name}/p"] == own < in_window / 3, (name, made, own, in_window)


def test_lazy_examples_are_held_to_their_promised_lengths(monkeypatch):
    import procdsl.stream.units as units_module

    source = DyckSource(k=2, length=Range(low=2, high=40))
    reader = ProceduralUnits(source, seed=0, key="d", context=64, offset=0, loss="full")
    units = reader.read(Cursor(0, 0, 0))
    want = generate(source, seed=0, name="d", start=0, count=len(units), context=64)
    assert (units.offsets == want.offsets).all()
    assert (units.run(3, 9)[0] == want.tokens[want.offsets[3] : want.offsets[9]]).all()
    with pytest.raises(ValueError, match="more than a row of context 20"):
        ProceduralUnits(source, seed=0, key="d", context=20, offset=0, loss="full").read(Cursor(0, 0, 0))
    real = units_module.generate_lengths
    monkeypatch.setattr(units_module, "generate_lengths", lambda *a, **kw: real(*a, **kw) + 2)
    wrong = ProceduralUnits(source, seed=0, key="d", context=64, offset=0, loss="full").read(Cursor(0, 0, 0))
    with pytest.raises(
        ValueError, match=r"example 0 of 'd' has \d+ tokens, not the \d+ its parameters promised"
    ):
        wrong.run(0, 2)


def test_a_family_without_a_lengths_path_is_generated_whole(variable_plan, monkeypatch):
    want = take(PhaseStream(variable_plan, "p", rank=1, world=2), 6)
    monkeypatch.setitem(GENERATORS, "dyck", dataclasses.replace(GENERATORS["dyck"], lengths=None))
    stream = PhaseStream(variable_plan, "p", rank=1, world=2)
    assert not isinstance(stream.interleave.readers[2].read(Cursor(0, 0, 0)), LazyUnits)
    for got, expected in zip(take(stream, 6), want):
        assert (got.tokens == expected.tokens).all() and (got.targets == expected.targets).all()


def test_world_size_must_divide_the_batch(mixed_plan):
    with pytest.raises(ValueError, match="cannot be split over 3 ranks"):
        PhaseStream(mixed_plan, "p", rank=0, world=3)


def test_rows_hold_whole_units_and_count_every_token_once(mixed_plan):
    stream = PhaseStream(mixed_plan, "p")
    assert stream.phase.layout == "packed"
    for batch in take(stream, 5):
        assert batch.tokens.shape == (8, 65) and batch.tokens.dtype == np.int32
        assert batch.starts[:, 0].all()  # every row opens with a unit
        assert not batch.targets[batch.starts].any() and not batch.targets[batch.padding].any()
        assert (batch.labels != -100).sum() == batch.targets.sum() == sum(batch.source_targets)
        assert sum(batch.source_tokens) + batch.pad_tokens == 8 * 65
        assert batch.pad_tokens == batch.padding.sum()
        # positions restart at every unit; unit numbers count up along a row
        assert (batch.positions[batch.starts] == 0).all()
        steps = np.diff(batch.positions, axis=1)
        assert ((steps == 1) | batch.starts[:, 1:] | (batch.padding[:, 1:] & ~batch.padding[:, :-1])).all()
        assert (np.diff(batch.document.astype(int), axis=1) >= 0).all()


def test_padded_rows_hold_one_example_from_position_zero():
    plan = plan_of(
        """
  source a = sort(length=4..30, vocab=20)
  phase p { steps = 6  mix = { a: 100% } }""",
        context=64,
        batch=8,
    )
    batches = take(PhaseStream(plan, "p"), 6)
    for batch in batches:
        assert (batch.starts.sum(axis=1) == 1).all() and batch.starts[:, 0].all()
    ex = generate(plan.sources["a"], seed=0, name="a/p", start=0, count=48, context=64)
    lengths = np.diff(ex.offsets)
    rows = [r for b in batches for r in b.tokens]
    for i, row in enumerate(rows):
        assert (row[: lengths[i]] == ex.tokens[ex.offsets[i] : ex.offsets[i + 1]]).all()


# ------------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resume_at_a_random_step_continues_identically(mixed_plan, seed):
    rng = np.random.default_rng(seed)
    steps = 40
    reference = take(PhaseStream(mixed_plan, "p"), steps)
    stop = int(rng.integers(1, steps - 3))
    first = PhaseStream(mixed_plan, "p")
    take(first, stop)
    state = json.loads(json.dumps(first.state_dict()))
    assert len(json.dumps(state)) < 2000
    world = int(rng.choice([1, 2, 4]))
    rank = int(rng.integers(world))
    resumed = PhaseStream(mixed_plan, "p", rank=rank, world=world)
    resumed.load_state_dict(state)
    rows = 8 // world
    for got, want in zip(resumed, reference[stop:]):
        assert got.step == want.step
        for field in ("tokens", "targets", "source", "starts"):
            assert (getattr(got, field) == getattr(want, field)[rank * rows : (rank + 1) * rows]).all()
        assert got.source_tokens == want.source_tokens
    assert resumed.step == steps
    assert resumed.totals["tokens"] == np.sum([b.source_tokens for b in reference], axis=0).tolist()


def test_finite_data_restarts_and_the_state_counts_epochs(tmp_path):
    docs = write_docs(tmp_path / "few.jsonl", 6, long_every=100)
    plan = plan_of(
        f"""
  source text = jsonl("{docs}", heldout=0.0)
  phase p {{ steps = 30  mix = {{ text: 100% }} }}""",
        context=32,
        batch=4,
    )
    stream = PhaseStream(plan, "p")
    reference = take(stream, 30)
    epochs = stream.state_dict()["cursors"][0][0]
    assert epochs >= 3
    resumed = PhaseStream(plan, "p")
    partial = PhaseStream(plan, "p")
    take(partial, 17)
    resumed.load_state_dict(partial.state_dict())
    assert all((a.tokens == b.tokens).all() for a, b in zip(resumed, reference[17:]))


def test_state_of_another_phase_is_refused(mixed_plan):
    state = PhaseStream(mixed_plan, "p").state_dict()
    state["phase"] = "q"
    with pytest.raises(ValueError, match="phase 'q'"):
        PhaseStream(mixed_plan, "p").load_state_dict(state)


# ------------------------------------------------------------------------------------ shares


def achieved(stream, steps):
    """Per-step label counts per source, shape (steps, sources)."""
    return np.array([b.source_tokens for b in take(stream, steps)], np.float64)


def check_shares(plan, phase_name, *, window=100, tolerance=1e-3):
    """Shares of real tokens (padding left out) against the plan, window by window."""
    phase = plan.phase(phase_name)
    stream = PhaseStream(plan, phase_name)
    counts = achieved(stream, phase.steps)
    shares = stream.interleave.shares
    cum = np.vstack([np.zeros(len(shares)), np.cumsum(counts, axis=0)])
    real = cum.sum(axis=1)  # real tokens before each step
    for start in range(0, phase.steps - window + 1):
        a, b = real[start], real[start + window]
        got = (cum[start + window] - cum[start]) / (b - a)
        want = (shares.planned(b) - shares.planned(a)) / (b - a)
        assert np.abs(got - want).max() < tolerance, (start, got, want)
    # by the end of the phase: exact up to one unit (a unit is at most a row)
    assert np.abs(cum[-1] - shares.planned(real[-1])).max() <= phase.context + 1
    return cum[-1] / real[-1]


def test_shares_match_the_plan_in_every_window_and_at_the_end(tmp_path):
    plan = plan_of(
        """
  source code = python_code()
  source srt  = sort(length=8..60, vocab=100)
  phase p { steps = 200  mix = { code: 70%, srt: 30% } }""",
        context=128,
        batch=32,
    )
    final = check_shares(plan, "p")
    assert abs(final[0] - 0.7) < 1e-3


def test_additive_mix_of_tiny_shares(tmp_path):
    plan = plan_of(
        """
  source code = python_code()
  source dy   = dyck(k=8)
  source st   = set(length=32, vocab=100)
  phase p { steps = 200  mix = { code: 99.8%, dy: 0.1%, st: 0.1% } }""",
        context=128,
        batch=32,
    )
    final = check_shares(plan, "p")
    assert np.allclose(final, [0.998, 0.001, 0.001], atol=3e-4)


def test_mix_ramp_is_followed(tmp_path):
    plan = plan_of(
        """
  source a = sort(length=16, vocab=50)
  source b = reverse(length=8..24, vocab=50)
  phase p { steps = 250  mix = ramp({ a: 100% }, { a: 20%, b: 80% }) }""",
        context=128,
        batch=32,
    )
    final = check_shares(plan, "p")
    # padded rows: the ramp runs over the *expected* real tokens (mean example lengths from a
    # 512-example probe), so its end lands within a fraction of a percent of the phase's end
    assert np.allclose(final, [0.6, 0.4], atol=3e-3)


def unit_by_unit(readers, shares, tokens: int) -> np.ndarray:
    """The literal rule, one unit at a time: the next unit comes from the source due first."""
    blocks = [r.read(Cursor(0, 0, 0)) for r in readers]
    delivered, nxt, out = [0] * len(readers), [0] * len(readers), []
    while sum(len(u) for u in out) < tokens:
        due = []
        for k, units in enumerate(blocks):
            if nxt[k] == len(units):
                blocks[k], nxt[k] = readers[k].read(units.end), 0
            owed = delivered[k] + blocks[k].lengths[nxt[k]] * 0.5
            due.append(float(shares.deadline(k, np.array([owed]))[0]) if shares.active(k) else np.inf)
        k = min(range(len(due)), key=due.__getitem__)
        out.append(blocks[k][nxt[k]][0])
        delivered[k] += len(out[-1])
        nxt[k] += 1
    return np.concatenate(out)[:tokens]


def task_readers(count: int, high: int):
    from procdsl.plan.base import Range
    from procdsl.plan.sources import TaskSource

    return [
        ProceduralUnits(
            TaskSource(rule=(r,), length=Range(low=1, high=high), vocab=10),
            seed=3,
            key=r,
            context=2 * high + 1,
            offset=12 * k,
            loss="full",
        )
        for k, r in enumerate(("sort", "reverse", "identity")[:count])
    ]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), count=st.integers(1, 3), high=st.integers(1, 20), total=st.integers(500, 20_000))
def test_the_vectorised_merge_is_the_unit_by_unit_rule_and_resumes(data, count, high, total):
    def mix():
        raw = np.array(
            data.draw(st.lists(st.sampled_from([0, 0.001, 0.1, 0.3, 1.0]), min_size=count, max_size=count))
        )
        return raw / raw.sum() if raw.sum() else np.full(count, 1 / count)

    shares = Shares(mix(), mix(), total=total)
    sizes = data.draw(st.lists(st.integers(2 * high + 1, 300), min_size=1, max_size=12))
    stream = Interleave(task_readers(count, high), shares)
    got, resumed = [], None
    cut = data.draw(st.integers(0, len(sizes) - 1))
    for index, n in enumerate(sizes):
        if index == cut:  # from here on, a fresh interleave resumed from the state
            resumed = Interleave(task_readers(count, high), shares)
            resumed.load_state_dict(json.loads(json.dumps(stream.state_dict())))
            stream = resumed
        pieces = stream.pull(n)
        placed = sorted((int(at), p.units[int(j)][0]) for p in pieces for at, j in zip(p.at, p.index))
        got.append(np.concatenate([tokens for _, tokens in placed]))
    got = np.concatenate(got)
    assert (unit_by_unit(task_readers(count, high), shares, len(got)) == got).all()


# ------------------------------------------------------------------------------- held-out


def doc_ids(batches, text_index, tokenizer):
    """Ids ``N`` of the ``doc-N:`` prefixes in the text tokens of a stream."""
    tokens, source = flat(batches), flat(batches, "source")
    text = tokenizer.decode(tokens[source == text_index], specials=True)
    return {int(m) for m in re.findall(r"doc-(\d+):", text)}


def test_heldout_documents_never_appear_in_training(tmp_path):
    docs = write_docs(tmp_path / "docs.jsonl", 120, long_every=1000)
    plan = plan_of(
        f"""
  source text = jsonl("{docs}", heldout=0.25)
  source val  = jsonl("{docs}", heldout=0.25)
  source srt  = sort(length=8, vocab=10)
  source srt_val = sort(length=8, vocab=10)
  phase p {{ steps = 60  mix = {{ text: 80%, srt: 20% }}
            eval every 20 steps {{ perplexity(val, batches=4)  perplexity(srt_val, batches=2) }} }}""",
        context=64,
        batch=8,
    )
    stream = PhaseStream(plan, "p")
    trained = doc_ids(take(stream, 60), 0, stream.vocab.tokenizer)
    evaluated = doc_ids(list(EvalStream(plan, "val", 4, 64, 8)), 0, stream.vocab.tokenizer)
    lines = [json.loads(line)["text"] for line in open(docs)]
    heldout = {i for i, t in enumerate(lines) if in_split(t, "heldout", 0.25)}
    assert trained and evaluated
    assert evaluated <= heldout and not trained & heldout
    # procedural: the examples are named apart, so they come from other random streams
    train_key = stream.interleave.readers[1].key
    eval_stream = EvalStream(plan, "srt_val", 2, 64, 8)
    assert train_key == "srt/p" and train_key != "srt_val/heldout"
    # the held-out task reads the same token range as its training twin
    assert eval_stream.vocab.offset("srt_val") == stream.vocab.offset("srt")


def test_eval_stream_is_the_same_every_time_and_shards(tmp_path):
    docs = write_docs(tmp_path / "docs.jsonl", 60)
    plan = plan_of(
        f"""
  source text = jsonl("{docs}", heldout=0.3)
  source srt  = sort(length=4..12, vocab=10)
  phase p {{ steps = 4  mix = {{ srt: 100% }}
            eval every 2 steps {{ perplexity(text, batches=3) }} }}""",
        context=32,
        batch=4,
    )
    for name in ("text", "srt"):
        stream = EvalStream(plan, name, batches=3, context=32, batch=4)
        first, second = list(stream), list(stream)
        assert len(first) == 3
        assert all((a.tokens == b.tokens).all() for a, b in zip(first, second))
        halves = [list(EvalStream(plan, name, 3, 32, 4, rank=r, world=2)) for r in (0, 1)]
        for whole, a, b in zip(first, *halves):
            assert (np.concatenate([a.tokens, b.tokens]) == whole.tokens).all()


# ---------------------------------------------------------------------------- vocabulary


def test_vocabulary_ranges_are_disjoint_and_hold_every_id(mixed_plan):
    stream = PhaseStream(mixed_plan, "p")
    vocab = stream.vocab
    ranges = sorted((r.offset, r.offset + r.size) for r in vocab.ranges)
    assert ranges[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert vocab.size == 258 + 22 + 7 and vocab.text_size == 258
    for batch in take(stream, 10):
        assert batch.tokens.max() < vocab.size and batch.tokens.min() >= 0
        for k, name in enumerate(stream.sources):
            ids = batch.tokens[batch.source == k]
            r = vocab.range_of(vocab.offset(name))
            lo, hi = (0, vocab.text_size) if name == "text" else (r.offset, r.offset + r.size)
            assert ((ids >= lo) & (ids < hi)).all(), name
    assert vocab.describe(vocab.offset("srt") + 20) == "srt:SEP"


def test_a_procedural_phase_has_no_text_range():
    plan = plan_of(
        """
  source a = sort(length=8, vocab=10)
  source b = dyck(k=2)
  phase p { steps = 2  mix = { a: 50%, b: 50% } }""",
        context=32,
        batch=2,
    )
    vocab = PhaseVocab.for_phase(plan, "p")
    assert vocab.text_size == 0 and vocab.tokenizer is None
    assert (vocab.offset("a"), vocab.offset("b"), vocab.size) == (0, 12, 17)


# ---------------------------------------------------------------------------- loss masks


def test_procedural_targets_are_exactly_the_generators():
    plan = plan_of(
        """
  source a = sort(length=3..9, vocab=10)
  phase p { steps = 6  mix = { a: 100% } }""",
        context=32,
        batch=4,
        seed=5,
    )
    batches = take(PhaseStream(plan, "p"), 6)
    tokens = flat(batches)
    targets = flat(batches, "targets")
    ex = generate(plan.sources["a"], seed=5, name="a/p", start=0, count=200, context=32)
    assert (ex.tokens[: len(tokens)] == tokens).all()
    assert (ex.loss_mask[: len(tokens)] == targets).all()


@pytest.mark.parametrize("loss", ["", "loss = full"])
def test_text_targets_all_but_the_first_token_of_a_unit(tmp_path, loss):
    docs = write_docs(tmp_path / "docs.jsonl", 30)
    plan = plan_of(
        f"""
  source text = jsonl("{docs}", heldout=0.0)
  source a = sort(length=3..9, vocab=10)
  phase p {{ steps = 8  mix = {{ text: 50%, a: 50% }}  {loss} }}""",
        context=48,
        batch=4,
    )
    batches = take(PhaseStream(plan, "p"), 8)
    targets, starts, source = (flat(batches, f) for f in ("targets", "starts", "source"))
    text = source == 0
    assert (targets[text] == ~starts[text]).all() and starts[text].any()
    if loss:  # full loss on the procedural source too
        assert (targets == ~starts).all()
    else:  # output-only: the input half of each sort example is no target
        assert (targets[~text] & ~starts[~text]).mean() < 0.6


def test_answer_only_data_targets_the_answer():
    plan = plan_of(
        """
  source math = dm_math(modules=["arithmetic__add_or_sub"])
  phase p { steps = 3  mix = { math: 100% }  loss = answer_only }""",
        context=64,
        batch=4,
    )
    stream = PhaseStream(plan, "p")
    batches = take(stream, 3)
    tokens = flat(batches)
    targets = flat(batches, "targets")
    starts = flat(batches, "starts")
    eos = stream.vocab.tokenizer.eos_id
    cuts = np.flatnonzero(starts)
    for a, b in zip(cuts, cuts[1:]):
        unit, mask = tokens[a:b], targets[a:b]
        if unit[-1] != eos:  # a piece of a longer problem: not checked
            continue
        first = int(np.argmax(mask))
        assert mask[first:].all() and not mask[:first].any()  # the answer is a suffix
        assert 0 < first and unit[first - 1] == ord("\n")


def test_row_bounds_are_next_fit_over_several_batches():
    """Against the rule stated plainly: a packed row takes units while they fit, a padded row one
    unit; a batch is returned only once the units after it are known to start a new row."""
    from procdsl.stream.pack import row_bounds

    rng = np.random.default_rng(0)
    for _ in range(300):
        row_len, rows = int(rng.integers(4, 30)), int(rng.integers(1, 5))
        lengths = rng.integers(1, row_len + 1, int(rng.integers(0, 60)))
        start = int(rng.integers(0, 3))
        for packed in (True, False):
            got = row_bounds(lengths, start=start, rows=rows, row_len=row_len, packed=packed, steps=4)
            want, first = [], start
            while len(want) < 4:
                bounds = [first]
                for _ in range(rows):
                    stop, fill = first, 0
                    while stop < len(lengths) and (
                        fill + lengths[stop] <= row_len if packed else stop == first
                    ):
                        fill, stop = fill + lengths[stop], stop + 1
                    if (
                        stop == first
                        or (packed and stop == len(lengths))
                        or (not packed and stop > len(lengths))
                    ):
                        break
                    first = stop
                    bounds.append(first)
                if len(bounds) < rows + 1:
                    break
                want.append(bounds)
            assert got.tolist() == want, (lengths.tolist(), start, rows, row_len, packed)


def test_rows_are_filled_in_row_order():
    from procdsl.stream.pack import fill_rows

    rows = fill_rows(
        np.array([4, 5, 6, 7]),
        np.array([0, 1, 0, 1]) > 0,
        source=np.array([0, 1]),
        lengths=np.array([2, 2]),
        row=np.array([0, 0]),
        rows=2,
        row_len=5,
        pad_id=9,
    )
    assert rows.tokens.tolist() == [[4, 5, 6, 7, 9], [9] * 5] and rows.document.tolist() == [
        [0, 0, 1, 1, 2],
        [0] * 5,
    ]
    assert rows.positions.tolist() == [[0, 1, 0, 1, 0], [0, 1, 2, 3, 4]] and rows.source.tolist()[0] == [
        0,
        0,
        1,
        1,
        0,
    ]
    with pytest.raises(ValueError, match="row order"):
        fill_rows(
            np.array([4, 5, 6, 7]),
            np.ones(4, bool),
            source=np.array([0, 1]),
            lengths=np.array([2, 2]),
            row=np.array([1, 0]),
            rows=2,
            row_len=5,
            pad_id=9,
        )


def test_a_state_from_before_small_blocks_is_refused_where_examples_changed(long_plan, mixed_plan):
    """Examples over 256 tokens came from blocks of 512 before the block contract's version 2:
    resuming such a state would silently continue on other examples, so it is refused unless
    forced; a phase whose examples are all short continues (they are the same)."""
    stream = PhaseStream(long_plan, "p")
    take(stream, 3)
    old = {k: v for k, v in stream.state_dict().items() if k != "blocks"}
    with pytest.raises(ValueError, match=r"dy would continue on other examples.*--force-replan"):
        PhaseStream(long_plan, "p").load_state_dict(old)
    PhaseStream(long_plan, "p").load_state_dict(old, strict=False)
    short = PhaseStream(mixed_plan, "p")
    take(short, 3)
    resumed = PhaseStream(mixed_plan, "p")
    resumed.load_state_dict({k: v for k, v in short.state_dict().items() if k != "blocks"})
    assert (next(iter(resumed)).tokens == next(iter(short)).tokens).all()
