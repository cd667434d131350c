"""The prefetching loader: the same batches, and a state that is the *trained* batches' state."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from procdsl.runtime.batches import StreamBatches  # noqa: E402
from procdsl.runtime.prefetch import Consumed, prefetched  # noqa: E402

from procdsl.compiler import compile_text  # noqa: E402
from procdsl.stream import PhaseStream  # noqa: E402

PLAN = compile_text(
    """curriculum f {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 32
  batch = 4
  source code = python_code()
  source s = sort(length=3..9, vocab=10)
  phase p { steps = 12  mix = { code: 60%, s: 40% } }
}""",
    "f.curr",
).plan


def batches(loader, count):
    it = iter(loader)
    out = [next(it) for _ in range(count)]
    return out, it


def same(a, b) -> bool:
    (ia, la), (ib, lb) = a, b
    return ia.keys() == ib.keys() and all(torch.equal(ia[k], ib[k]) for k in ia) and torch.equal(la, lb)


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetching_serves_the_same_batches_and_the_consumed_state(depth):
    plain, _ = batches(StreamBatches(PhaseStream(PLAN, "p"), prefetch=0), 12)
    ahead = StreamBatches(PhaseStream(PLAN, "p"), prefetch=depth)
    got, it = batches(ahead, 5)
    assert all(same(a, b) for a, b in zip(got, plain))
    reference = StreamBatches(PhaseStream(PLAN, "p"), prefetch=0)
    batches(reference, 5)
    # the thread has run ahead, but the state is that of the 5 batches taken
    assert ahead.state_dict() == reference.state_dict()
    assert ahead.achieved_shares() == reference.achieved_shares()
    assert ahead.step_shares() == reference.step_shares()
    it.close()
    resumed = StreamBatches(PhaseStream(PLAN, "p"), prefetch=depth)
    resumed.load_state_dict(json.loads(json.dumps(ahead.state_dict())))
    rest, _ = batches(resumed, 7)
    assert all(same(a, b) for a, b in zip(rest, plain[5:]))


def test_a_producer_error_reaches_the_consumer_and_closing_stops_the_thread():
    def produce():
        yield 1, "after 1"
        raise RuntimeError("bad data file")

    it = prefetched(produce, depth=2, consumed=Consumed())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="bad data file"):
        next(it)

    def endless():
        i = 0
        while True:
            yield i, i
            i += 1

    consumed = Consumed()
    it = prefetched(endless, depth=2, consumed=consumed)
    assert [next(it) for _ in range(3)] == [0, 1, 2] and consumed.state == 2
    it.close()  # joins the thread: a hang here would time the test out
