#!/usr/bin/env python3
"""Generate the golden (oracle) fixtures for moe-runtime from Hugging Face transformers.

Usage:
    pip install torch transformers safetensors numpy
    python3 tests/golden/make_golden.py            # writes tests/fixtures/golden/<fixture>/

Everything is deterministic (fixed seeds, CPU, float32 oracle, eager attention, eager experts):
rerunning this script with the same torch/transformers versions reproduces the files bit for bit.

For every fixture:
  * a tiny random model is built in float32 from a fixed seed, all parameters are re-initialised
    (see `reinit`) and then rounded to the storage dtype and back, so the float32 oracle weights are
    exactly representable in the stored checkpoint;
  * prompt_logits [12, V]  = one prefill forward over the 12 prompt ids (all positions);
  * decode_logits [10, V]  = greedy decoding with the KV cache, one token per step:
        g0 = argmax(prompt_logits[-1]); row i = logits of feeding generated_ids[i] at position 12+i;
        g(i+1) = argmax(row i);  generated_ids = [g0 .. g10];
  * cross-checks: model.generate(greedy) gives the same ids; a no-cache forward over
    prompt + generated[:10] reproduces prompt and decode logits (<= 1e-5); reloading the saved
    directory with from_pretrained(dtype=float32) gives bit-identical weights and the same logits;
  * robustness: min top1-top2 logit margin over the 11 argmax rows must be >= 1e-3 and the min
    router margin (k-th minus (k+1)-th routing probability, every MoE layer and token, prefill and
    decode) must be >= 1e-5; in addition no bos/eos/pad id may be generated, the 11 generated ids
    must contain >= 6 distinct values, and the no-cache check must pass. Otherwise the seed is bumped
    (seed, seed+1, ...); the seed used is stored in golden.json.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from safetensors import safe_open
from transformers import (
    GenerationConfig,
    MixtralConfig,
    MixtralForCausalLM,
    OlmoeConfig,
    OlmoeForCausalLM,
    Qwen2MoeConfig,
    Qwen2MoeForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # fixed reduction order -> bit-reproducible logits

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "tests", "fixtures", "golden")

PROMPT_LEN = 12
DECODE_STEPS = 10
MIN_LOGIT_MARGIN = 1e-3
MIN_ROUTER_MARGIN = 1e-5
MAX_SEED_TRIES = 50
# Extra acceptance rules (so a runtime that stops on eos, or a decode bug hidden by a degenerate
# repeating sequence, cannot slip through): no bos/eos/pad id among the generated ids, and at
# least this many distinct generated ids.
MIN_DISTINCT_GENERATED = 6
# A no-cache forward over prompt + generated[:10] must match the cached logits within this.
NOCACHE_TOL = 1e-5

DTYPE_NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}

# Initialisation scales (documented in README.md):
#   matrices (Linear / expert tensors):          N(0, (gain / sqrt(fan_in))^2), fan_in = last dim,
#                                                gain = GAIN (1.0) unless the fixture sets "gain"
#   router weights (mlp.gate / block_sparse_moe.gate): N(0, (ROUTER_GAIN / sqrt(hidden))^2)
#   lm_head (and tied embedding):                N(0, (LOGIT_GAIN / sqrt(hidden))^2) -> logits std ~3
#   untied embedding:                            N(0, 1)
#   RMSNorm weights (all of them):               1 + 0.1 * N(0, 1)
#   biases (q/k/v):                              0.3 * N(0, 1)
GAIN = 1.0
ROUTER_GAIN = 2.0
LOGIT_GAIN = 3.0


def round_to(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype).to(torch.float32)


@torch.no_grad()
def reinit(model: torch.nn.Module, storage_dtype: torch.dtype, tied: bool, gain: float = GAIN) -> None:
    hidden = model.config.hidden_size
    for name, p in model.named_parameters():  # deduplicated: a tied weight appears once
        if name.endswith("norm.weight"):
            p.copy_(1.0 + 0.1 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.3 * torch.randn_like(p))
        elif name == "model.embed_tokens.weight":
            std = LOGIT_GAIN / math.sqrt(hidden) if tied else 1.0
            p.copy_(std * torch.randn_like(p))
        elif name == "lm_head.weight":
            p.copy_(LOGIT_GAIN / math.sqrt(hidden) * torch.randn_like(p))
        elif name.endswith("mlp.gate.weight") or name.endswith("block_sparse_moe.gate.weight"):
            p.copy_(ROUTER_GAIN / math.sqrt(p.shape[-1]) * torch.randn_like(p))
        elif p.dim() >= 2:
            p.copy_(gain / math.sqrt(p.shape[-1]) * torch.randn_like(p))
        else:
            raise RuntimeError(f"unhandled parameter {name} {tuple(p.shape)}")
        p.copy_(round_to(p, storage_dtype))


class RouterRecorder:
    """Forward hooks on every *TopKRouter module; records softmax routing probabilities."""

    def __init__(self, model, top_k):
        self.top_k = top_k
        self.probs = []
        self.handles = []
        for name, m in model.named_modules():
            if type(m).__name__.endswith("TopKRouter"):
                self.handles.append(m.register_forward_hook(self._hook))
        if not self.handles:
            raise RuntimeError("no router modules found")
        self.n_routers = len(self.handles)

    def _hook(self, module, inputs, output):
        router_logits = output[0]
        self.probs.append(torch.softmax(router_logits.float(), dim=-1).detach().clone())

    def min_margin(self):
        m = math.inf
        for p in self.probs:
            s = torch.sort(p, dim=-1, descending=True).values
            m = min(m, float((s[:, self.top_k - 1] - s[:, self.top_k]).min()))
        return m

    def remove(self):
        for h in self.handles:
            h.remove()


def logit_margin(rows: torch.Tensor) -> float:
    top2 = torch.topk(rows, 2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


@torch.no_grad()
def run_oracle(model, prompt_ids):
    """Prefill + greedy decode with the KV cache, exactly one token per step (as generate does)."""
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    attn = torch.ones_like(ids)
    out = model(input_ids=ids, attention_mask=attn, use_cache=True)
    prompt_logits = out.logits[0].float().clone()
    pkv = out.past_key_values
    generated = [int(prompt_logits[-1].argmax())]
    decode_rows = []
    for _ in range(DECODE_STEPS):
        step_ids = torch.tensor([[generated[-1]]], dtype=torch.long)
        attn = torch.cat([attn, torch.ones((1, 1), dtype=attn.dtype)], dim=1)
        out = model(input_ids=step_ids, attention_mask=attn, past_key_values=pkv, use_cache=True)
        pkv = out.past_key_values
        row = out.logits[0, -1].float().clone()
        decode_rows.append(row)
        generated.append(int(row.argmax()))
    return prompt_logits, torch.stack(decode_rows), generated


@torch.no_grad()
def full_forward(model, ids):
    t = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=t, attention_mask=torch.ones_like(t), use_cache=False).logits[0].float()


@torch.no_grad()
def greedy_generate(model, prompt_ids):
    gc = GenerationConfig(
        do_sample=False,
        max_new_tokens=DECODE_STEPS + 1,
        min_new_tokens=0,
        eos_token_id=None,
        pad_token_id=0,
        bos_token_id=None,
        repetition_penalty=1.0,
        num_beams=1,
        temperature=None,
        top_k=None,
        top_p=None,
    )
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    return out[0, len(prompt_ids):].tolist()


def build(spec, seed):
    cfg = spec["config_cls"](**spec["config"])
    torch.manual_seed(seed)
    model = spec["model_cls"]._from_config(
        cfg, attn_implementation="eager", experts_implementation="eager", dtype=torch.float32
    )
    reinit(model, spec["dtype"], spec["config"].get("tie_word_embeddings", False), spec.get("gain", GAIN))
    model.eval()
    return model


def state_dict_f32(model):
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()}


def sha256_dir(path):
    h = {}
    for root, _, files in os.walk(path):
        for f in sorted(files):
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                h[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return h


def list_tensors(directory):
    names = {}
    for f in sorted(os.listdir(directory)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(directory, f), "pt") as sf:
                for k in sf.keys():
                    sl = sf.get_slice(k)
                    names[k] = (f, sl.get_dtype(), list(sl.get_shape()))
    return names


@torch.no_grad()
def clip_fraction(model, prompt_ids, clip):
    """Fraction of q/k/v projection outputs (post q/k norm) with |x| > clip_qkv, recomputed via hooks."""
    stats = {"q": [0, 0], "k": [0, 0], "v": [0, 0]}
    handles = []
    for layer in model.model.layers:
        att = layer.self_attn
        for key, mod in (("q", att.q_norm), ("k", att.k_norm), ("v", att.v_proj)):
            def hook(m, i, o, key=key):
                stats[key][0] += int((o.abs() > clip).sum())
                stats[key][1] += o.numel()
            handles.append(mod.register_forward_hook(hook))
    full_forward(model, prompt_ids)
    for h in handles:
        h.remove()
    return {k: v[0] / v[1] for k, v in stats.items()}


def save_fixture(model, spec, outdir):
    """Save in the storage dtype; returns the save path used (for README)."""
    if os.path.exists(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    m = copy.deepcopy(model).to(spec["dtype"])
    kw = {}
    if spec.get("max_shard_size"):
        kw["max_shard_size"] = spec["max_shard_size"]
    if spec["expert_form"] == "fused":
        # transformers 5.x: save_original_format=False skips revert_weight_conversion, i.e. writes the
        # in-memory (fused gate_up_proj / down_proj) parameter names instead of the legacy Hub names.
        kw["save_original_format"] = False
    m.save_pretrained(outdir, **kw)


# ---------------------------------------------------------------------------------------------
# Independent reference: a from-scratch float32 forward that reads only the saved directory
# (config.json + *.safetensors) and implements the rules documented in README.md. It is used to
# check that the fixture files plus those rules reproduce the transformers logits.
# ---------------------------------------------------------------------------------------------
def _rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


@torch.no_grad()
def reference_forward(directory, ids):
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    W = {}
    for fn in sorted(os.listdir(directory)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(directory, fn), "pt") as sf:
                for k in sf.keys():
                    W[k] = sf.get_tensor(k).float()
    mt = cfg["model_type"]
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    theta = cfg["rope_parameters"]["rope_theta"]
    n_exp = cfg.get("num_local_experts", cfg.get("num_experts"))
    top_k = cfg["num_experts_per_tok"]
    norm_topk = True if mt == "mixtral" else cfg["norm_topk_prob"]
    sw = cfg.get("sliding_window") if (mt == "mixtral" or cfg.get("use_sliding_window")) else None
    T = len(ids)
    pos = torch.arange(T, dtype=torch.float32)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    emb = torch.cat([pos[:, None] * inv_freq[None]] * 2, dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if sw:
        allowed = allowed & (j > i - sw)  # query i sees keys i-sw+1 .. i
    silu = torch.nn.functional.silu

    def mlp(x, pfx):
        return (silu(x @ W[pfx + "gate_proj.weight"].T) * (x @ W[pfx + "up_proj.weight"].T)) @ W[pfx + "down_proj.weight"].T

    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for l in range(cfg["num_hidden_layers"]):
        L = f"model.layers.{l}."
        h = _rms(x, W[L + "input_layernorm.weight"], eps)
        a = L + "self_attn."
        q, k, v = (h @ W[a + n + "_proj.weight"].T + W.get(a + n + "_proj.bias", 0.0) for n in "qkv")
        if mt == "olmoe":  # full-width norms on the projections, then clip, then split heads
            q, k = _rms(q, W[a + "q_norm.weight"], eps), _rms(k, W[a + "k_norm.weight"], eps)
            if cfg.get("clip_qkv") is not None:
                c = cfg["clip_qkv"]
                q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
        q, k, v = q.view(T, nh, hd), k.view(T, nkv, hd), v.view(T, nkv, hd)
        if mt == "qwen3_moe":  # per-head norms over head_dim
            q, k = _rms(q, W[a + "q_norm.weight"], eps), _rms(k, W[a + "k_norm.weight"], eps)
        q = q * cos[:, None] + _rotate_half(q) * sin[:, None]
        k = k * cos[:, None] + _rotate_half(k) * sin[:, None]
        outs = []
        for hh in range(nh):
            kv = hh // (nh // nkv)
            s = (q[:, hh] @ k[:, kv].T) * hd ** -0.5
            s = s.masked_fill(~allowed, float("-inf"))
            outs.append(torch.softmax(s, -1) @ v[:, kv])
        x = x + torch.cat(outs, -1) @ W[a + "o_proj.weight"].T
        h = _rms(x, W[L + "post_attention_layernorm.weight"], eps)
        step = cfg.get("decoder_sparse_step", 1)
        sparse = l not in (cfg.get("mlp_only_layers") or []) and (l + 1) % step == 0
        if not sparse:
            x = x + mlp(h, L + "mlp.")
            continue
        if mt == "mixtral":
            m = L + ("block_sparse_moe." if L + "block_sparse_moe.gate.weight" in W else "mlp.")
        else:
            m = L + "mlp."
        probs = torch.softmax(h @ W[m + "gate.weight"].T, -1)
        topv, topi = torch.topk(probs, top_k, -1)
        if norm_topk:
            topv = topv / topv.sum(-1, keepdim=True)
        out = torch.zeros_like(h)
        for t in range(T):
            for r in range(top_k):
                e = int(topi[t, r])
                if m + "experts.gate_up_proj" in W:  # fused: [E, 2I, H], gate rows first; down [E, H, I]
                    gu = W[m + "experts.gate_up_proj"][e]
                    I = gu.shape[0] // 2
                    y = (silu(h[t] @ gu[:I].T) * (h[t] @ gu[I:].T)) @ W[m + "experts.down_proj"][e].T
                elif mt == "mixtral":  # w1 = gate, w3 = up, w2 = down
                    p = f"{m}experts.{e}."
                    y = (silu(h[t] @ W[p + "w1.weight"].T) * (h[t] @ W[p + "w3.weight"].T)) @ W[p + "w2.weight"].T
                else:
                    y = mlp(h[t], f"{m}experts.{e}.")
                out[t] += topv[t, r] * y
        if m + "shared_expert_gate.weight" in W:
            out = out + torch.sigmoid(h @ W[m + "shared_expert_gate.weight"].T) * mlp(h, m + "shared_expert.")
        x = x + out
    x = _rms(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T


def make_fixture(spec):
    name = spec["name"]
    outdir = os.path.join(OUT_ROOT, name)
    vocab = spec["config"]["vocab_size"]
    top_k = spec["config"]["num_experts_per_tok"]
    checks = {}

    for seed in range(spec["seed"], spec["seed"] + MAX_SEED_TRIES):
        model = build(spec, seed)
        prompt_ids = np.random.default_rng(seed).integers(3, vocab, size=PROMPT_LEN).tolist()
        rec = RouterRecorder(model, top_k)
        prompt_logits, decode_logits, generated = run_oracle(model, prompt_ids)
        rec.remove()
        rmargin = rec.min_margin()
        lmargin = logit_margin(torch.cat([prompt_logits[-1:], decode_logits], 0))
        # no-cache forward over prompt + generated[:10] must reproduce the cached logits within 1e-5
        full = full_forward(model, prompt_ids + generated[:DECODE_STEPS])
        d_prompt = float((full[:PROMPT_LEN] - prompt_logits).abs().max())
        d_decode = float((full[PROMPT_LEN:] - decode_logits).abs().max())
        nocache_ok = d_prompt <= NOCACHE_TOL and d_decode <= NOCACHE_TOL
        special = {getattr(model.config, a, None) for a in ("bos_token_id", "eos_token_id", "pad_token_id")}
        hits_special = any(g in special for g in generated)
        distinct = len(set(generated))
        if (lmargin >= MIN_LOGIT_MARGIN and rmargin >= MIN_ROUTER_MARGIN and not hits_special
                and distinct >= MIN_DISTINCT_GENERATED and nocache_ok):
            break
        print(f"  [{name}] seed {seed} rejected: logit margin {lmargin:.3g}, router margin {rmargin:.3g}, "
              f"special token generated {hits_special}, distinct generated ids {distinct}, "
              f"no-cache max|diff| {max(d_prompt, d_decode):.3g}")
    else:
        raise RuntimeError(f"{name}: no acceptable seed")
    checks["routers_hooked"] = rec.n_routers

    # --- cross-check 1: generate() greedy
    gen_ids = greedy_generate(model, prompt_ids)
    assert gen_ids == generated, (name, gen_ids, generated)

    # --- cross-check 2: no-cache forward over prompt + generated[:10] (computed in the seed loop)
    assert nocache_ok, (name, d_prompt, d_decode)
    checks["nocache_max_abs_diff_prompt"] = d_prompt
    checks["nocache_max_abs_diff_decode"] = d_decode

    # --- fixture-specific checks
    if spec.get("check_window"):
        cfg2 = spec["config_cls"](**{**spec["config"], "sliding_window": None})
        m2 = spec["model_cls"]._from_config(
            cfg2, attn_implementation="eager", experts_implementation="eager", dtype=torch.float32
        )
        m2.load_state_dict(model.state_dict())
        m2.eval()
        full2 = full_forward(m2, prompt_ids + generated[:DECODE_STEPS])
        diff_p = float((full2[:PROMPT_LEN] - prompt_logits).abs().max())
        diff_d = float((full2[PROMPT_LEN:] - decode_logits).abs().max())
        gen2 = run_oracle(m2, prompt_ids)[2]
        print(f"  [{name}] sliding_window={spec['config']['sliding_window']} vs None: max|dlogit| prompt "
              f"{diff_p:.4f}, decode {diff_d:.4f}; greedy ids without window: {gen2}")
        assert diff_p > 1e-2 and diff_d > 1e-2, "sliding window does not change the logits"
        checks["window_vs_none_max_abs_diff_prompt"] = diff_p
        checks["window_vs_none_max_abs_diff_decode"] = diff_d
        checks["window_vs_none_generated_ids_differ"] = gen2 != generated
    if spec.get("check_clip"):
        fr = clip_fraction(model, prompt_ids + generated[:DECODE_STEPS], spec["config"]["clip_qkv"])
        print(f"  [{name}] fraction clipped by clip_qkv={spec['config']['clip_qkv']}: "
              + ", ".join(f"{k}={v:.3f}" for k, v in fr.items()))
        assert all(v > 0.01 for v in fr.values()), fr
        checks["clip_fraction"] = fr
        # logits without clipping must differ
        cfg2 = spec["config_cls"](**{**spec["config"], "clip_qkv": None})
        m2 = spec["model_cls"]._from_config(
            cfg2, attn_implementation="eager", experts_implementation="eager", dtype=torch.float32
        )
        m2.load_state_dict(model.state_dict())
        m2.eval()
        dclip = float((full_forward(m2, prompt_ids) - prompt_logits).abs().max())
        print(f"  [{name}] clip_qkv vs None: max|dlogit| prompt {dclip:.4f}")
        assert dclip > 1e-2
        checks["clip_vs_none_max_abs_diff_prompt"] = dclip

    # --- save
    save_fixture(model, spec, outdir)
    tensors = list_tensors(outdir)
    shards = [f for f in os.listdir(outdir) if f.endswith(".safetensors")]
    has_index = os.path.exists(os.path.join(outdir, "model.safetensors.index.json"))
    if spec["sharded"]:
        assert len(shards) >= 3 and has_index, (name, shards)
    else:
        assert len(shards) == 1 and not has_index, (name, shards)
    sdt = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}[spec["dtype"]]
    assert all(t[1] == sdt for t in tensors.values()), name
    if spec["config"].get("tie_word_embeddings"):
        assert "lm_head.weight" not in tensors, "tied lm_head must be absent from the checkpoint"
    if spec["expert_form"] == "fused":
        assert any(k.endswith("mlp.experts.gate_up_proj") for k in tensors), "fused tensors not written"
        assert not any(".experts.0." in k for k in tensors)
    else:
        assert not any(k.endswith("gate_up_proj") for k in tensors), "expected per-expert tensors"

    # --- reload check: bit-identical float32 weights and identical logits
    reloaded = spec["model_cls"].from_pretrained(
        outdir, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager"
    )
    reloaded.eval()
    a, b = state_dict_f32(model), state_dict_f32(reloaded)
    assert a.keys() == b.keys(), (name, set(a) ^ set(b))
    for k in a:
        assert torch.equal(a[k], b[k]), (name, k)
    assert (reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()) == bool(
        spec["config"].get("tie_word_embeddings")
    )
    # As loaded (f32 tensors may be unaligned views into the safetensors mmap, which changes the CPU
    # kernels' summation order -> differences of a few ulp): same ids, logits within 1e-4.
    p2, d2, g2 = run_oracle(reloaded, prompt_ids)
    dr = max(float((p2 - prompt_logits).abs().max()), float((d2 - decode_logits).abs().max()))
    assert g2 == generated and dr <= 1e-4, (name, dr)
    checks["reload_as_loaded_max_abs_diff"] = dr
    # With the parameters copied into fresh (aligned) memory the logits are bit-identical.
    with torch.no_grad():
        for p in reloaded.parameters():
            p.data = p.data.clone()
    p2, d2, g2 = run_oracle(reloaded, prompt_ids)
    assert g2 == generated and torch.equal(p2, prompt_logits) and torch.equal(d2, decode_logits), name
    checks["reload_bit_identical_weights_and_logits"] = True

    # --- independent from-scratch reference over the saved files (prompt + generated[:10])
    ref = reference_forward(outdir, prompt_ids + generated[:DECODE_STEPS])
    dref = float((ref - torch.cat([prompt_logits, decode_logits], 0)).abs().max())
    print(f"  [{name}] independent reference vs transformers: max|dlogit| {dref:.2e}")
    assert dref <= 1e-4, (name, dref)
    checks["independent_reference_max_abs_diff"] = dref

    # --- write oracle
    np.save(os.path.join(outdir, "prompt_logits.npy"), np.ascontiguousarray(prompt_logits.numpy(), dtype=np.float32))
    np.save(os.path.join(outdir, "decode_logits.npy"), np.ascontiguousarray(decode_logits.numpy(), dtype=np.float32))
    golden = {
        "fixture": name,
        "architecture": spec["model_cls"].__name__,
        "storage_dtype": DTYPE_NAMES[spec["dtype"]],
        "expert_form": spec["expert_form"],
        "sharded": spec["sharded"],
        "prompt_ids": prompt_ids,
        "generated_ids": generated,
        "decode_steps": DECODE_STEPS,
        "seed": seed,
        "min_logit_margin": lmargin,
        "min_router_margin": rmargin,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "notes": spec["notes"],
        "checks": checks,
    }
    with open(os.path.join(outdir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")

    size = sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir))
    assert size <= 1.2e6, (name, size)
    return {
        "fixture": name,
        "arch": spec["model_cls"].__name__,
        "dtype": DTYPE_NAMES[spec["dtype"]],
        "form": spec["expert_form"],
        "shards": len(shards),
        "seed": seed,
        "logit_margin": lmargin,
        "router_margin": rmargin,
        "logit_std": float(prompt_logits.std()),
        "bytes": size,
        "tensors": tensors,
    }


FIXTURES = [
    dict(
        name="mixtral_sharded_bf16",
        model_cls=MixtralForCausalLM,
        config_cls=MixtralConfig,
        dtype=torch.bfloat16,
        expert_form="per_expert",
        sharded=True,
        max_shard_size="150KB",
        seed=1000,
        config=dict(
            vocab_size=320, hidden_size=64, intermediate_size=48, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            num_local_experts=8, num_experts_per_tok=2, sliding_window=None, tie_word_embeddings=False,
        ),
        notes="Mixtral, bf16, sharded (>=3 shards + model.safetensors.index.json), per-expert Hub names "
              "block_sparse_moe.experts.E.w1/w2/w3 and block_sparse_moe.gate; head_dim null in config "
              "(-> hidden/heads = 16); GQA 4 q heads / 2 kv heads; rope_theta 1e6; rms_norm_eps 1e-5; "
              "top-2 of 8 with renormalised top-k weights; no sliding window.",
    ),
    dict(
        name="mixtral_window_fused_f32",
        model_cls=MixtralForCausalLM,
        config_cls=MixtralConfig,
        dtype=torch.float32,
        expert_form="fused",
        sharded=False,
        seed=2000,
        check_window=True,
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
            rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            num_local_experts=8, num_experts_per_tok=2, sliding_window=6, tie_word_embeddings=False,
        ),
        notes="Mixtral, f32, single file, sliding_window=6 (< 12+11 tokens, changes prompt and decode "
              "logits: query at position q attends keys q-5..q); fused expert tensors "
              "model.layers.N.mlp.experts.gate_up_proj [E, 2I, H] (gate rows first, then up) and "
              "model.layers.N.mlp.experts.down_proj [E, H, I], router model.layers.N.mlp.gate.weight "
              "[E, H] (written with save_pretrained(save_original_format=False)); head_dim 16 explicit; "
              "rope_theta 1e4; rms_norm_eps 1e-6.",
    ),
    dict(
        name="qwen2_moe_shared_tied_bf16",
        model_cls=Qwen2MoeForCausalLM,
        config_cls=Qwen2MoeConfig,
        dtype=torch.bfloat16,
        expert_form="per_expert",
        sharded=False,
        seed=3000,
        gain=1.25,  # tied embeddings: larger layer outputs, else greedy decoding just repeats a token
        config=dict(
            vocab_size=384, hidden_size=64, intermediate_size=96, moe_intermediate_size=40,
            shared_expert_intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
            num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=2,
            qkv_bias=True, tie_word_embeddings=True, use_sliding_window=False,
        ),
        notes="Qwen2-MoE, bf16, single file; decoder_sparse_step=2 with 4 layers -> layers 1 and 3 are MoE, "
              "layers 0 and 2 dense MLP (intermediate_size 96); MoE layers: top-2 of 8 experts "
              "(moe_intermediate_size 40) with norm_topk_prob=False (raw softmax probs as weights) plus a "
              "shared expert (intermediate 64) scaled by sigmoid(shared_expert_gate(x)); non-zero q/k/v biases; "
              "tie_word_embeddings=True (no lm_head.weight in the file: logits = norm(h) @ embed_tokens^T); "
              "rope_theta 1e5; rms_norm_eps 1e-6.",
    ),
    dict(
        name="qwen3_moe_qknorm_bf16",
        model_cls=Qwen3MoeForCausalLM,
        config_cls=Qwen3MoeConfig,
        dtype=torch.bfloat16,
        expert_form="per_expert",
        sharded=True,
        max_shard_size="120KB",
        seed=4000,
        config=dict(
            vocab_size=288, hidden_size=64, intermediate_size=96, moe_intermediate_size=48,
            num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            max_position_embeddings=256, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
            num_experts=8, num_experts_per_tok=3, norm_topk_prob=True, decoder_sparse_step=1,
            mlp_only_layers=[1], tie_word_embeddings=False, use_sliding_window=False,
        ),
        notes="Qwen3-MoE, bf16, sharded; head_dim=32 != hidden/heads=16 (q_proj [128,64], k/v_proj [64,64], "
              "o_proj [64,128]); per-head q_norm/k_norm RMSNorm over head_dim (weights [32]) applied before "
              "RoPE; top-3 of 8 with norm_topk_prob=True; mlp_only_layers=[1] -> layer 1 is a dense MLP "
              "(intermediate_size 96), layers 0 and 2 MoE (moe_intermediate_size 48); rope_theta 5e5; "
              "rms_norm_eps 1e-5.",
    ),
    dict(
        name="olmoe_clip_f16",
        model_cls=OlmoeForCausalLM,
        config_cls=OlmoeConfig,
        dtype=torch.float16,
        expert_form="per_expert",
        sharded=False,
        seed=5000,
        check_clip=True,
        config=dict(
            vocab_size=320, hidden_size=64, intermediate_size=40, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, clip_qkv=1.5,
            tie_word_embeddings=False, pad_token_id=1, eos_token_id=2,
        ),
        notes="OLMoE, f16, single file; q_norm over the full q width (weights [64]) and k_norm over the full "
              "k width (num_kv_heads*head_dim = 32) applied to the projection outputs before the head split; "
              "clip_qkv=1.5 clamps q (after q_norm), k (after k_norm) and v to [-1.5, 1.5] before RoPE "
              "(a sizeable fraction is actually clipped, see checks.clip_fraction); top-2 of 8 with "
              "norm_topk_prob=False; GQA 4/2; rope_theta 1e4; rms_norm_eps 1e-5.",
    ),
]


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT_ROOT, exist_ok=True)
    rows = []
    for spec in FIXTURES:
        if only and spec["name"] not in only:
            continue
        print(f"== {spec['name']}")
        rows.append(make_fixture(spec))
    print()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    hdr = f"{'fixture':28} {'arch':22} {'dtype':8} {'form':10} {'shards':>6} {'seed':>5} {'logit_margin':>12} {'router_margin':>13} {'logit_std':>9} {'bytes':>9}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['fixture']:28} {r['arch']:22} {r['dtype']:8} {r['form']:10} {r['shards']:>6} {r['seed']:>5} "
              f"{r['logit_margin']:>12.4g} {r['router_margin']:>13.4g} {r['logit_std']:>9.3f} {r['bytes']:>9}")
    total = sum(r["bytes"] for r in rows)
    print(f"total bytes: {total}")
    if os.environ.get("GOLDEN_LIST_TENSORS"):
        for r in rows:
            print(f"\n{r['fixture']} tensors:")
            for k, (f, dt, shape) in sorted(r["tensors"].items()):
                print(f"  {k:55} {dt:5} {shape} {f}")


if __name__ == "__main__":
    main()
