"""Reading DCP checkpoints without running code from them.

Torch's ``FileSystemReader.read_metadata`` reads ``.metadata`` with ``pickle.load``, and the
default load planner reads every non-tensor entry (a step count, the stream state, optimizer
hyper-parameters) with ``torch.load(weights_only=False)``: a checkpoint someone else wrote can
run any code on load. Here:

* :class:`SafeReader` reads ``.metadata`` with :class:`MetadataUnpickler`, which resolves only the
  classes DCP itself writes there (``Metadata``, ``TensorStorageMetadata``, ``_StorageInfo``,
  ``torch.Size``, dtypes, …, listed in :data:`ALLOWED`); anything else is refused;
* :class:`SafePlanner` reads non-tensor entries with ``torch.load(weights_only=True)``
  (primitive containers only — all that procdsl, TorchTitan and torch's optimizers store);
* tensors are read by DCP with ``weights_only=True`` already.

A refused checkpoint raises :class:`UnsafeCheckpoint`, naming the file and the global.

>>> import io, os, pickle
>>> payload = pickle.dumps(os.system)            # what an attack would reference
>>> try:
...     MetadataUnpickler(io.BytesIO(payload)).load()
... except UnsafeCheckpoint as refused:
...     print(refused)
refers to posix.system, which DCP metadata never holds
"""

from __future__ import annotations

import io
import pickle
import warnings
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

_DCP = "torch.distributed.checkpoint.metadata"
#: (module, name) of every global DCP pickles into ``.metadata`` (torch 2.x), and nothing else
ALLOWED = frozenset(
    {
        (_DCP, "Metadata"),
        (_DCP, "TensorStorageMetadata"),
        (_DCP, "BytesStorageMetadata"),
        (_DCP, "ChunkStorageMetadata"),
        (_DCP, "TensorProperties"),
        (_DCP, "MetadataIndex"),
        (_DCP, "StorageMeta"),
        (_DCP, "_MEM_FORMAT_ENCODING"),
        ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
        ("torch.serialization", "_get_layout"),
        ("torch", "Size"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("pathlib", "PurePosixPath"),
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
    }
)


class UnsafeCheckpoint(Exception):
    """A checkpoint file asks to load something a checkpoint never holds."""


class MetadataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED` globals (and torch dtypes)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise UnsafeCheckpoint(f"refers to {module}.{name}, which DCP metadata never holds")


class SafeReader(FileSystemReader):
    """DCP's file system reader with ``.metadata`` read by :class:`MetadataUnpickler`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        path = self._get_metadata_path(kwargs.get("rank"))
        with open(path, "rb") as f:
            try:
                metadata = MetadataUnpickler(f).load()
            except UnsafeCheckpoint as refused:
                raise UnsafeCheckpoint(f"{path} {refused}") from None
            except Exception as error:  # noqa: BLE001 — any unpickling failure: not DCP metadata
                raise UnsafeCheckpoint(
                    f"{path} is not DCP metadata ({type(error).__name__}: {error})"
                ) from None
        if not isinstance(metadata, Metadata):
            raise UnsafeCheckpoint(f"{path} holds a {type(metadata).__name__}, not DCP metadata")
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafePlanner(DefaultLoadPlanner):
    """DCP's default load planner, reading non-tensor entries with ``weights_only=True``."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        try:
            loaded = torch.load(value, weights_only=True)
        except pickle.UnpicklingError as refused:
            raise UnsafeCheckpoint(
                f"entry {read_item.dest_index.fqn!r} is not plain data ({str(refused).splitlines()[0]})"
            ) from None
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
        else:
            self.state_dict[read_item.dest_index.fqn] = loaded


def read_metadata(path: str) -> Metadata:
    """The DCP metadata of checkpoint directory ``path``, read safely."""
    return SafeReader(path).read_metadata()


def load(state: dict[str, Any], path: str, *, no_dist: bool = False) -> None:
    """``dcp.load(state, …)`` from ``path`` through :class:`SafeReader` and :class:`SafePlanner`."""
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        try:
            dcp.load(state, storage_reader=SafeReader(path), planner=SafePlanner(), no_dist=no_dist)
        except CheckpointException as failed:  # DCP wraps each rank's error: show ours as is
            for failure in failed.failures.values():
                inner = failure[0] if isinstance(failure, tuple) else failure  # (exception, stack)
                if isinstance(inner, UnsafeCheckpoint):
                    raise UnsafeCheckpoint(f"{path}: {inner}") from None
            raise


__all__ = [
    "ALLOWED",
    "MetadataUnpickler",
    "SafePlanner",
    "SafeReader",
    "UnsafeCheckpoint",
    "load",
    "read_metadata",
]
