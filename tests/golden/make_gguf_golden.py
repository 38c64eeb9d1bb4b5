#!/usr/bin/env python3
"""GGUF oracle fixtures: the golden checkpoints (tests/fixtures/golden/) written as GGUF files the
way llama.cpp's convert_hf_to_gguf.py writes them, plus one larger random model in K-quant types.

Usage (once per machine; not in CI):
    pip install gguf numpy safetensors torch transformers
    python3 tests/golden/make_gguf_golden.py     # writes tests/fixtures/gguf_models/

Writes, into tests/fixtures/gguf_models/:
  * <golden>.<type>.gguf for the golden fixtures, types F32 / F16 / Q8_0 (a tensor whose rows are not
    whole Q8_0 blocks stays F16, as llama.cpp falls back). What each must reproduce is the golden
    fixture's own transformers logits (prompt_logits.npy / decode_logits.npy): F32 within float
    rounding; F16 and Q8_0 within the error of their rounding, checked in C++ against logits of
    transformers run on the dequantized weights (<golden>.<type>.logits.npy, written here).
    Conversion as llama.cpp does it: names (token_embd, blk.N.attn_q, ffn_gate_exps stacked
    experts outermost, ffn_gate_inp, *_shexp, output_norm, output), and for the `llama` arch
    (Mixtral) the q/k rows permuted for ggml's interleaved RoPE (`permute` below, as
    convert_hf_to_gguf.py LlamaModel.permute).
  * kquant_qwen3moe.gguf: a Qwen3-MoE with hidden size 256 (K-quant rows need multiples of 256),
    every weight matrix random blocks of Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_XS (finite f16 scales,
    magnitudes set like a trained model's); its oracle is transformers' own GGUF loader
    (Qwen3MoeForCausalLM.from_pretrained(gguf_file=...), which dequantizes with gguf-py) run on it:
    kquant_qwen3moe.logits.npy, prompt in kquant_qwen3moe.json.
Deterministic: fixed seeds.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(REPO, "tests", "fixtures", "golden")
OUT = os.path.join(REPO, "tests", "fixtures", "gguf_models")

ARCH = {
    "MixtralForCausalLM": "llama",
    "Qwen2MoeForCausalLM": "qwen2moe",
    "Qwen3MoeForCausalLM": "qwen3moe",
    "OlmoeForCausalLM": "olmoe",
}


def load_golden(name):
    return load_checkpoint(os.path.join(GOLDEN, name))


def load_checkpoint(d):
    """config.json and every safetensors tensor of a checkpoint directory, as float32 arrays."""
    import torch
    from safetensors import safe_open

    cfg = json.load(open(os.path.join(d, "config.json")))
    tensors = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(d, f), framework="pt") as s:
                for k in s.keys():
                    tensors[k] = s.get_tensor(k).to(torch.float32).numpy()
    return cfg, tensors


def permute(w, n_head):
    # convert_hf_to_gguf.py, LlamaModel.permute: HF rotate-half rows -> ggml interleaved rows.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_theta(cfg):
    p = cfg.get("rope_parameters") or {}
    return float(p.get("rope_theta", cfg.get("rope_theta", 10000.0)))


def gguf_tensors(cfg, t):
    """HF tensors -> [(gguf name, float32 array)] as llama.cpp's converter names and lays them out."""
    arch = ARCH[cfg["architectures"][0]]
    H = cfg["hidden_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = [("token_embd.weight", t["model.embed_tokens.weight"])]
    L = cfg["num_hidden_layers"]
    for l in range(L):
        p = f"model.layers.{l}."
        b = f"blk.{l}."
        out.append((b + "attn_norm.weight", t[p + "input_layernorm.weight"]))
        out.append((b + "ffn_norm.weight", t[p + "post_attention_layernorm.weight"]))
        for hf, gg in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output")):
            for kind in ("weight", "bias"):
                k = f"{p}self_attn.{hf}_proj.{kind}"
                if k not in t:
                    continue
                w = t[k]
                if arch == "llama" and hf in ("q", "k"):
                    w = permute(w, nh if hf == "q" else nkv)
                out.append((f"{b}{gg}.{kind}", w))
        for hf, gg in (("q_norm", "attn_q_norm"), ("k_norm", "attn_k_norm")):
            k = f"{p}self_attn.{hf}.weight"
            if k in t:
                out.append((f"{b}{gg}.weight", t[k]))
        blk = "block_sparse_moe" if arch == "llama" else "mlp"
        names = ("w1", "w3", "w2") if arch == "llama" else ("gate_proj", "up_proj", "down_proj")
        if f"{p}{blk}.gate.weight" in t:
            out.append((b + "ffn_gate_inp.weight", t[f"{p}{blk}.gate.weight"]))
            E = cfg.get("num_local_experts", cfg.get("num_experts"))
            for hf, gg in zip(names, ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")):
                stack = np.stack([t[f"{p}{blk}.experts.{e}.{hf}.weight"] for e in range(E)])
                out.append((f"{b}{gg}.weight", stack))
            if f"{p}mlp.shared_expert.gate_proj.weight" in t:
                for hf, gg in (("gate_proj", "ffn_gate_shexp"), ("up_proj", "ffn_up_shexp"), ("down_proj", "ffn_down_shexp")):
                    out.append((f"{b}{gg}.weight", t[f"{p}mlp.shared_expert.{hf}.weight"]))
                out.append((b + "ffn_gate_inp_shexp.weight", t[f"{p}mlp.shared_expert_gate.weight"]))
        else:  # a dense layer
            for hf, gg in (("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")):
                out.append((f"{b}{gg}.weight", t[f"{p}mlp.{hf}.weight"]))
    out.append(("output_norm.weight", t["model.norm.weight"]))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("output.weight", t["lm_head.weight"]))
    return out


def add_metadata(w, cfg):
    arch = ARCH[cfg["architectures"][0]]
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    w.add_name(cfg["architectures"][0])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg.get("max_position_embeddings", 4096))
    w.add_embedding_length(H)
    w.add_head_count(nh)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    hd = cfg.get("head_dim") or H // nh
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_rope_freq_base(rope_theta(cfg))
    w.add_expert_count(cfg.get("num_local_experts", cfg.get("num_experts")))
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    if arch in ("qwen2moe", "qwen3moe"):
        w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
    else:
        w.add_feed_forward_length(cfg["intermediate_size"])
    if arch == "qwen2moe":
        w.add_expert_shared_feed_forward_length(cfg["shared_expert_intermediate_size"])
    if arch == "qwen3moe" or arch == "qwen2moe":
        w.add_expert_weights_norm(bool(cfg.get("norm_topk_prob", False)))
    if arch == "olmoe" and cfg.get("clip_qkv") is not None:
        w.add_clamp_kqv(float(cfg["clip_qkv"]))
    if arch == "llama" and cfg.get("sliding_window"):
        w.add_sliding_window(int(cfg["sliding_window"]))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type({"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}.get(getattr(w, "_moe_type", "F32"), 0))


def store(w, name, a, qtype):
    """Adds a tensor in qtype (F32 / F16 / Q8_0); returns the float32 values it decodes to."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 1 or name.endswith("_norm.weight") or qtype == "F32":
        w.add_tensor(name, a)
        return a
    if qtype == "Q8_0" and a.shape[-1] % 32 == 0 and not name.endswith("ffn_gate_inp.weight"):
        q = quants.quantize(a, T.Q8_0)
        w.add_tensor(name, q, raw_dtype=T.Q8_0)
        return quants.dequantize(q, T.Q8_0).reshape(a.shape)
    h = a.astype(np.float16)
    w.add_tensor(name, h)
    return h.astype(np.float32)


def write_golden(name, qtype):
    cfg, t = load_golden(name)
    arch = ARCH[cfg["architectures"][0]]
    path = os.path.join(OUT, f"{name}.{qtype}.gguf")
    w = gguf.GGUFWriter(path, arch)
    w._moe_type = qtype
    add_metadata(w, cfg)
    decoded = {}
    for gname, a in gguf_tensors(cfg, t):
        decoded[gname] = store(w, gname, a, qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return cfg, t, decoded


def hf_from_decoded(cfg, t, decoded):
    """The HF state dict holding exactly the values the GGUF decodes to (q/k rows un-permuted)."""
    arch = ARCH[cfg["architectures"][0]]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    back = {}
    for gname, a in gguf_tensors(cfg, t):
        back[gname] = None
    sd = {}
    # Walk the same mapping with the decoded arrays in place of the source ones.
    names = list(t.keys())
    for hf in names:
        sd[hf] = t[hf]
    mapping = {}
    for (gname, _), hfname in zip(gguf_tensors(cfg, t), _hf_order(cfg, t)):
        mapping[gname] = hfname
    for gname, hfname in mapping.items():
        a = decoded[gname]
        if isinstance(hfname, list):  # stacked experts
            for e, n in enumerate(hfname):
                sd[n] = a[e]
            continue
        if arch == "llama" and (".attn_q." in gname or ".attn_k." in gname):
            n = nh if ".attn_q." in gname else nkv
            a = _unpermute(a, n)
        sd[hfname] = a.reshape(t[hfname].shape)
    return sd


def _unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _hf_order(cfg, t):
    """HF names in the order gguf_tensors emits them (lists for stacked experts)."""
    arch = ARCH[cfg["architectures"][0]]
    out = ["model.embed_tokens.weight"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        for hf in ("q", "k", "v", "o"):
            for kind in ("weight", "bias"):
                k = f"{p}self_attn.{hf}_proj.{kind}"
                if k in t:
                    out.append(k)
        for hf in ("q_norm", "k_norm"):
            k = f"{p}self_attn.{hf}.weight"
            if k in t:
                out.append(k)
        blk = "block_sparse_moe" if arch == "llama" else "mlp"
        names = ("w1", "w3", "w2") if arch == "llama" else ("gate_proj", "up_proj", "down_proj")
        if f"{p}{blk}.gate.weight" in t:
            out.append(f"{p}{blk}.gate.weight")
            E = cfg.get("num_local_experts", cfg.get("num_experts"))
            for hf in names:
                out.append([f"{p}{blk}.experts.{e}.{hf}.weight" for e in range(E)])
            if f"{p}mlp.shared_expert.gate_proj.weight" in t:
                for hf in ("gate_proj", "up_proj", "down_proj"):
                    out.append(f"{p}mlp.shared_expert.{hf}.weight")
                out.append(f"{p}mlp.shared_expert_gate.weight")
        else:
            for hf in ("gate_proj", "up_proj", "down_proj"):
                out.append(f"{p}mlp.{hf}.weight")
    out.append("model.norm.weight")
    if not cfg.get("tie_word_embeddings", False):
        out.append("lm_head.weight")
    return out


def transformers_logits(name, sd, prompt):
    """Prompt logits of transformers' model for the golden fixture `name` with weights `sd`."""
    import torch
    import transformers

    import shutil
    import tempfile
    from safetensors.torch import save_file

    d = os.path.join(GOLDEN, name)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(d, "config.json"), tmp)
        state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}
        save_file(state, os.path.join(tmp, "model.safetensors"))
        model = transformers.AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        with torch.no_grad():
            return model(torch.tensor([prompt])).logits[0].numpy().astype(np.float32)


