#!/usr/bin/env python3
"""Writes a Hugging Face MoE checkpoint directory (safetensors; e.g. the random-weight
mixtral-moderate model moe_bench_generate writes) as one GGUF file the way llama.cpp's
convert_hf_to_gguf.py lays it out: BF16 or F16 matrices, F32 norms and routers, stacked experts,
llama-arch q/k rows permuted for ggml's RoPE. The tensor mapping and metadata are those of the
GGUF oracle fixtures (tests/golden/make_gguf_golden.py), so one mapping serves the tests and the
benchmarks.

The benchmark model has no tokenizer. This writes a SentencePiece-style ("llama") vocabulary of
the config's vocab_size: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then placeholder
pieces. Both llama.cpp and moe-runtime load it; neither benchmark tokenizes text.

Usage: checkpoint_to_gguf.py MODEL_DIR OUT.gguf [--type bf16|f16]
Needs: pip install gguf numpy safetensors torch
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants  # noqa: E402

import make_gguf_golden as mapping  # noqa: E402


def add_vocab(w, n):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # UNKNOWN, CONTROL, CONTROL, BYTE
    if n < len(tokens) + 1:
        raise SystemExit(f"vocab_size {n} is too small for the placeholder vocabulary ({len(tokens) + 1} at least)")
    tokens += [f"\u2581t{i}" for i in range(n - len(tokens))]
    types += [1] * (n - len(types))  # NORMAL
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(n)])
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--type", choices=("bf16", "f16"), default="bf16")
    a = ap.parse_args()
    cfg, t = mapping.load_checkpoint(a.model_dir)
    arch = mapping.ARCH.get(cfg["architectures"][0])
    if arch is None:
        raise SystemExit(f"{a.model_dir}: architecture {cfg['architectures'][0]} is not one of {sorted(mapping.ARCH)}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    w = gguf.GGUFWriter(a.out, arch)
    w._moe_type = a.type.upper()  # general.file_type: LLAMA_FTYPE_MOSTLY_BF16 (32) / _F16 (1)
    mapping.add_metadata(w, cfg)
    add_vocab(w, cfg["vocab_size"])
    for name, x in mapping.gguf_tensors(cfg, t):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 1 or name.endswith("_norm.weight") or name.endswith("ffn_gate_inp.weight"):
            w.add_tensor(name, x)  # F32, as convert_hf_to_gguf.py keeps norms and routers
        elif a.type == "bf16":
            w.add_tensor(name, quants.quantize(x, T.BF16), raw_dtype=T.BF16)
        else:
            w.add_tensor(name, x.astype(np.float16))
        t.pop(name, None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
