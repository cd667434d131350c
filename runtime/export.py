"""``procdsl export``: a run's checkpoint as a Hugging Face model directory.

The checkpoint of step ``N`` (default: the newest complete one) holds the model of the phase
that wrote it, with that phase's vocabulary. The export directory gets

* ``model.safetensors`` and ``config.json``: ``gpt2`` → ``GPT2LMHeadModel`` (tied or untied
  head), ``llama`` → ``LlamaForCausalLM`` (through TorchTitan's ``Llama3StateDictAdapter``,
  which also permutes q/k for Hugging Face's RoPE layout, and llama3 RoPE scaling as TorchTitan
  applies it);
* the phase's tokenizer (``procdsl.data.hf_tokenizer``): same ids, procedural ids as added
  tokens;
* ``procdsl_export.json``: the run, step, phase and plan hash it came from.

GPT-2 mapping (ours → Hugging Face's ``Conv1D`` layers, which store ``weight`` transposed)::

    tok_embeddings / pos_embeddings        transformer.wte / transformer.wpe
    layers.i.attention_norm / mlp_norm     transformer.h.i.ln_1 / ln_2
    layers.i.attention.qkv / out           transformer.h.i.attn.c_attn / c_proj   (weight.T)
    layers.i.mlp.up / down                 transformer.h.i.mlp.c_fc / c_proj      (weight.T)
    norm / output                          transformer.ln_f / lm_head (tied: the wte matrix)

Our fused ``qkv`` is ``[q; k; v]`` with heads contiguous inside each, as ``c_attn`` splits it;
``gelu_new`` is the tanh GELU. The test suite checks that the logits agree to 1e-5 in float32.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch

from procdsl.plan import Plan, load_plan
from procdsl.rundir import PLAN_FILE

from .checkpoint import checkpoint_path, latest_step, read_run_state
from .jobconfig import CHECKPOINT_FOLDER, max_context, model_section

#: llama3's RoPE scaling as TorchTitan's ``RoPEScalingArgs`` default applies it
_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": "scaling_factor",
    "low_freq_factor": "low_freq_factor",
    "high_freq_factor": "high_freq_factor",
    "original_max_position_embeddings": "original_max_position_embeddings",
}


class ExportError(ValueError):
    """The run cannot be exported as asked (message says why)."""


@dataclass
class Exported:
    """What :func:`export_run` wrote."""

    folder: str
    step: int
    phase: str
    architecture: str
    vocab_size: int
    files: list[str]


def build_model(plan: Plan, vocab_size: int) -> torch.nn.Module:
    """The runtime model of ``plan`` with ``vocab_size`` rows, materialised on the CPU (weights
    initialised; :func:`load_weights` overwrites them)."""
    from .spec import SPECS

    section = model_section(plan, vocab_size)
    spec = SPECS[section["name"]]()
    args = spec.model_args[section["flavor"]]
    with torch.device("meta"):
        model = spec.model_cls(args)
    model.to_empty(device="cpu")
    with torch.no_grad():
        model.init_weights()
    return model.eval()


def load_weights(model: torch.nn.Module, path: str) -> None:
    """Fill ``model`` from the DCP checkpoint at ``path`` (model entries only)."""
    import torch.distributed.checkpoint as dcp

    state = model.state_dict()
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=path, no_dist=True)
    model.load_state_dict(state)


def gpt2_to_hf(model: torch.nn.Module) -> tuple[Any, dict[str, torch.Tensor]]:
    """``(GPT2Config, state dict)`` of a procdsl GPT-2 (module docstring for the mapping)."""
    from transformers import GPT2Config

    args = model.model_args
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    hf = {
        "transformer.wte.weight": sd["tok_embeddings.weight"],
        "transformer.wpe.weight": sd["pos_embeddings.weight"],
        "transformer.ln_f.weight": sd["norm.weight"],
        "transformer.ln_f.bias": sd["norm.bias"],
    }
    pairs = (
        ("attention_norm", "ln_1", False),
        ("mlp_norm", "ln_2", False),
        ("attention.qkv", "attn.c_attn", True),
        ("attention.out", "attn.c_proj", True),
        ("mlp.up", "mlp.c_fc", True),
        ("mlp.down", "mlp.c_proj", True),
    )
    for i in range(args.n_layers):
        for ours, theirs, transpose in pairs:
            weight = sd[f"layers.{i}.{ours}.weight"]
            hf[f"transformer.h.{i}.{theirs}.weight"] = weight.t().contiguous() if transpose else weight
            hf[f"transformer.h.{i}.{theirs}.bias"] = sd[f"layers.{i}.{ours}.bias"]
    hf["lm_head.weight"] = sd["tok_embeddings.weight" if args.tie_embeddings else "output.weight"]
    config = GPT2Config(
        vocab_size=args.vocab_size,
        n_positions=args.max_seq_len,
        n_embd=args.dim,
        n_layer=args.n_layers,
        n_head=args.n_heads,
        n_inner=int(args.mlp_ratio * args.dim),
        activation_function="gelu_new",
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        layer_norm_epsilon=args.norm_eps,
        initializer_range=args.init_std,
        tie_word_embeddings=args.tie_embeddings,
        bos_token_id=None,
        eos_token_id=None,
    )
    return config, hf


def llama_to_hf(model: torch.nn.Module) -> tuple[Any, dict[str, torch.Tensor]]:
    """``(LlamaConfig, state dict)`` of TorchTitan's llama3, through its state-dict adapter."""
    from torchtitan.models.llama3.model.state_dict_adapter import Llama3StateDictAdapter
    from transformers import LlamaConfig

    args = model.model_args
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    hf = Llama3StateDictAdapter(args, None).to_hf(sd)
    scaling = args.rope_scaling_args
    rope = {"rope_theta": args.rope_theta} | {
        theirs: (getattr(scaling, ours) if theirs != "rope_type" else ours)
        for theirs, ours in _LLAMA3_ROPE.items()
    }
    config = LlamaConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.dim,
        intermediate_size=model.layers["0"].feed_forward.w1.out_features,
        num_hidden_layers=args.n_layers,
        num_attention_heads=args.n_heads,
        num_key_value_heads=args.n_kv_heads or args.n_heads,
        hidden_act="silu",
        max_position_embeddings=args.max_seq_len,
        rms_norm_eps=args.norm_eps,
        rope_parameters=rope,
        tie_word_embeddings=False,
        head_dim=args.dim // args.n_heads,
        bos_token_id=None,
        eos_token_id=None,
    )
    return config, hf