# ---- K-quant random model ------------------------------------------------------------------------

def random_blocks(rng, qtype, rows, cols, std):
    """rows x cols weights of `qtype` as random blocks with finite scales, scaled to ~std."""
    elems, nbytes = gguf.GGML_QUANT_SIZES[qtype]
    nblk = rows * cols // elems
    raw = rng.integers(0, 256, size=(nblk, nbytes), dtype=np.uint8)
    # f16 fields: d (and dmin) at ggml's offsets; replace by finite positive values.
    f16_at = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_XS: [0]}[qtype]
    for off in f16_at:
        v = rng.uniform(0.5, 1.0, size=nblk).astype(np.float16)
        raw[:, off:off + 2] = v.view(np.uint8).reshape(nblk, 2)
    deq = quants.dequantize(raw.reshape(rows, -1), qtype)
    scale = std / max(float(deq.std()), 1e-30)
    for off in f16_at:
        v = raw[:, off:off + 2].copy().view(np.float16).reshape(nblk)
        raw[:, off:off + 2] = (v.astype(np.float32) * scale).astype(np.float16).view(np.uint8).reshape(nblk, 2)
    q = raw.reshape(rows, cols // elems * nbytes)
    return q, quants.dequantize(q, qtype).reshape(rows, cols)


def write_kquant():
    import torch
    import transformers

    rng = np.random.default_rng(20261203)
    H, I, E, K, L, V, nh, nkv, hd = 256, 256, 4, 2, 2, 512, 4, 2, 64
    path = os.path.join(OUT, "kquant_qwen3moe.gguf")
    w = gguf.GGUFWriter(path, "qwen3moe")
    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": H, "num_attention_heads": nh,
           "num_key_value_heads": nkv, "head_dim": hd, "num_hidden_layers": L, "max_position_embeddings": 512,
           "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "num_experts": E, "num_experts_per_tok": K,
           "moe_intermediate_size": I, "intermediate_size": 512, "norm_topk_prob": True, "vocab_size": V}
    add_metadata(w, cfg)
    plan = []  # (name, qtype or None, rows, cols or shape)
    plan.append(("token_embd.weight", T.Q4_K, V, H))
    types = [T.Q4_K, T.Q5_K, T.Q6_K, T.Q3_K, T.Q2_K, T.IQ4_XS]
    for l in range(L):
        b = f"blk.{l}."
        plan += [(b + "attn_norm.weight", None, H, 0), (b + "ffn_norm.weight", None, H, 0),
                 (b + "attn_q_norm.weight", None, hd, 0), (b + "attn_k_norm.weight", None, hd, 0)]
        plan += [(b + "attn_q.weight", types[(l + 0) % 6], nh * hd, H), (b + "attn_k.weight", types[(l + 1) % 6], nkv * hd, H),
                 (b + "attn_v.weight", types[(l + 2) % 6], nkv * hd, H), (b + "attn_output.weight", types[(l + 3) % 6], H, nh * hd)]
        plan.append((b + "ffn_gate_inp.weight", "F32", E, H))
        plan += [(b + "ffn_gate_exps.weight", types[(l + 4) % 6], E * I, H), (b + "ffn_up_exps.weight", types[(l + 5) % 6], E * I, H),
                 (b + "ffn_down_exps.weight", T.Q6_K if l == 0 else T.Q4_K, E * H, I)]
    plan += [("output_norm.weight", None, H, 0), ("output.weight", T.Q6_K, V, H)]
    hf = {}
    for name, qt, rows, cols in plan:
        if qt is None:
            a = (1.0 + 0.1 * rng.standard_normal(rows)).astype(np.float32)
            w.add_tensor(name, a)
            deq = a
        elif qt == "F32":
            a = (0.05 * rng.standard_normal((rows, cols))).astype(np.float32)
            w.add_tensor(name, a)
            deq = a
        else:
            std = 0.3 if name == "token_embd.weight" else 0.5 / np.sqrt(cols)
            q, deq = random_blocks(rng, qt, rows, cols, std)
            if name.endswith("_exps.weight"):
                q = q.reshape(E, rows // E, -1)
                deq = deq.reshape(E, rows // E, cols)
            w.add_tensor(name, q, raw_dtype=qt)
        hf[name] = deq
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    prompt = [int(x) for x in rng.integers(0, V, size=10)]
    # transformers 5.23's GGUF config mapping for qwen3moe misses expert_feed_forward_length (it
    # keeps the default 768), so the config is given; the weights still come from its GGUF loader.
    hf_cfg = transformers.Qwen3MoeConfig(
        vocab_size=V, hidden_size=H, intermediate_size=512, moe_intermediate_size=I, num_hidden_layers=L,
        num_attention_heads=nh, num_key_value_heads=nkv, head_dim=hd, max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, num_experts=E, num_experts_per_tok=K,
        norm_topk_prob=True, tie_word_embeddings=False, decoder_sparse_step=1, mlp_only_layers=[])
    hf_cfg._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_pretrained(OUT, gguf_file="kquant_qwen3moe.gguf", config=hf_cfg,
                                                              dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0].numpy().astype(np.float32)
    # Cross-check transformers' loader against the decoded blocks we wrote (it dequantizes with gguf-py too).
    sd = model.state_dict()
    emb = sd["model.embed_tokens.weight"].numpy()
    assert np.array_equal(emb, hf["token_embd.weight"]), "transformers decoded token_embd differently"
    np.save(os.path.join(OUT, "kquant_qwen3moe.logits.npy"), logits)
    json.dump({"prompt_ids": prompt, "transformers_version": transformers.__version__, "gguf_version": gguf.__version__
               if hasattr(gguf, "__version__") else "?",
               "types": sorted({str(qt.name) for _, qt, _, _ in plan if isinstance(qt, T)})},
              open(os.path.join(OUT, "kquant_qwen3moe.json"), "w"), indent=1)
    print("kquant_qwen3moe.gguf", os.path.getsize(path), "bytes; argmax", logits.argmax(-1).tolist())


def main():
    os.makedirs(OUT, exist_ok=True)
    jobs = [("mixtral_sharded_bf16", "F32"), ("olmoe_clip_f16", "F32"), ("qwen2_moe_shared_tied_bf16", "F16"),
            ("qwen3_moe_qknorm_bf16", "Q8_0"), ("mixtral_sharded_bf16", "Q8_0")]
    for name, qtype in jobs:
        cfg, t, decoded = write_golden(name, qtype)
        golden = json.load(open(os.path.join(GOLDEN, name, "golden.json")))
        sd = hf_from_decoded(cfg, t, decoded)
        logits = transformers_logits(name, sd, golden["prompt_ids"])
        np.save(os.path.join(OUT, f"{name}.{qtype}.logits.npy"), logits)
        ref = np.load(os.path.join(GOLDEN, name, "prompt_logits.npy"))
        print(name, qtype, os.path.getsize(os.path.join(OUT, f"{name}.{qtype}.gguf")), "bytes; max |logits - golden|",
              float(np.abs(logits - ref).max()))
    write_kquant()


if __name__ == "__main__":
    sys.exit(main())
