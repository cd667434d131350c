"""``hf(dataset, name=, split=, field=, revision=, data_files=)``: a 🤗 dataset, streamed.

The reader calls ``datasets.load_dataset(dataset, name, split=split, streaming=True, …)`` —
the same call for a hub name (``"allenai/c4"``), a local directory, or a packaged builder with
``data_files`` (``hf("json", data_files=("/data/a.jsonl",))``) — and yields ``row[field]`` in
stream order; a document's origin is ``dataset[split]#row``. ``datasets`` is imported on first
use (and it imports torch itself, when torch is installed: ~2 s once). Everything that goes wrong becomes a DataError naming the dataset: unreachable (no network,
``HF_HUB_OFFLINE=1`` without a cached copy), not found, bad split or config, a row without
``field``.

A streamed dataset is a sequence of *shards* (its files); ``read_hf(source, shard=(i, n))``
reads shard ``i`` of ``n`` alone, through ``datasets``' own ``IterableDataset.shard``, and the
shards read in order are the whole stream: a token store prepares them in parallel, on many
nodes (``hf_shards`` says how many there are).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from procdsl.data.document import Document, ReadStats, SourceInfo
from procdsl.data.errors import DataError
from procdsl.plan.sources import HfSource


def read_hf(
    source: HfSource, stats: Optional[ReadStats] = None, *, shard: Optional[tuple[int, int]] = None
) -> Iterator[Document]:
    """Every row's ``field``, in the order the dataset streams them (``shard=(i, n)``: the rows
    of shard ``i`` of the stream's ``n``, contiguous; a shard may be empty)."""
    dataset = load(source)
    if shard is not None:
        dataset = dataset.shard(num_shards=shard[1], index=shard[0], contiguous=True)
    rows = iter(dataset)
    if stats is not None:
        stats.files += 1
    index = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as err:  # noqa: BLE001 — any library failure mid-stream is a data error
            raise DataError(
                f"{_label(source)}: the stream failed at row {index}: {_first_line(err)}"
            ) from None
        where = f"#{index}" if shard is None else f"/shard{shard[0]}#{index}"
        yield Document(_text(row, source, index), origin=f"{source.dataset}[{source.split}]{where}")
        index += 1
    if index == 0 and shard is None:
        raise DataError(f"{_label(source)} has no rows")


def hf_shards(source: HfSource) -> int:
    """How many shards (files) the stream of ``source`` has: the units of parallel work."""
    return max(1, int(getattr(load(source), "n_shards", 1) or 1))


def validate_hf(source: HfSource) -> SourceInfo:
    """Open the stream and read the first row (this reaches the network for a hub dataset)."""
    first = next(read_hf(source), None)
    size = len(first.text) if first else 0
    return SourceInfo(
        "hf", f"{_label(source)}: streamed; the first row's {source.field!r} has {size:,} characters"
    )


def load(source: HfSource) -> Any:
    """The streaming ``IterableDataset`` of ``source``; a DataError when it cannot be opened."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{_label(source)} needs the `datasets` package: pip install 'procdsl[runtime]'"
        ) from None
    kwargs: dict[str, Any] = {"split": source.split, "streaming": True}
    if source.revision is not None:
        kwargs["revision"] = source.revision
    if source.data_files is not None:
        kwargs["data_files"] = list(source.data_files)
    try:
        return datasets.load_dataset(source.dataset, source.name, **kwargs)
    except Exception as err:  # noqa: BLE001 — translated into one clear message below
        raise _load_error(source, err) from None


def _load_error(source: HfSource, err: BaseException) -> DataError:
    reason = _first_line(err)
    if _unreachable(err):
        return DataError(
            f"dataset {source.dataset} cannot be reached offline: {reason}. Connect "
            "to the network, or put a copy in the 🤗 datasets cache (HF_HOME) and "
            "set HF_HUB_OFFLINE=1"
        )
    if type(err).__name__ == "DatasetNotFoundError":
        return DataError(f"dataset {source.dataset} was not found on the Hub or on disk: {reason}")
    if isinstance(err, FileNotFoundError):
        return DataError(f"{_label(source)}: a data file was not found: {reason}")
    return DataError(f"{_label(source)} cannot be opened: {reason}")


def _unreachable(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is a failure to reach the network."""
    seen: set[int] = set()
    current: Optional[BaseException] = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if isinstance(current, (ConnectionError, TimeoutError)) or any(
            word in name for word in ("Connect", "Offline", "Timeout", "LocalEntryNotFound")
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _text(row: Any, source: HfSource, index: int) -> str:
    if source.field not in row:
        fields = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"{_label(source)}: row {index} has no field {source.field!r} (its fields: {fields})")
    value = row[source.field]
    if not isinstance(value, str):
        raise DataError(
            f"{_label(source)}: row {index}: field {source.field!r} is {type(value).__name__}, not a string"
        )
    return value


def _label(source: HfSource) -> str:
    parts = [repr(source.name)] if source.name else []
    parts.append(f"split {source.split!r}")
    return f"dataset {source.dataset} ({', '.join(parts)})"


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
