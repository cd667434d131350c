"""The tokenizer interface, its two table tokenizers (``bytes``, ``char``) and its 🤗 ``tokenizers``
wrapper; a document's ids.

Every tokenizer maps text to ``int32`` ids and back, and has ``vocab_size``, ``eos_id`` and
``pad_id``. ``encode`` adds no special token: the caller appends ``eos_id`` between documents
(:func:`encode_document` does). :class:`HfTokenizer` puts a 🤗 ``tokenizers`` backend behind the
interface; :mod:`procdsl.data.bpe` builds its backends (GPT-2's, trained, a file), and
:mod:`procdsl.data.tokenizer_spec` the tokenizer a plan names.

>>> tok = ByteTokenizer()
>>> ids = tok.encode("héllo")
>>> ids.dtype, ids.tolist()
(dtype('int32'), [104, 195, 169, 108, 108, 111])
>>> tok.decode([*ids, tok.eos_id]), tok.decode([*ids, tok.eos_id], specials=True)
('héllo', 'héllo<eos>')
>>> char = CharTokenizer()
>>> char.encode("1+é").tolist(), char.decode(char.encode("1+é")), char.vocab_size
([19, 13, 99], '1+\\ufffd', 100)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np

from procdsl.data.document import Document

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
                    raise ValueError(
                        f"id {i} is outside the {self.name} vocabulary (0 … {self.vocab_size - 1})"
                    )
                run.append(i)
        if run:
            parts.append(self._decode_run(run))
        return "".join(parts)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name}: vocab {self.vocab_size}, eos {self.eos_id}, "
            f"pad {self.pad_id}>"
        )


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
        return np.where(codes < 128, self._table[np.minimum(codes, 127)], self.unk_id).astype(np.int32)

    def _decode_run(self, ids: list[int]) -> str:
        return "".join("\ufffd" if i == self.unk_id else CHARSET[i] for i in ids)


class HfTokenizer(Tokenizer):
    """A ``tokenizers.Tokenizer`` behind procdsl's interface; ``path`` is its JSON file, if any."""

    def __init__(self, tokenizer: Any, name: str, eos_id: int, pad_id: int, path: Optional[str] = None):
        tokenizer.encode_special_tokens = True  # "<|endoftext|>" in the data is plain text
        self._tok = tokenizer
        self.name = name
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.path = path

    @property
    def special_tokens(self) -> dict[int, str]:
        marks = {self.pad_id: "<pad>"}
        marks[self.eos_id] = "<eos>"
        return marks

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.int32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets nobody here reads
        batch = getattr(self._tok, "encode_batch_fast", None) or self._tok.encode_batch
        encodings = batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]

    def _decode_run(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)

    def to_str(self) -> str:
        """The tokenizer as ``tokenizer.json`` text (to store beside a run)."""
        return self._tok.to_str()


def encode_document(
    tokenizer: Tokenizer, doc: Document, *, eos: bool = True
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
        mask[len(pieces[0]) :] = True
    return ids, mask
