"""The token store (`procdsl prepare`, `procdsl.store`): what it holds, and how it fails.

A store must hold exactly the units the streaming path reads, survive a killed preparer, refuse
to be used for another tokenizer or changed files, report damage and a full disk by the source,
and leave nothing half-written.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.compiler import compile_text
from procdsl.data import build_tokenizer, plan_split
from procdsl.data.jsonl import read_jsonl, read_lines
from procdsl.plan.sources import JsonlSource
from procdsl.store import StoreError, TokenStore, plan_needs, prepare_plan
from procdsl.store import shards as shards_module
from procdsl.store import writer as writer_module
from procdsl.stream.units import Cursor, StoreUnits, TextUnits

runner = CliRunner()


def write_jsonl(path: Path, texts) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def corpus(n: int, seed: int = 0) -> list[str]:
    """Documents of varied length, some longer than a row, with unicode."""
    rng = np.random.default_rng(seed)
    words = ["alpha", "béta", "γάμμα", "delta\n", "  ", "日本", "x", "🙂"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(n)]


def make_plan(folder: Path, body: str, *, tokenizer: str = "bytes", steps: int = 20, context: int = 16):
    text = (
        f"curriculum t {{ model = gpt2(layers=1, heads=1, dim=8)\n context = {context}\n"
        f" batch = 2\n tokenizer = {tokenizer}\n{body}\n"
        f" phase p {{ steps = {steps}  mix = {{ a: 100% }} }} }}"
    )
    (folder / "t.curr").write_text(text, encoding="utf-8")
    result = compile_text(text, str(folder / "t.curr"))
    assert result.ok, result.diagnostics
    return result.plan


START = Cursor(0, 0, 0)


def units_of(reader, count: int, cursor=START):
    """The first ``count`` units from ``cursor`` on: (cursor, tokens, targets) each."""
    out = []
    while len(out) < count:
        block = reader.read(cursor)
        for j in range(len(block)):
            tokens, targets = block[j]
            out.append((block.cursor(j), tokens.tolist(), targets.tolist()))
        cursor = block.end
    return out[:count]


def part_files(store_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(store_dir)): p.stat().st_size for p in sorted(store_dir.rglob("*.bin"))}


# ------------------------------------------------------------------------------ tokenizer


def test_tiktoken_ids_equal_the_gpt2_tokenizer_on_a_corpus():
    from procdsl.data.bpe import gpt2_tokenizer

    fast, slow = gpt2_tokenizer(), gpt2_tokenizer(fast=False)
    assert type(fast).__name__ == "TiktokenGpt2" and type(slow).__name__ == "HfTokenizer"
    edge = [
        "",
        " ",
        "\n",
        "hello world",
        "  leading",
        "trailing   ",
        "a\n\n\nb",
        "\t\ttabs\r\n",
        "naïve café 日本語 🙂👍🏽",
        "<|endoftext|> stays text",
        "it's they'll I'M 's'S",
        "x\u00a0y\u2028z\u3000w\x0bv\x0cu\x1cq\x85r",
        "123456789 3.14 1e-9",
        "Ünïcödé   \n  x",
        "😀" * 7,
        "a" * 3000,
        "   \n\n   \t",
        "\u200b\u200d\ufeff",
        "ﬁ ligature Ⅻ ½",
    ]
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = edge + [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))[:40]]
    mine, theirs = fast.encode_batch(texts), slow.encode_batch(texts)
    for text, a, b in zip(texts, mine, theirs):
        assert a.tolist() == b.tolist(), repr(text[:60])
    assert [fast.encode(t).tolist() for t in edge] == [slow.encode(t).tolist() for t in edge]
    assert fast.decode(fast.encode(edge[8])) == edge[8]


# ------------------------------------------------------------------------------ jsonl


def test_jsonl_streams_line_by_line(tmp_path):
    """The first line arrives while the file is still being written (a whole-file read would
    wait for its end): ``read_jsonl`` reads through ``read_lines``, here on a pipe."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    first_seen = threading.Event()
    order = []

    def writer():
        with open(fifo, "w") as handle:
            handle.write('{"text": "one"}\n')
            handle.flush()
            first_seen.wait(timeout=10)
            order.append("rest written" if first_seen.is_set() else "gave up waiting")
            handle.write('{"text": "two"}\n')

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    lines = read_lines(str(fifo))
    assert next(lines) == (1, b'{"text": "one"}')
    first_seen.set()
    assert list(lines) == [(2, b'{"text": "two"}')]
    thread.join(timeout=10)
    assert order == ["rest written"]


