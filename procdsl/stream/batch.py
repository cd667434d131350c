"""A batch of rows, and its shift convention.

A row holds ``C + 1`` whole units and padding (``C`` = context; :mod:`procdsl.stream.pack`).
Position ``t`` of the *inputs* ``tokens[:, :-1]`` predicts the token at ``t + 1``, so

* ``inputs = tokens[:, :-1]`` and ``labels = tokens[:, 1:]`` with ``-100`` where
  ``targets[:, 1:]`` is False (PyTorch's ``ignore_index``): hand these to the model and
  ``cross_entropy`` as they are;
* ``targets[r, t]`` says whether token ``t`` is a training target (predicted from ``t - 1``,
  which is always in the same unit: a unit's first token is never a target, nor is padding);
* ``source[r, t]`` is the index (in ``sources``) of the source token ``t`` came from;
  ``label_source`` (``source[:, 1:]``) lines up with ``labels`` for a per-source loss;
* ``starts[r, t]`` marks the first token of a unit (an example, or a piece of a document);
* ``document[r, t]`` numbers the units of a row (padding takes the next number) and
  ``positions[r, t]`` counts from 0 in each: token ``t`` attends to ``u ≤ t`` only where
  ``document[r, u] == document[r, t]``, at position ``positions[r, t]``;
  ``input_positions``/``input_document`` are their ``[:, :-1]`` views, for the model.

``(tokens[i], targets[i])`` is exactly a row of the runtime's row-stream protocol
(``seq_len + 1`` tokens with a target mask): see :meth:`Batch.rows`.

``source_tokens`` counts, per source, the tokens the *global* batch (every rank's rows) holds,
and ``pad_tokens`` its padding: known from the layout alone, the same on every rank, so achieved
shares are logged without communication. ``source_targets`` counts the target tokens of *this
rank's* rows (targets need the content, which a rank makes only for its own rows; summed over
the ranks — as the trainer's one all-reduce does — they are the global batch's).

>>> batch = Batch(step=0, tokens=np.array([[5, 6, 7, 8]], np.int32),
...               targets=np.array([[False, True, False, True]]),
...               source=np.array([[0, 0, 1, 1]], np.int8), starts=np.array([[1, 0, 1, 0]], bool),
...               sources=("a", "b"), source_tokens=(2, 2), source_targets=(1, 1),
...               positions=np.array([[0, 1, 0, 1]], np.int32),
...               document=np.array([[0, 0, 1, 1]], np.int16))
>>> batch.inputs.tolist(), batch.labels.tolist(), batch.label_source.tolist()
([[5, 6, 7]], [[6, -100, 8]], [[0, 1, 1]])
>>> batch.input_positions.tolist(), batch.input_document.tolist()
([[0, 1, 0]], [[0, 0, 1]])
>>> batch.counts()
{'a': {'tokens': 2, 'targets': 1}, 'b': {'tokens': 2, 'targets': 1}}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: the label of a position without loss (PyTorch's default ``ignore_index``)
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Batch:
    """One rank's rows of one step: ``[b, context + 1]`` arrays (module docstring)."""

    step: int
    tokens: np.ndarray  # int32 [b, C + 1]
    targets: np.ndarray  # bool  [b, C + 1]
    source: np.ndarray  # int8  [b, C + 1]
    starts: np.ndarray  # bool  [b, C + 1]
    sources: tuple[str, ...]
    source_tokens: tuple[int, ...]  # tokens per source, global batch
    source_targets: tuple[int, ...]  # target tokens per source, this rank's rows
    positions: np.ndarray  # int32 [b, C + 1]: position within the unit
    document: np.ndarray  # int16 [b, C + 1]: unit number within the row
    pad_tokens: int = 0  # padding tokens of the global batch

    @property
    def inputs(self) -> np.ndarray:
        """``[b, C]`` int32: what the model reads."""
        return self.tokens[:, :-1]

    @property
    def labels(self) -> np.ndarray:
        """``[b, C]`` int64: the next token, or ``IGNORE_INDEX`` where there is no loss."""
        return np.where(self.targets[:, 1:], self.tokens[:, 1:], IGNORE_INDEX).astype(np.int64)

    @property
    def padding(self) -> np.ndarray:
        """``[b, C + 1]`` bool: the padding of each row (after its last unit)."""
        return self.document >= self.starts.sum(axis=1, keepdims=True)

    @property
    def input_positions(self) -> np.ndarray:
        """``[b, C]`` int32: the position of each input within its unit."""
        return self.positions[:, :-1]

    @property
    def input_document(self) -> np.ndarray:
        """``[b, C]`` int16: the unit number of each input within its row."""
        return self.document[:, :-1]

    @property
    def label_source(self) -> np.ndarray:
        """``[b, C]`` int8: the source of each label."""
        return self.source[:, 1:]

    def rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(tokens, targets)`` per row, ``context + 1`` long (the runtime's row protocol)."""
        return zip(self.tokens, self.targets)

    def counts(self) -> dict[str, dict[str, int]]:
        """Labels and target labels per source in the global batch, for the metrics log."""
        return {
            name: {"tokens": t, "targets": g}
            for name, t, g in zip(self.sources, self.source_tokens, self.source_targets)
        }
