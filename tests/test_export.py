"""``procdsl export`` and ``procdsl eval``: Hugging Face models whose logits are the runtime's.

Parity: a runtime model with random weights (biases and norms too, so every mapping matters)
and its Hugging Face twin give the same logits to 1e-5 in float32 — gpt2 tied and untied,
llama with grouped-query attention. Tokenizers: the exported tokenizer gives the run's ids for
every kind (bytes, char, gpt2, bpe) and names procedural ids. End to end: a tiny run exported
by the CLI loads with ``AutoModelForCausalLM`` and matches the checkpoint's model; lm-eval runs
a local task on it offline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from procdsl.runtime.export import build_model, load_weights, to_hf_model  # noqa: E402
from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs  # noqa: E402
from procdsl.runtime.run import execute  # noqa: E402
from procdsl.runtime.spec import llama_args  # noqa: E402
from runtime_models import materialize  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from procdsl.cli import app  # noqa: E402
from procdsl.compiler import compile_file, compile_text  # noqa: E402
from procdsl.data import build_tokenizer  # noqa: E402
from procdsl.data.hf_tokenizer import write_tokenizer  # noqa: E402
from procdsl.stream import PhaseVocab  # noqa: E402

TEXT = "def f(x):\n    return x  # é, ünïcode ✓\n\tdone."


def randomized(model):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return model.eval()


def max_logit_gap(model, kind: str, vocab: int, seq: int = 24) -> float:
    hf = to_hf_model(model, kind)
    tokens = torch.randint(0, vocab, (3, seq), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return float((model(tokens) - hf(tokens).logits).abs().max())


@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_logits_equal(tied):
    args = GPT2ModelArgs.from_shape(layers=2, heads=2, dim=16, vocab_size=37, context=32, tie_embeddings=tied)
    model = randomized(materialize(GPT2, args))
    assert max_logit_gap(model, "gpt2", 37) < 1e-5
    hf = to_hf_model(model, "gpt2")
    assert hf.config.tie_word_embeddings is tied
    assert (hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()) is tied


def test_llama_logits_equal():
    from torchtitan.models.llama3 import Transformer

    args = llama_args(layers=2, heads=4, dim=32, kv_heads=2, vocab_size=37, context=32)
    model = randomized(materialize(Transformer, args))
    assert max_logit_gap(model, "llama", 37) < 1e-5


def test_a_wrong_mapping_is_caught():
    """The parity check can fail: swapping q and k rows of one layer changes the logits."""
    args = GPT2ModelArgs.from_shape(layers=1, heads=2, dim=16, vocab_size=37, context=32)
    model = randomized(materialize(GPT2, args))
    hf = to_hf_model(model, "gpt2")
    with torch.no_grad():
        w = hf.transformer.h[0].attn.c_attn.weight
        w.copy_(torch.cat([w[:, 16:32], w[:, :16], w[:, 32:]], dim=1))
    tokens = torch.randint(0, 37, (2, 16))
    with torch.no_grad():
        assert float((model(tokens) - hf(tokens).logits).abs().max()) > 1e-3


CURRICULUM = """curriculum tok {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 64  batch = 2  tokenizer = %s
  source code = jsonl("docs.jsonl", field="text")
  source s = sort(length=4, vocab=5)
  phase p { steps = 1  mix = { code: 80%%, s: 20%% } }
}"""


@pytest.mark.parametrize("kind", ["bytes", "char", "gpt2", "bpe(vocab=300, train_on=code)"])
def test_tokenizer_round_trips(kind, tmp_path):
    docs = [TEXT, "print('hello world')\n" * 3, "for i in range(10): pass"] * 20
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp_path / "tok.curr").write_text(CURRICULUM % kind)
    result = compile_file(str(tmp_path / "tok.curr"))
    assert result.ok, result.diagnostics
    plan = result.plan
    vocab = PhaseVocab.for_phase(plan, "p", cache_dir=str(tmp_path / "cache"))
    files = write_tokenizer(vocab, str(tmp_path / "hf"))
    assert "tokenizer.json" in files
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    ours = vocab.tokenizer
    assert len(hf) == vocab.size
    for text in docs[:3]:
        ids = hf(text, add_special_tokens=False)["input_ids"]
        assert ids == ours.encode(text).tolist()
        if kind != "char":  # char maps é to <unk>: lossy by design
            assert hf.decode(ids) == text
    assert hf.eos_token_id == ours.eos_id
    sep = vocab.offset("s") + 5  # sort's separator follows its 5 symbols
    assert hf.convert_ids_to_tokens(sep) == "<|s:SEP|>"
    assert hf("<|s:3|><|s:SEP|>", add_special_tokens=False)["input_ids"] == [vocab.offset("s") + 3, sep]
    if kind == "gpt2":
        assert {"vocab.json", "merges.txt"} <= set(files)


def test_procedural_only_phase_gets_a_word_level_tokenizer(tmp_path):
    plan = compile_text(
        """curriculum w { model = gpt2(layers=1, heads=1, dim=8) context = 32
      batch = 2 source s = sort(length=4, vocab=5) phase p { steps = 1 mix = { s: 100% } } }""",
        "w.curr",
    ).plan
    write_tokenizer(PhaseVocab.for_phase(plan, "p"), str(tmp_path))
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf("<|s:4|> <|s:SEP|>", add_special_tokens=False)["input_ids"] == [4, 5]
    assert len(hf) == PhaseVocab.for_phase(plan, "p").size


TINY = """curriculum exp {
  seed = 0
  model = %(model)s
  tokenizer = bytes
  context = 32
  batch = 4
  source code = python_code()
  source s = sort(length=4..8, vocab=10)
  phase warm { steps = 2  mix = { s: 100%% } }
  phase main { steps = 3  mix = { code: 70%%, s: 30%% }  transfer = { keep: [attn, mlp, norm, pos], reinit: [embed, head] } }
}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    path = folder / "exp.curr"
    path.write_text(TINY % {"model": "gpt2(layers=1, heads=2, dim=16)"})
    result = compile_file(str(path))
    assert result.ok, result.diagnostics
    out = folder / "run"
    assert execute(result.plan, out=str(out), device="cpu", claim=True)["status"] == "done"
    return result.plan, out