def test_jsonl_lines_are_numbered_as_before(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "a"}\r\n\r\n{"text": "b"}\r{"text": "c"}\n{"nope": 1}\n')
    docs = read_jsonl(JsonlSource(path=str(path)))
    assert [next(docs).origin[-1] for _ in range(3)] == ["1", "3", "4"]
    with pytest.raises(Exception, match=r"a\.jsonl:5: the record has no field 'text'"):
        next(docs)


# ------------------------------------------------------------------------------ held-out


def test_a_source_only_evaluated_is_read_whole_and_one_only_trained_loses_nothing(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", corpus(50))
    write_jsonl(tmp_path / "valid.jsonl", corpus(30, seed=1))
    text = (
        "curriculum h { model = gpt2(layers=1, heads=1, dim=8) context = 16 batch = 2 "
        'tokenizer = bytes source a = jsonl("train.jsonl") source v = jsonl("valid.jsonl") '
        'source a_val = jsonl("train.jsonl") '
        "phase p { steps = 2 mix = { a: 100% } eval every 1 steps { perplexity(v, batches=400) } } "
        "phase q { steps = 2 mix = { a: 100% } eval every 1 steps { perplexity(a_val, batches=1) } } }"
    )
    plan = compile_text(text, str(tmp_path / "h.curr")).plan
    assert plan_split(plan, "v", "heldout") == "all"  # a real validation set, whole
    assert plan_split(plan, "a", "train") == "train"  # a_val is carved out of it
    assert plan_split(plan, "a_val", "heldout") == "heldout"
    prepare_plan(plan, cache_dir=str(tmp_path / "cache"), progress=False)
    valid = TokenStore.open(plan, "v", "heldout", cache_dir=str(tmp_path / "cache"))
    assert valid.split == "all" and valid.documents == 30 and valid.exhausted


# ------------------------------------------------------------------------------ equality


@pytest.mark.parametrize("loss", ["full", "answer_only"])
def test_store_units_equal_streaming_units_dm_math(tmp_path, loss):
    plan = make_plan(
        tmp_path,
        " source a = dm_math(modules=[arithmetic__add_or_sub, numbers__gcd])",
        tokenizer="char",
        steps=600,
    )
    cache = str(tmp_path / "cache")
    prepare_plan(plan, cache_dir=cache, progress=False)
    store = TokenStore.open(plan, "a", "train", cache_dir=cache)
    assert store.masked and store.dtype == np.uint16
    source, tokenizer = plan.sources["a"], build_tokenizer("char")
    streaming = TextUnits(
        source, tokenizer, split=store.split, seed=plan.phases[0].seed, context=16, loss=loss
    )
    stored = StoreUnits(store, context=16, loss=loss)
    assert units_of(stored, 300) == units_of(streaming, 300)
    assert units_of(stored, 5, Cursor(0, 77, 0)) == units_of(streaming, 5, Cursor(0, 77, 0))


def test_store_units_equal_streaming_units_across_shards_and_epochs(tmp_path, monkeypatch):
    """A glob of files in several shards, read past its end (a new epoch), and resumed mid-document."""
    for i in range(4):
        write_jsonl(tmp_path / f"d{i}.jsonl", corpus(25, seed=i))
    monkeypatch.setattr(shards_module, "SHARD_BYTES", 3000)
    plan = make_plan(tmp_path, ' source a = jsonl("d*.jsonl")', tokenizer="gpt2", steps=400)
    cache = str(tmp_path / "cache")
    prepare_plan(plan, cache_dir=cache, progress=False)
    store = TokenStore.open(plan, "a", "train", cache_dir=cache)
    assert store.exhausted and store.documents == 100 and len(store.manifest["parts"]) > 1
    assert store.dtype == np.uint16
    lengths = store.doc_lengths()
    assert lengths.sum() == store.n_tokens and store.offsets(10, 13).tolist() == [
        0,
        lengths[10],
        lengths[10] + lengths[11],
        lengths[10:13].sum(),
    ]
    streaming = TextUnits(
        plan.sources["a"], build_tokenizer("gpt2"), split=store.split, seed=0, context=16, loss="full"
    )
    stored = StoreUnits(store, context=16, loss="full")
    count = int(np.ceil(lengths / 17).sum()) + 40  # one epoch and then some
    mine = units_of(stored, count)
    assert mine == units_of(streaming, count)
    assert mine[-1][0].epoch == 1
    long_doc = int(np.argmax(lengths))
    assert lengths[long_doc] > 17
    at = Cursor(0, long_doc, 1)
    assert units_of(stored, 3, at) == units_of(streaming, 3, at)


def test_store_units_equal_streaming_units_hf_shards(tmp_path):
    files = [str(write_jsonl(tmp_path / f"p{i}.jsonl", corpus(12, seed=i))) for i in range(3)]
    listed = ", ".join(f'"{f}"' for f in files)
    plan = make_plan(tmp_path, f' source a = hf("json", data_files=[{listed}])', steps=2000)
    cache = str(tmp_path / "cache")
    prepare_plan(plan, cache_dir=cache, progress=False)
    store = TokenStore.open(plan, "a", "train", cache_dir=cache)
    assert [p["documents"] for p in store.manifest["parts"]] == [12, 12, 12] and store.exhausted
    streaming = TextUnits(
        plan.sources["a"], build_tokenizer("bytes"), split=store.split, seed=0, context=16, loss="full"
    )
    stored = StoreUnits(store, context=16, loss="full")
    assert units_of(stored, 500) == units_of(streaming, 500)


# ------------------------------------------------------------------------------ lifecycle


def test_prepare_is_idempotent_and_writes_only_the_bound(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", corpus(400))
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=5)
    cache = str(tmp_path / "cache")
    first = prepare_plan(plan, cache_dir=cache, progress=False)
    folder = Path(first[0].folder)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    again = prepare_plan(plan, cache_dir=cache, progress=False)
    assert first[0].written > 0 and again[0].written == 0
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == before
    bound = plan_needs(plan)[0].tokens
    store = TokenStore.open(plan, "a", "train", cache_dir=cache)
    assert not store.exhausted and bound < store.n_tokens <= bound + store.doc_lengths()[-1]


def test_a_bigger_plan_extends_the_store(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", corpus(400))
    cache = str(tmp_path / "cache")
    small = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=5)
    prepare_plan(small, cache_dir=cache, progress=False)
    big = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=50)
    with pytest.raises(StoreError, match="holds .* tokens; the plan can read"):
        TokenStore.open(big, "a", "train", cache_dir=cache)
    prepare_plan(big, cache_dir=cache, progress=False)
    grown = TokenStore.open(big, "a", "train", cache_dir=cache)
    fresh_cache = str(tmp_path / "fresh")
    prepare_plan(big, cache_dir=fresh_cache, progress=False)
    fresh = TokenStore.open(big, "a", "train", cache_dir=fresh_cache)
    assert grown.documents == fresh.documents
    assert np.array_equal(grown.tokens(0, grown.documents), fresh.tokens(0, fresh.documents))