def to_hf_model(model: torch.nn.Module, kind: str) -> Any:
    """The Hugging Face model (``GPT2LMHeadModel`` / ``LlamaForCausalLM``) holding ``model``'s
    weights; every parameter must be mapped (strict loading)."""
    from transformers import GPT2LMHeadModel, LlamaForCausalLM

    config, state = (gpt2_to_hf if kind == "gpt2" else llama_to_hf)(model)
    cls = GPT2LMHeadModel if kind == "gpt2" else LlamaForCausalLM
    hf_model = cls(config)
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        raise RuntimeError(f"export mapping incomplete: missing {missing}, unexpected {unexpected}")
    return hf_model.eval()


def resolve_step(run_dir: str, step: Optional[int]) -> int:
    """The checkpoint step to export: ``step`` if complete, else the newest (ExportError if none)."""
    folder = os.path.join(run_dir, CHECKPOINT_FOLDER)
    newest = latest_step(folder)
    if newest is None:
        raise ExportError(f"{run_dir} has no complete checkpoint under {CHECKPOINT_FOLDER}/")
    if step is None:
        return newest
    if not os.path.isfile(os.path.join(checkpoint_path(folder, step), ".metadata")):
        steps = sorted(
            int(n.split("-")[1])
            for n in os.listdir(folder)
            if os.path.isfile(os.path.join(folder, n, ".metadata"))
        )
        raise ExportError(
            f"no complete checkpoint of step {step} in {folder}; there are {', '.join(map(str, steps))}"
        )
    return step


def export_run(run_dir: str, out: str, step: Optional[int] = None) -> Exported:
    """Write the Hugging Face directory of ``run_dir``'s checkpoint ``step`` into ``out``."""
    from procdsl.data.hf_tokenizer import write_tokenizer
    from procdsl.stream import PhaseVocab

    plan_path = os.path.join(run_dir, PLAN_FILE)
    if not os.path.isfile(plan_path):
        raise ExportError(f"{run_dir} is not a run directory (no plan.json)")
    plan = load_plan(plan_path)
    step = resolve_step(run_dir, step)
    path = checkpoint_path(os.path.join(run_dir, CHECKPOINT_FOLDER), step)
    state = read_run_state(path)
    phase = plan.phases[int(state["phase_index"])]
    vocab = PhaseVocab.for_phase(plan, phase, cache_dir=os.path.join(run_dir, "cache"))
    model = build_model(plan, vocab.size)
    load_weights(model, path)
    hf_model = to_hf_model(model, plan.model.kind)
    if vocab.text_size:
        hf_model.config.eos_token_id = vocab.tokenizer.eos_id
        hf_model.config.pad_token_id = vocab.tokenizer.pad_id
        hf_model.generation_config.eos_token_id = vocab.tokenizer.eos_id
        hf_model.generation_config.pad_token_id = vocab.tokenizer.pad_id
    os.makedirs(out, exist_ok=True)
    hf_model.save_pretrained(out, safe_serialization=True)
    write_tokenizer(vocab, out)
    info = {
        "run": os.path.abspath(run_dir),
        "step": step,
        "phase": phase.name,
        "plan": plan.name,
        "plan_hash": plan.hash,
        "vocab": repr(vocab),
        "context": max_context(plan),
    }
    with open(os.path.join(out, "procdsl_export.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return Exported(out, step, phase.name, type(hf_model).__name__, vocab.size, sorted(os.listdir(out)))