def test_export_cli_end_to_end(tiny_run, tmp_path):
    plan, run = tiny_run
    out = tmp_path / "hf"
    result = CliRunner().invoke(app, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "step 5 (phase main)" in result.output and "GPT2LMHeadModel" in result.output
    assert {"model.safetensors", "config.json", "tokenizer.json", "procdsl_export.json"} <= {
        p.name for p in out.iterdir()
    }
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(out)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    vocab = PhaseVocab.for_phase(plan, "main", cache_dir=str(run / "cache"))
    model = build_model(plan, vocab.size)
    load_weights(model, str(run / "checkpoints" / "step-5"))
    ids = tokenizer("def main():\n    return 0", return_tensors="pt")["input_ids"]
    ids = torch.cat([ids, torch.tensor([[vocab.offset("s") + 2, vocab.offset("s") + 10]])], dim=1)
    with torch.no_grad():
        assert float((model(ids) - hf(ids).logits).abs().max()) < 1e-5
    assert hf.config.eos_token_id == build_tokenizer("bytes").eos_id
    # an earlier checkpoint holds the warm-up model: procedural ids only
    result = CliRunner().invoke(app, ["export", str(run), "--step", "2", "--out", str(tmp_path / "w")])
    assert result.exit_code == 0 and "phase warm" in result.output
    warm = PhaseVocab.for_phase(plan, "warm")
    assert json.loads((tmp_path / "w" / "config.json").read_text())["vocab_size"] == warm.size
    assert warm.text_size == 0 and (tmp_path / "w" / "tokenizer.json").is_file()


def test_export_errors_are_one_line(tiny_run, tmp_path):
    _, run = tiny_run
    missing = CliRunner().invoke(app, ["export", str(run), "--step", "3", "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "no complete checkpoint of step 3" in missing.output
    assert "Traceback" not in missing.output
    empty = CliRunner().invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "x")])
    assert empty.exit_code == 1 and "not a run directory" in empty.output


def test_llama_run_exports(tmp_path):
    path = tmp_path / "exp.curr"
    # padded rows: causal attention over the whole row, as LlamaForCausalLM computes it
    text = TINY % {"model": "llama(layers=1, heads=2, dim=16, kv_heads=1)"}
    path.write_text(text.replace("phase main { steps = 3", "phase main { steps = 3  layout = padded"))
    plan = compile_file(str(path)).plan
    execute(plan, out=str(tmp_path / "run"), device="cpu", claim=True)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0 and "LlamaForCausalLM" in result.output, result.output
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    vocab = PhaseVocab.for_phase(plan, "main")
    model = build_model(plan, vocab.size)
    load_weights(model, str(tmp_path / "run" / "checkpoints" / "step-5"))
    ids = torch.randint(0, vocab.size, (2, 32))
    with torch.no_grad():
        assert float((model(ids) - hf(ids).logits).abs().max()) < 1e-5


TASK = """task: procdsl_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: %s
test_split: test
output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{answer}}"
metric_list:
  - metric: acc
"""


def write_tiny_task(folder: Path) -> Path:
    """The local lm-eval task ``procdsl_tiny`` (four two-choice sums, data beside it) in
    ``folder/tasks/``; returns that folder, for ``--include-path``."""
    rows = [
        {"question": f"{a} + {b} =", "choices": [f" {a + b}", f" {a + b + 1}"], "answer": 0}
        for a, b in [(1, 2), (3, 4), (5, 6), (2, 2)]
    ]
    tasks = folder / "tasks"
    tasks.mkdir()
    data = tasks / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "tiny.yaml").write_text(TASK % data)
    return tasks


def test_lm_eval_on_the_export_offline(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, run = tiny_run
    tasks = write_tiny_task(tmp_path)
    result = CliRunner().invoke(
        app, ["eval", str(run), "--tasks", "procdsl_tiny", "--include-path", str(tasks), "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("{") :])
    acc = record["results"]["procdsl_tiny"]["acc,none"]
    assert 0 <= acc <= 1 and acc * 4 == int(acc * 4)
    written = json.loads((run / "lm_eval" / "step-5.json").read_text())
    assert written["results"] == record["results"]
    assert all(
        v is None or not isinstance(v, float) or math.isfinite(v)
        for v in written["results"]["procdsl_tiny"].values()
    )
    unknown = CliRunner().invoke(app, ["eval", str(run), "--tasks", "nope", "--include-path", str(tasks)])
    assert unknown.exit_code == 1 and "unknown lm-eval task(s): nope" in unknown.output
