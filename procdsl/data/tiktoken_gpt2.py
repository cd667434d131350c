"""GPT-2's tokenizer encoding through ``tiktoken``: the same ids, about 5× faster than 🤗 ``tokenizers``.

``tiktoken`` would download GPT-2's files; procdsl builds the encoding from the two vocabulary
files it already has (``procdsl.data.bpe.gpt2_files``): ``encoder.json`` maps each token, written
in GPT-2's printable stand-ins for bytes, to its id, and for GPT-2 that id *is* the merge rank
tiktoken needs. Special-token strings in the data are encoded as ordinary text
(``encode_ordinary``), as everywhere in procdsl; a lone surrogate becomes U+FFFD.

:class:`TiktokenGpt2` is the ``gpt2`` tokenizer: it encodes with tiktoken and keeps the 🤗
backend for everything else (decoding, ``to_str`` for export), so only the speed changes.
``tests/test_store.py`` compares the ids of both on a corpus with unicode and whitespace edge
cases.

>>> from procdsl.data.bpe import gpt2_tokenizer
>>> tok = gpt2_tokenizer()
>>> type(tok).__name__, tok.encode("Hello world<|endoftext|>").tolist()
('TiktokenGpt2', [15496, 995, 27, 91, 437, 1659, 5239, 91, 29])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from procdsl.data.tokenizer import HfTokenizer

#: GPT-2's end-of-text token (also the first special token of a trained bpe)
EOT = "<|endoftext|>"

#: GPT-2's pre-tokenisation (tiktoken's spelling of the regex in GPT-2's ``encoder.py``)
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_stand_ins() -> dict[str, int]:
    """GPT-2's printable character for each byte, inverted: character -> byte.

    >>> table = byte_stand_ins()
    >>> table["A"], table["Ġ"], len(table)
    (65, 32, 256)
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def tiktoken_encoding(encoder_json: str) -> Any:
    """A ``tiktoken.Encoding`` of GPT-2 from its ``encoder.json`` (no network)."""
    import tiktoken

    with open(encoder_json, encoding="utf-8") as handle:
        encoder = json.load(handle)
    table = byte_stand_ins()
    ranks = {bytes(table[ch] for ch in token): rank for token, rank in encoder.items() if token != EOT}
    return tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: encoder[EOT]}
    )


class TiktokenGpt2(HfTokenizer):
    """The 🤗 GPT-2 tokenizer with tiktoken's encoder (same ids, several times the speed)."""

    def __init__(self, backend: Any, encoding: Any, eos_id: int):
        super().__init__(backend, "gpt2", eos_id=eos_id, pad_id=eos_id)
        self._encoding = encoding

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._encoding.encode_ordinary(text), dtype=np.int32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # one text at a time: tiktoken's own batch call spends more on threads than it saves
        encode = self._encoding.encode_ordinary
        return [np.asarray(encode(text), dtype=np.int32) for text in texts]
