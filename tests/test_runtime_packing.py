"""A packed, document-masked row is exactly its units run one per row (gpt2 and llama).

The loss of a packed batch — positions restarting per unit, attention kept inside each unit —
must equal the sum of the losses of every unit run alone as its own row from position 0, to
float tolerance. That is what makes packing a speed-up and not another experiment.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from procdsl.runtime.batches import input_dict, model_kwargs
from procdsl.runtime.losses import token_losses
from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs
from runtime_models import materialize

from procdsl.compiler import compile_text
from procdsl.stream import PhaseStream

CONTEXT = 48


@pytest.fixture(scope="module")
def packed_batch():
    plan = compile_text(
        f"""curriculum p {{
  model = gpt2(layers=2, heads=2, dim=16)
  context = {CONTEXT}
  batch = 4
  source code = python_code()
  source s = sort(length=3..9, vocab=10)
  source d = dyck(k=2, length=4..12)
  phase p {{ steps = 2  mix = {{ code: 40%, s: 30%, d: 30% }} }}
}}""",
        "p.curr",
    ).plan
    stream = PhaseStream(plan, "p")
    assert stream.phase.layout == "packed"
    batch = next(iter(stream))
    assert batch.starts.sum() > 2 * len(batch.tokens), "rows should hold several units"
    return batch, stream.vocab.size


def unit_rows(batch):
    """Every unit of the batch as ``(tokens, targets)``, padding left out."""
    for r in range(len(batch.tokens)):
        starts = list(np.flatnonzero(batch.starts[r])) + [int((~batch.padding[r]).sum())]
        for a, b in zip(starts, starts[1:]):
            yield batch.tokens[r, a:b], batch.targets[r, a:b]


def loss_sum(model, inputs: dict, labels: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(inputs["input"], **model_kwargs(inputs, torch.device("cpu")))
    return float(token_losses(logits, labels).double().sum())


def assert_packing_is_exact(model, batch, plain=None) -> None:
    """``model`` on the packed rows equals ``plain`` (default: ``model``) on every unit alone;
    ``plain`` is the same weights with ordinary causal attention where ``model`` needs a mask."""
    plain = model if plain is None else plain
    packed = loss_sum(model, input_dict(batch, packed=True), torch.from_numpy(batch.labels))
    alone = 0.0
    for tokens, targets in unit_rows(batch):
        row = torch.from_numpy(tokens[None].astype(np.int64))
        labels = torch.where(torch.from_numpy(targets[None, 1:]), row[:, 1:], -100)
        alone += loss_sum(plain, {"input": row[:, :-1]}, labels)
    assert packed == pytest.approx(alone, rel=1e-5)
    # and the mask matters: the same rows without it give another loss
    unmasked = loss_sum(
        plain, {"input": torch.from_numpy(batch.inputs.astype(np.int64))}, torch.from_numpy(batch.labels)
    )
    assert unmasked != pytest.approx(packed, rel=1e-5)


@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_packed_rows_equal_units_alone(packed_batch, tied):
    batch, vocab = packed_batch
    args = GPT2ModelArgs.from_shape(
        layers=2, heads=2, dim=16, vocab_size=vocab, context=CONTEXT, tie_embeddings=tied
    )
    model = materialize(GPT2, args).eval()
    assert_packing_is_exact(model, batch)


LLAMA_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import test_runtime_packing as t
from procdsl.runtime.models.llama import Llama
from procdsl.runtime.spec import llama_args
from runtime_models import materialize
batch, vocab = t.packed_batch.__wrapped__()
shape = dict(layers=2, heads=2, dim=16, vocab_size=vocab, context=t.CONTEXT, multiple_of=16)
packed = materialize(Llama, llama_args(**shape, flex=True)).eval()
plain = materialize(Llama, llama_args(**shape, flex=False), seed=1).eval()
plain.load_state_dict(packed.state_dict())
t.assert_packing_is_exact(packed, batch, plain)
print("exact")
"""


@pytest.mark.slow  # compiles flex attention (~30 s on a CPU)
def test_llama_packed_rows_equal_units_alone():
    """The units alone run through the same weights with SDPA's causal attention: torch 2.13's
    compiled CPU flex kernel, recompiled for a dynamic length, returns NaN at times for rows
    shorter than its block (a length-8 row, about one call in ten; rows of a run are always
    ``context`` long). In a fresh process, as compiled tests in one worker interact."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", LLAMA_CHILD, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and "exact" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]


PACKED_RUN = """curriculum packed {
  seed    = 0
  model   = %(model)s
  context = 48
  batch   = 4
  source code = python_code()
  source s    = sort(length=3..9, vocab=10)
  source val  = python_code()
  phase p {
    steps = 4
    mix   = { code: 50%%, s: 50%% }
    optimizer = adamw(lr=3e-3)
    eval every 4 steps { perplexity(val, batches=1) }
  }
}
"""


LLAMA = "llama(layers=1, heads=2, dim=16, multiple_of=16)"


@pytest.mark.slow  # a whole run
@pytest.mark.parametrize(
    "model",
    [
        "gpt2(layers=1, heads=2, dim=16)",
        pytest.param(
            LLAMA,
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(
                    not torch.cuda.is_available(), reason="flex attention trains on CUDA only"
                ),
            ],
        ),
    ],
)
def test_a_packed_phase_trains_end_to_end(tmp_path, model):
    """The trainer hands positions and document ids to either model (no tokenizer-made masks)."""
    import math

    from procdsl.runtime.run import execute

    from procdsl.compiler import compile_file
    from procdsl.rundir import read_metrics

    path = tmp_path / "packed.curr"
    path.write_text(PACKED_RUN % {"model": model})
    plan = compile_file(str(path)).plan
    assert plan.phases[0].layout == "packed"
    device = "cuda" if "llama" in model else "cpu"
    summary = execute(plan, out=str(tmp_path / "run"), device=device, claim=True)
    assert summary["status"] == "done", summary
    records = read_metrics(str(tmp_path / "run"))
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert evals and math.isfinite(evals[-1]["loss"])


def test_llama_packed_on_cpu_is_refused_before_training(tmp_path):
    """Flex attention has no CPU backward: say so before the first step, with the fixes."""
    from procdsl.runtime.jobconfig import ConfigError
    from procdsl.runtime.run import execute

    from procdsl.compiler import compile_file

    path = tmp_path / "packed.curr"
    path.write_text(PACKED_RUN % {"model": LLAMA})
    with pytest.raises(ConfigError, match="layout = padded"):
        execute(compile_file(str(path)).plan, out=str(tmp_path / "run"), device="cpu", claim=True)
