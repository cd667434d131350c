"""The real-data layer: read data sources as documents, and tokenize them.

``iter_documents(source, split)`` yields :class:`Document` objects of a data source of a plan
(``hf``, ``jsonl``, ``text``, ``parquet``, ``python_code``, ``dm_math``), deterministically,
with a held-out split disjoint from training; ``validate(source)`` fails fast, before training,
with a :class:`DataError` that names the file and line. ``build_tokenizer(spec)`` makes the
plan's tokenizer (``bytes``, ``char``, ``gpt2``, ``bpe``, a ``tokenizer.json``).

Importing this package loads only numpy and pydantic: ``datasets``, ``pyarrow`` and
``tokenizers`` are imported by the readers and tokenizers that need them, when they run.
"""

from procdsl.data.document import Document, ReadStats, SourceInfo
from procdsl.data.errors import DataError
from procdsl.data.readers import DATA_KINDS, iter_documents, validate
from procdsl.data.split import in_split, plan_split, stable_unit
from procdsl.data.tokenizer import ByteTokenizer, CharTokenizer, Tokenizer, encode_document
from procdsl.data.tokenizer_spec import build_tokenizer

__all__ = [
    "DATA_KINDS",
    "ByteTokenizer",
    "CharTokenizer",
    "DataError",
    "Document",
    "ReadStats",
    "SourceInfo",
    "Tokenizer",
    "build_tokenizer",
    "encode_document",
    "in_split",
    "iter_documents",
    "plan_split",
    "stable_unit",
    "validate",
]
