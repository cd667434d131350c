"""procdsl.runtime.synthetic: batches, loss masks as labels, Stateful resume, rank split; factory names."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime.spec import load_factory  # noqa: E402
from procdsl.runtime.synthetic import PROMPT, SyntheticRows, TitanBatches  # noqa: E402

IGNORE = -100


def loader(rank: int = 0, world: int = 1, batch: int = 4, seq_len: int = 12) -> TitanBatches:
    rows = SyntheticRows(seed=3, dp_rank=rank, dp_world_size=world, seq_len=seq_len, vocab_size=50)
    return TitanBatches(rows, batch_size=batch, seq_len=seq_len, dp_rank=rank, dp_world_size=world)


def test_labels_are_shifted_tokens_with_mask():
    ((inputs, labels),) = [b for b, _ in zip(loader(), range(1))]
    tokens = inputs["input"]
    assert tokens.dtype == labels.dtype == torch.int64
    assert torch.all(labels[:, : PROMPT - 1] == IGNORE)
    torch.testing.assert_close(labels[:, PROMPT - 1 : -1], tokens[:, PROMPT:])
    assert torch.all(labels[:, PROMPT - 1 :] != IGNORE)


def test_resume_continues_exactly():
    first = loader()
    batches = iter(first)
    for _ in range(3):
        next(batches)
    state = first.state_dict()
    assert state == {"dp_rank_0": {"index": 12}, "world_size": 1}
    expected_inputs, expected_labels = next(batches)
    resumed = loader()
    resumed.load_state_dict(state)
    inputs, labels = next(iter(resumed))
    torch.testing.assert_close(inputs["input"], expected_inputs["input"])
    torch.testing.assert_close(labels, expected_labels)


def test_world_size_change_is_refused():
    with pytest.raises(ValueError, match="resharding"):
        loader(world=2).load_state_dict({"dp_rank_0": {"index": 4}, "world_size": 1})
    loader().load_state_dict({})  # an empty state (fresh run) is fine


def test_ranks_split_one_stream():
    single = [
        row[0].tolist()
        for row, _ in zip(
            SyntheticRows(seed=3, dp_rank=0, dp_world_size=1, seq_len=5, vocab_size=50), range(6)
        )
    ]
    for rank in (0, 1):
        rows = SyntheticRows(seed=3, dp_rank=rank, dp_world_size=2, seq_len=5, vocab_size=50)
        assert [r[0].tolist() for r, _ in zip(rows, range(3))] == single[rank::2]


def test_row_length_is_checked():
    rows = SyntheticRows(seed=0, dp_rank=0, dp_world_size=1, seq_len=7, vocab_size=10)
    with pytest.raises(ValueError, match="seq_len"):
        next(iter(TitanBatches(rows, batch_size=2, seq_len=8, dp_rank=0, dp_world_size=1)))


def test_load_factory():
    assert load_factory("procdsl.runtime.synthetic:SyntheticRows") is SyntheticRows
    with pytest.raises(ValueError):
        load_factory("procdsl.runtime.synthetic.SyntheticRows")
