"""What a reader yields: a :class:`Document`, and the counters a reader keeps (:class:`ReadStats`).

A document is a text; question/answer data also carries where the answer starts, so that an
``answer_only`` loss can mask the question:

>>> doc = Document("What is 2 + 3?\\n5", answer_start=15, origin="dm_math#7")
>>> doc.prompt, doc.answer
('What is 2 + 3?\\n', '5')
>>> Document("plain text").answer is None
True

Bytes that are not UTF-8 are replaced by U+FFFD and counted (the policy of every file reader):

>>> decode_utf8(b"caf\\xe9 ok")
('caf\\ufffd ok', 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a data source.

    ``text`` is what the model reads. ``answer_start`` (question/answer data only) is the offset
    in ``text`` where the answer begins. ``origin`` names where it came from (``path``,
    ``path:line``, ``dataset[split]#row``, ``dm_math#index``) for messages and debugging.
    ``replaced`` counts the undecodable byte sequences replaced by U+FFFD in it.
    """

    text: str
    answer_start: Optional[int] = None
    origin: str = ""
    replaced: int = 0

    @property
    def prompt(self) -> str:
        """The text before the answer (all of it for plain documents)."""
        return self.text if self.answer_start is None else self.text[: self.answer_start]

    @property
    def answer(self) -> Optional[str]:
        """The answer, or None for a document without one."""
        return None if self.answer_start is None else self.text[self.answer_start :]


@dataclass
class ReadStats:
    """Counters a reader fills while it reads (pass one in to ``iter_documents(stats=…)``).

    ``documents`` yielded, ``chars`` in them, ``files`` opened, ``replaced`` undecodable byte
    sequences (each became one U+FFFD), ``empty`` documents skipped because their text was empty,
    ``excluded`` documents that belong to the other split.
    """

    documents: int = 0
    chars: int = 0
    files: int = 0
    replaced: int = 0
    empty: int = 0
    excluded: int = 0

    def count(self, doc: Document) -> None:
        self.documents += 1
        self.chars += len(doc.text)
        self.replaced += doc.replaced


def decode_utf8(data: bytes) -> tuple[str, int]:
    """Decode UTF-8, replacing each undecodable sequence by U+FFFD; return (text, replacements).

    Same output as ``data.decode("utf-8", "replace")``; the count is what that call hides.

    >>> decode_utf8("naïve".encode())
    ('naïve', 0)
    >>> decode_utf8(b"\\xff\\xfeab\\xc3")
    ('\\ufffd\\ufffdab\\ufffd', 3)
    """
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    parts: list[str] = []
    replaced, start = 0, 0
    while True:
        try:
            parts.append(data[start:].decode("utf-8"))
            return "".join(parts), replaced
        except UnicodeDecodeError as err:
            parts.append(data[start : start + err.start].decode("utf-8"))
            parts.append("\ufffd")
            replaced += 1
            start += err.end


@dataclass(frozen=True)
class SourceInfo:
    """What ``validate(source)`` found: a one-line ``description`` for logs, and the files read.

    ``bytes`` is the total size of the files (None for streamed or generated sources).
    """

    kind: str
    description: str
    files: tuple[str, ...] = ()
    bytes: Optional[int] = None