_SLOW_PREPARER = """
import sys, time
from procdsl.store import writer
commit = writer.PartWriter.commit
def slow_commit(self, **kw):
    commit(self, **kw)
    time.sleep(0.3)
writer.PartWriter.commit = slow_commit
from procdsl.cli import app
app(["prepare", sys.argv[1], "--cache-dir", sys.argv[2]])
"""


def test_prepare_resumes_after_kill_9(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", corpus(20000))
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=50000)
    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_PREPARER, str(tmp_path / "t.curr"), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    progress = []
    while time.monotonic() < deadline and not progress:
        progress = [p for p in cache.rglob("progress.json") if json.loads(p.read_text())["documents"]]
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert progress, "the preparer committed nothing within a minute"
    assert not list(cache.rglob("manifest.json"))  # never taken as complete
    with pytest.raises(StoreError, match="is incomplete"):
        TokenStore.open(plan, "a", "train", cache_dir=str(cache))
    committed = json.loads(progress[0].read_text())["documents"]
    result = prepare_plan(plan, cache_dir=str(cache), progress=False)
    resumed = TokenStore.open(plan, "a", "train", cache_dir=str(cache))
    assert 0 < result[0].written < resumed.n_tokens and committed < resumed.documents
    prepare_plan(plan, cache_dir=str(tmp_path / "fresh"), progress=False)
    fresh = TokenStore.open(plan, "a", "train", cache_dir=str(tmp_path / "fresh"))
    assert np.array_equal(resumed.tokens(0, resumed.documents), fresh.tokens(0, fresh.documents))
    assert np.array_equal(resumed.doc_lengths(), fresh.doc_lengths())


