"""Reading a prepared store: :class:`TokenStore`, documents by index in O(1), from memory maps.

``TokenStore.open(plan, source, split)`` finds the store of a source the plan reads (``split``
is the role: ``"train"`` for a mix, ``"heldout"`` for an eval; which documents that means is
``procdsl.data.plan_split``'s answer) and checks it before anything is read: prepared, complete,
for this tokenizer, of these files, large enough for the plan, and not truncated. Every failure
is a :class:`StoreError` naming the source and what to run.

Then: ``documents``, ``n_tokens``, ``doc_lengths(start, stop)`` (vectorised, from the offsets),
``offsets(start, stop)``, ``tokens(start, stop)`` and ``masks(start, stop)`` for documents
``[start, stop)`` — memory-map slices when they lie in one part (``block_end`` never crosses
one), copies otherwise. Nothing before ``start`` is read, so a resumed stream costs what the
first step did. ``exhausted`` says whether the store holds the whole split (a reader wraps to
a new epoch at its end) or only the plan's bound of it.

>>> import os, tempfile
>>> from procdsl.compiler import compile_text
>>> from procdsl.store.prepare import prepare_plan
>>> d = tempfile.mkdtemp()
>>> _ = open(os.path.join(d, "a.jsonl"), "w").write("".join('{"text": "doc %d"}\\n' % i for i in range(9)))
>>> plan = compile_text('''curriculum r { model = gpt2(layers=1, heads=1, dim=8)
...   context = 8  batch = 2  tokenizer = bytes  source a = jsonl("a.jsonl")
...   phase p { steps = 2  mix = { a: 100% } } }''', os.path.join(d, "r.curr")).plan
>>> _ = prepare_plan(plan, cache_dir=d, progress=False)
>>> store = TokenStore.open(plan, "a", "train", cache_dir=d)
>>> store.documents, store.split, store.doc_lengths(0, 3).tolist(), store.tokens(1, 2).tolist()
(9, 'all', [6, 6, 6], [100, 111, 99, 32, 49, 256])
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from procdsl.data.errors import DataError
from procdsl.store.errors import PREPARE_HINT, StoreError
from procdsl.store.identity import (
    FORMAT,
    cache_root,
    content_fingerprint,
    describe_change,
    source_folder,
    store_folder,
    tokenizer_identity,
)
from procdsl.store.manifest import MANIFEST, read_json
from procdsl.store.needs import Need, find_need


@dataclass(frozen=True)
class _Part:
    first: int  # global index of its first document
    documents: int
    ends: np.ndarray  # int64 memmap, (documents,)
    tokens: np.ndarray  # memmap
    mask: Optional[np.ndarray]  # uint8 memmap, or None


class TokenStore:
    """A complete, checked store; build it with :meth:`open`."""

    def __init__(
        self, folder: str, manifest: dict[str, Any], parts: list[_Part], label: str, hint: str = PREPARE_HINT
    ):
        self.folder, self.manifest, self.label, self.hint = folder, manifest, label, hint
        self._parts = parts
        self._firsts = [p.first for p in parts]
        self.documents = int(manifest["documents"])
        self.n_tokens = int(manifest["tokens"])
        self.exhausted = bool(manifest["exhausted"])
        self.masked = bool(manifest["masked"])
        self.split = manifest["split"]
        self.dtype = np.dtype(manifest["dtype"])

    # ------------------------------------------------------------------------------ open

    @classmethod
    def open(
        cls,
        plan: Any,
        source: str,
        split: str,
        *,
        phase: Optional[str] = None,
        cache_dir: Optional[str] = None,
        tokenizer: Any = None,
        hint: str = PREPARE_HINT,
    ) -> TokenStore:
        """The store of ``source`` read for ``split`` (``train``/``heldout``) by ``plan``.

        ``phase`` picks the seed of a generated source (``dm_math``) trained on in several
        phases under different seeds; ``tokenizer`` reuses one already built; ``hint`` is the
        command the errors tell the user to run.
        """
        need = find_need(plan, source, split, phase=phase)
        if tokenizer is None:
            from procdsl.data import build_tokenizer

            tokenizer = build_tokenizer(plan.tokenizer, sources=plan.sources, seed=plan.seed)
        return cls.for_need(need, tokenizer_identity(tokenizer), cache_dir or cache_root(), hint=hint)

    @classmethod
    def for_need(
        cls, need: Need, tokenizer_id: dict[str, Any], root: str, *, hint: str = PREPARE_HINT
    ) -> TokenStore:
        """The store of ``need``, checked (see the module docstring)."""
        folder = store_folder(root, need, tokenizer_id)

        def fail(message: str) -> StoreError:
            return StoreError(need.label, message, hint=hint)

        manifest = _load_manifest(folder, fail)
        if manifest is None:
            others = _other_tokenizers(source_folder(root, need), folder)
            if others:
                raise fail(f"was prepared for tokenizer {others[0]}, not {tokenizer_id['name']}")
            if os.path.isdir(folder):
                raise fail(f"is incomplete (its preparation was interrupted) in {folder}")
            raise fail(f"is not prepared (no store in {folder})")
        if manifest.get("tokenizer") != tokenizer_id:
            raise fail(f"was prepared with another tokenizer ({manifest.get('tokenizer', {}).get('name')})")
        try:
            content = content_fingerprint(need.source)
        except DataError as err:
            raise StoreError(need.label, str(err), hint=None) from None
        if manifest["content"] != content:
            raise fail(
                f"its data changed since it was prepared: {describe_change(manifest['content'], content)}"
            )
        if not manifest["exhausted"] and manifest["tokens"] <= need.tokens:
            raise fail(f"holds {manifest['tokens']:,} tokens; the plan can read {need.tokens:,}")
        return cls(folder, manifest, _map_parts(folder, manifest, fail), need.label, hint)

    # ------------------------------------------------------------------------------ read

    def doc_lengths(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Token counts (EOS included) of documents ``[start, stop)``, as ``int64``."""
        return np.diff(self.offsets(start, stop))

    def offsets(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Where documents ``[start, stop)`` begin in ``tokens(start, stop)``, and where the last
        ends: ``stop - start + 1`` values from 0."""
        start, stop = self._range(start, stop)
        pieces, base = [np.zeros(1, np.int64)], 0
        for part, a, b in self._pieces(start, stop):
            first = int(part.ends[a - 1]) if a else 0
            pieces.append(np.asarray(part.ends[a:b], np.int64) - first + base)
            base = int(pieces[-1][-1]) if b > a else base
        return np.concatenate(pieces)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """The ids of documents ``[start, stop)`` (each with its EOS), in the store's dtype."""
        return self._slices(start, stop, lambda part: part.tokens)

    def masks(self, start: int, stop: int) -> Optional[np.ndarray]:
        """Their targets (True on answers and their EOS), or None for a source without answers."""
        if not self.masked:
            return None
        return self._slices(start, stop, lambda part: part.mask).astype(bool)

    def block_end(self, start: int, tokens: int) -> int:
        """The end of a block from document ``start``: at least one document, then up to
        ``tokens`` tokens, never past the end of ``start``'s part."""
        self._check(start)
        k = bisect.bisect_right(self._firsts, start) - 1
        part = self._parts[k]
        a = start - part.first
        base = int(part.ends[a - 1]) if a else 0
        stop = int(np.searchsorted(part.ends, base + tokens, side="right"))
        return part.first + min(max(stop, a + 1), part.documents)

    def _slices(self, start: int, stop: int, array) -> np.ndarray:
        start, stop = self._range(start, stop)
        out = []
        for part, a, b in self._pieces(start, stop):
            lo = int(part.ends[a - 1]) if a else 0
            hi = int(part.ends[b - 1]) if b else 0
            out.append(array(part)[lo:hi])
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _pieces(self, start: int, stop: int) -> list[tuple[_Part, int, int]]:
        """``(part, local start, local stop)`` of every part documents ``[start, stop)`` touch."""
        k = max(bisect.bisect_right(self._firsts, start) - 1, 0)
        pieces: list[tuple[_Part, int, int]] = []
        while k < len(self._parts) and (not pieces or self._parts[k].first < stop):
            part = self._parts[k]
            a, b = max(start - part.first, 0), min(stop - part.first, part.documents)
            pieces.append((part, a, max(a, b)))
            k += 1
        return pieces

    def _range(self, start: int, stop: Optional[int]) -> tuple[int, int]:
        stop = self.documents if stop is None else stop
        if not 0 <= start <= stop <= self.documents:
            self._check(max(start, stop - 1))
            raise IndexError(f"documents [{start}, {stop}) are not in [0, {self.documents})")
        return start, stop

    def _check(self, index: int) -> None:
        """A StoreError when document ``index`` lies past a bounded store's end."""
        if index >= self.documents:
            what = "the whole split" if self.exhausted else "the plan's bound"
            raise StoreError(
                self.label,
                f"document {index:,} is past the {self.documents:,} "
                f"documents it holds ({what}); the plan reads more than was prepared",
                hint=self.hint,
            )

    def __repr__(self) -> str:
        return (
            f"<TokenStore {self.label}: {self.documents:,} documents, {self.n_tokens:,} tokens "
            f"({self.dtype.name}{', masked' if self.masked else ''}) at {self.folder}>"
        )


def _load_manifest(folder: str, fail) -> Optional[dict[str, Any]]:
    try:
        manifest = read_json(os.path.join(folder, MANIFEST))
    except (ValueError, OSError) as err:
        raise fail(f"is corrupt: {err}") from None
    if manifest is None:
        return None
    keys = (
        "format",
        "documents",
        "tokens",
        "exhausted",
        "masked",
        "split",
        "dtype",
        "parts",
        "tokenizer",
        "content",
    )
    if not isinstance(manifest, dict) or any(k not in manifest for k in keys):
        raise fail(f"is corrupt: {os.path.join(folder, MANIFEST)} lacks its fields")
    if manifest["format"] != FORMAT:
        raise fail(f"has format {manifest['format']}, this procdsl reads {FORMAT}")
    return manifest


def _map_parts(folder: str, manifest: dict[str, Any], fail) -> list[_Part]:
    """Memory-map every part, checking each array holds what the manifest says."""
    dtype = np.dtype(manifest["dtype"])
    parts, first = [], 0
    for entry in manifest["parts"]:
        base = os.path.join(folder, entry["dir"])
        documents, tokens = int(entry["documents"]), int(entry["tokens"])
        arrays = {"ends": (np.int64, documents), "tokens": (dtype, tokens)}
        if manifest["masked"]:
            arrays["mask"] = (np.uint8, tokens)
        mapped = {}
        for name, (kind, count) in arrays.items():
            path = os.path.join(base, f"{name}.bin")
            size = os.path.getsize(path) if os.path.isfile(path) else -1
            if size < count * np.dtype(kind).itemsize:
                raise fail(
                    f"is corrupt: {path} holds {max(size, 0):,} bytes, the manifest says "
                    f"{count * np.dtype(kind).itemsize:,}"
                )
            mapped[name] = (
                np.memmap(path, dtype=kind, mode="r", shape=(count,)) if count else np.zeros(0, kind)
            )
        if documents and int(mapped["ends"][-1]) != tokens:
            raise fail(
                f"is corrupt: the offsets of {base} end at {int(mapped['ends'][-1]):,}, not {tokens:,}"
            )
        parts.append(_Part(first, documents, mapped["ends"], mapped["tokens"], mapped.get("mask")))
        first += documents
    if first != manifest["documents"]:
        raise fail("is corrupt: its parts do not add up to its documents")
    return parts


def _other_tokenizers(parent: str, folder: str) -> list[str]:
    """Names of tokenizers with a complete store of the same source (for the message)."""
    if not os.path.isdir(parent):
        return []
    found = []
    for name in sorted(os.listdir(parent)):
        path = os.path.join(parent, name)
        if path == folder:
            continue
        try:
            manifest = read_json(os.path.join(path, MANIFEST))
        except (ValueError, OSError):
            continue
        if isinstance(manifest, dict) and isinstance(manifest.get("tokenizer"), dict):
            found.append(manifest["tokenizer"].get("name", name))
    return found