def test_two_preparers_at_once_prepare_once(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", corpus(2000))
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=500)
    cache = str(tmp_path / "cache")
    command = [sys.executable, "-m", "procdsl.cli", "prepare", str(tmp_path / "t.curr"), "--cache-dir", cache]
    both = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert sorted("up to date" in out for out, _ in outputs) == [False, True]
    fresh = str(tmp_path / "fresh")
    prepare_plan(plan, cache_dir=fresh, progress=False)
    a, b = (TokenStore.open(plan, "a", "train", cache_dir=c) for c in (cache, fresh))
    assert np.array_equal(a.tokens(0, a.documents), b.tokens(0, b.documents))


# ------------------------------------------------------------------------------ rejections


def test_a_store_for_another_tokenizer_or_changed_files_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", corpus(100))
    cache = str(tmp_path / "cache")
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")')
    prepare_plan(plan, cache_dir=cache, progress=False)
    other = make_plan(tmp_path, ' source a = jsonl("a.jsonl")', tokenizer="char")
    with pytest.raises(
        StoreError,
        match=r"source a \(train\): was prepared for tokenizer bytes, "
        r"not char; run `procdsl prepare",
    ):
        TokenStore.open(other, "a", "train", cache_dir=cache)
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")')  # t.curr: bytes again
    write_jsonl(path, corpus(101))
    with pytest.raises(
        StoreError,
        match=r"source a \(train\): its data changed since it was "
        r"prepared: .*a\.jsonl changed \(size",
    ):
        TokenStore.open(plan, "a", "train", cache_dir=cache)
    result = runner.invoke(app, ["prepare", str(tmp_path / "t.curr"), "--cache-dir", cache])
    assert result.exit_code == 0, result.output
    assert TokenStore.open(plan, "a", "train", cache_dir=cache).documents > 0


def test_a_corrupt_store_is_named_and_prepare_repairs_it(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", corpus(300))
    cache = str(tmp_path / "cache")
    plan = make_plan(tmp_path, ' source a = jsonl("a.jsonl")')
    folder = Path(prepare_plan(plan, cache_dir=cache, progress=False)[0].folder)
    good = TokenStore.open(plan, "a", "train", cache_dir=cache).tokens(0, 3).copy()
    tokens = folder / "part-00000" / "tokens.bin"
    os.truncate(tokens, tokens.stat().st_size // 2)
    with pytest.raises(StoreError, match=r"source a \(train\): is corrupt: .*tokens\.bin holds"):
        TokenStore.open(plan, "a", "train", cache_dir=cache)
    result = runner.invoke(app, ["prepare", str(tmp_path / "t.curr"), "--cache-dir", cache])
    assert result.exit_code == 0, result.output
    assert np.array_equal(TokenStore.open(plan, "a", "train", cache_dir=cache).tokens(0, 3), good)
    (folder / "manifest.json").write_text('{"format": 1, "docu')
    with pytest.raises(StoreError, match=r"is corrupt: .*manifest\.json is not valid JSON"):
        TokenStore.open(plan, "a", "train", cache_dir=cache)


def test_a_missing_source_file_fails_naming_the_source(tmp_path):
    plan_file = tmp_path / "t.curr"
    make_plan(tmp_path, ' source a = jsonl("gone.jsonl")')
    result = runner.invoke(app, ["prepare", str(plan_file), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "error: token store of source a (train): " in result.output
    assert "gone.jsonl: file not found" in result.output and "Traceback" not in result.output


def test_a_full_disk_fails_cleanly_and_prepare_resumes(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "a.jsonl", corpus(5000))
    cache = tmp_path / "cache"
    make_plan(tmp_path, ' source a = jsonl("a.jsonl")', steps=20000)
    writes = []
    real = writer_module._write

    def filling(handle, data):
        writes.append(len(data))
        if len(writes) > 4:  # two chunks (tokens + ends each) fit, then no room
            raise OSError(errno.ENOSPC, "No space left on device")
        real(handle, data)

    monkeypatch.setattr(writer_module, "_write", filling)
    result = runner.invoke(app, ["prepare", str(tmp_path / "t.curr"), "--cache-dir", str(cache)])
    assert result.exit_code == 1
    assert "error: token store of source a (train): no space left on the device" in result.output
    assert "Traceback" not in result.output
    assert not list(cache.rglob("manifest.json")) and not list(cache.rglob("*.partial"))
    part = next(cache.rglob("part-00000"))
    committed = json.loads((part / "progress.json").read_text())
    assert committed["documents"] > 0
    assert (part / "tokens.bin").stat().st_size == 2 * committed["tokens"]  # uint16 ids
    assert (part / "ends.bin").stat().st_size == 8 * committed["documents"]
    monkeypatch.setattr(writer_module, "_write", real)
    result = runner.invoke(app, ["prepare", str(tmp_path / "t.curr"), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
