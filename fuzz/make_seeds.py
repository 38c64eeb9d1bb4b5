#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/, from tests/fixtures.

    python3 fuzz/make_seeds.py [--moe build/launch/moe]

Small files only (the committed corpora stay a few hundred KB): fixture tokenizers are cut to
their first few hundred tokens, GGUF models keep their metadata and only their small tensors,
the packed store is a 1-layer tiny model (`moe make-tiny` + `moe convert`, so it needs a built
`moe`; without one that corpus is left as it is) cut to its small tensors and first expert.
Coordinator messages are encoded with `protoc --encode` from text format. Rerunning it rewrites
the same files (everything is deterministic except the packed store's source path, which is
fixed to a constant here).
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(HERE, "corpus")
SEP = b"\n#MOEFUZZ#\n"  # fuzz/fuzz_common.h kPartSeparator


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)
    os.makedirs(os.path.join(OUT, target))


# ---- safetensors ----------------------------------------------------------------------------------

def st_bytes(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> one safetensors file."""
    header = {}
    off = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def f32(*shape, start=0.0):
    n = int(np.prod(shape)) if shape else 1
    return np.arange(start, start + n, dtype=np.float32).reshape(shape).tobytes()


def seeds_safetensors():
    reset("safetensors")
    put("safetensors", "python_written.safetensors", read(os.path.join(FIX, "io", "python_written.safetensors")))
    put("safetensors", "f32_f16_bf16.safetensors", st_bytes([
        ("a", "F32", [2, 3], f32(2, 3)),
        ("b", "F16", [4], np.arange(4, dtype=np.float16).tobytes()),
        ("c", "BF16", [2, 2], b"\x80\x3f" * 4),
        ("scalar", "F32", [], f32()),
        ("empty", "F32", [0, 4], b""),
    ], {"format": "pt"}))
    put("safetensors", "ints.safetensors", st_bytes([
        ("i64", "I64", [2], struct.pack("<2q", 1, -1)),
        ("u8", "U8", [3], b"\x01\x02\x03"),
        ("bool", "BOOL", [1], b"\x01"),
    ]))
    put("safetensors", "empty.safetensors", st_bytes([]))


def seeds_safetensors_index():
    reset("safetensors_index")
    s1 = st_bytes([("model.embed_tokens.weight", "F32", [4, 2], f32(4, 2)), ("model.norm.weight", "F32", [2], f32(2))])
    s2 = st_bytes([("lm_head.weight", "BF16", [4, 2], b"\x00\x3f" * 8)])
    index = {
        "metadata": {"total_size": 8 * 4 + 2 * 4 + 8 * 2},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "model.norm.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors",
        },
    }
    put("safetensors_index", "two_shards", json.dumps(index, indent=1).encode() + SEP + s1 + SEP + s2)
    put("safetensors_index", "single_file", s1)


# ---- npy -----------------------------------------------------------------------------------------

def npy_bytes(arr, version=None, fortran=False):
    import io
    b = io.BytesIO()
    if fortran:
        arr = np.asfortranarray(arr)
    np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


def seeds_npy():
    reset("npy")
    put("npy", "numpy_written.npy", read(os.path.join(FIX, "io", "numpy_written.npy")))
    put("npy", "scalar.npy", npy_bytes(np.float32(1.5)))
    put("npy", "empty.npy", npy_bytes(np.zeros((0, 3), np.float32)))
    put("npy", "2x3.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3)))
    put("npy", "v2.npy", npy_bytes(np.arange(4, dtype=np.float32), version=(2, 0)))
    put("npy", "fortran.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3), fortran=True))
    put("npy", "f8.npy", npy_bytes(np.arange(3, dtype=np.float64)))
    put("npy", "big_endian.npy", npy_bytes(np.arange(3, dtype=">f4")))


# ---- config.json ------------------------------------------------------------------------------------

def seeds_config():
    reset("config")
    gold = os.path.join(FIX, "golden")
    for d in sorted(os.listdir(gold)):
        p = os.path.join(gold, d, "config.json")
        if os.path.exists(p):
            put("config", d + ".json", read(p))
    put("config", "oom_num_hidden_layers.json", read(os.path.join(FIX, "robustness", "config-oom-num_hidden_layers-1e9.json")))


# ---- tokenizer.json ---------------------------------------------------------------------------------

def cut_tokenizer(tok, keep=300):
    model = tok.get("model", {})
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        kept = {t: i for t, i in vocab.items() if i < keep}
        model["vocab"] = kept
        merges = model.get("merges", [])
        out = []
        for m in merges:
            a, b = (m.split(" ", 1) if isinstance(m, str) else m) + ([] if not isinstance(m, str) or " " in m else [""])
            if a in kept and b in kept and (a + b) in kept:
                out.append(m)
        model["merges"] = out
    return tok


def seeds_tokenizer():
    reset("tokenizer")
    base = os.path.join(FIX, "tokenizers")
    texts = [json.loads(l)["text"] for l in open(os.path.join(base, "corpus.jsonl"), encoding="utf-8")]
    texts = [t for t in texts if 0 < len(t) < 200][:8]
    for i, name in enumerate(sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))):
        tok = cut_tokenizer(json.load(open(os.path.join(base, name, "tokenizer.json"), encoding="utf-8")))
        cfg = read(os.path.join(base, name, "tokenizer_config.json"))
        body = json.dumps(tok, ensure_ascii=False, separators=(",", ":")).encode()
        put("tokenizer", name, body + SEP + cfg + SEP + texts[i % len(texts)].encode())
    tiny = cut_tokenizer(json.load(open(os.path.join(ROOT, "launch", "assets", "tiny_tokenizer.json"), encoding="utf-8")))
    put("tokenizer", "tiny", json.dumps(tiny, ensure_ascii=False, separators=(",", ":")).encode() + SEP +
        read(os.path.join(ROOT, "launch", "assets", "tiny_tokenizer_config.json")) + SEP + b"Hello world")
    rob = os.path.join(FIX, "robustness")
    for f in sorted(os.listdir(rob)):
        if f.startswith("tokenizer-") and f.endswith(".json") and os.path.getsize(os.path.join(rob, f)) < 16384:
            text = os.path.join(rob, f[:-5] + ".text")
            put("tokenizer", f[:-5], read(os.path.join(rob, f)) + SEP + SEP + (read(text) if os.path.exists(text) else b""))


def seeds_tokenizer_encode():
    reset("tokenizer_encode")
    base = os.path.join(FIX, "tokenizers")
    n = 0
    for line in open(os.path.join(base, "corpus.jsonl"), encoding="utf-8"):
        t = json.loads(line)["text"].encode()
        if len(t) > 1500:
            continue
        put("tokenizer_encode", "corpus%02d" % n, bytes([(n % 4) | (0x10 if n % 8 >= 4 else 0)]) + t)
        n += 1
        if n == 40:
            break
    put("tokenizer_encode", "special", b"\x10<s>[INST] hi </s><|im_start|>user\n<|endoftext|>\xff\xfe")


# ---- chat templates ---------------------------------------------------------------------------------

def seeds_chat_template():
    reset("chat_template")
    chat = os.path.join(FIX, "chat")
    for d in sorted(os.listdir(chat)):
        p = os.path.join(chat, d, "tokenizer_config.json")
        if not os.path.exists(p):
            continue
        t = json.load(open(p, encoding="utf-8")).get("chat_template")
        if isinstance(t, list):
            for e in t:
                put("chat_template", "%s_%s.jinja" % (d, e["name"]), e["template"])
        elif isinstance(t, str):
            put("chat_template", d + ".jinja", t)
    rob = os.path.join(FIX, "robustness")
    for f in sorted(os.listdir(rob)):
        if f.startswith("chat-") and os.path.getsize(os.path.join(rob, f)) < 2048:
            put("chat_template", f, read(os.path.join(rob, f)))


# ---- GGUF ------------------------------------------------------------------------------------------

class Gguf:
    """Just enough of the format to keep the metadata and re-pack a subset of the tensors."""

    def __init__(self, data):
        self.data = data
        assert data[:4] == b"GGUF"
        self.version, self.n_tensors, self.n_kv = struct.unpack_from("<IQQ", data, 4)
        self.pos = 24
        self.alignment = 32
        kv_start = self.pos
        for _ in range(self.n_kv):
            key = self.string()
            vtype = self.u32()
            value = self.value(vtype)
            if key == "general.alignment":
                self.alignment = value
        self.kv = data[kv_start:self.pos]
        self.tensors = []
        for _ in range(self.n_tensors):
            name = self.string()
            n_dims = self.u32()
            dims = struct.unpack_from("<%dQ" % n_dims, data, self.pos)
            self.pos += 8 * n_dims
            ttype = self.u32()
            off = self.u64()
            self.tensors.append([name, dims, ttype, off])
        self.data_start = self.pos + (-self.pos % self.alignment)

    def u32(self):
        v = struct.unpack_from("<I", self.data, self.pos)[0]
        self.pos += 4
        return v

    def u64(self):
        v = struct.unpack_from("<Q", self.data, self.pos)[0]
        self.pos += 8
        return v

    def string(self):
        n = self.u64()
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et = self.u32()
            n = self.u64()
            return [self.value(et) for _ in range(n)] if et in (8, 9) else self.skip(et, n)
        v = struct.unpack_from("<" + self.FMT[t], self.data, self.pos)[0]
        self.pos += self.SIZES[t]
        return v

    def skip(self, t, n):
        self.pos += self.SIZES[t] * n
        return None

    def chunks(self):
        offs = sorted(t[3] for t in self.tensors) + [len(self.data) - self.data_start]
        nxt = {offs[i]: offs[i + 1] for i in range(len(offs) - 1)}
        return {t[0]: self.data[self.data_start + t[3]:self.data_start + nxt[t[3]]] for t in self.tensors}

    # ggml type id -> (block elements, block bytes), for the types the fixtures use
    BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34), 10: (256, 84), 11: (256, 110),
              12: (256, 144), 13: (256, 176), 14: (256, 210)}

    def repack(self, max_bytes, max_tensors, vocab_rows=None):
        """Keeps the tensors of at most max_bytes (and at most max_tensors of them); with vocab_rows,
        also the embedding and the LM head cut to their first vocab_rows rows."""
        chunks = self.chunks()
        kept = [t for t in self.tensors if len(chunks[t[0]]) <= max_bytes][:max_tensors]
        if vocab_rows:
            for t in self.tensors:
                if t[0] in ("token_embd.weight", "output.weight") and len(t[1]) == 2 and t[2] in self.BLOCKS:
                    be, bb = self.BLOCKS[t[2]]
                    row = t[1][0] // be * bb
                    rows = min(vocab_rows, t[1][1])
                    chunks[t[0]] = chunks[t[0]][:row * rows]
                    kept.insert(0, [t[0], (t[1][0], rows), t[2], t[3]])
        out = bytearray(b"GGUF" + struct.pack("<IQQ", self.version, len(kept), self.n_kv) + self.kv)
        off = 0
        for name, dims, ttype, _ in kept:
            nb = name.encode()
            out += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims)
            out += struct.pack("<IQ", ttype, off)
            c = chunks[name]
            off += len(c) + (-len(c) % self.alignment)
        out += b"\0" * (-len(out) % self.alignment)
        for name, _, _, _ in kept:
            c = chunks[name]
            out += c + b"\0" * (-len(c) % self.alignment)
        return bytes(out)


def seeds_gguf():
    reset("gguf")
    put("gguf", "reader_all_types.gguf", read(os.path.join(FIX, "gguf", "reader_all_types.gguf")))
    models = os.path.join(FIX, "gguf_models")
    for f in sorted(os.listdir(models)):
        if not f.endswith(".gguf"):
            continue
        g = Gguf(read(os.path.join(models, f)))
        put("gguf", f[:-5] + ".small.gguf", g.repack(max_bytes=1024, max_tensors=12, vocab_rows=16))
        put("gguf", f[:-5] + ".meta.gguf", g.repack(max_bytes=0, max_tensors=0))


# ---- packed store ----------------------------------------------------------------------------------

def seeds_packed_store(moe):
    if not moe or not os.path.exists(moe):
        print("make_seeds: no moe program (--moe): packed_store corpus left as it is", file=sys.stderr)
        return
    reset("packed_store")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, quant in (("qwen3_moe", "q4"), ("mixtral", "q8")):
            src = os.path.join(tmp, arch)
            store = os.path.join(tmp, arch + "-store")
            subprocess.run([moe, "make-tiny", "--arch", arch, "--layers", "1", "--dtype", "f32", "--out", src],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([moe, "convert", "-m", src, "-q", quant, "--quantizer", "rtn", "-o", store],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            m = json.load(open(os.path.join(store, "manifest.json")))
            dense = read(os.path.join(store, "dense.bin"))
            experts = read(os.path.join(store, "experts.bin"))
            m["source"]["dir"] = "tiny"
            first = m["experts"][0]
            m["experts"] = [first]
            end = first["offset"] + first["bytes"]
            new_dense = bytearray()
            tensors = []
            for t in m["tensors"]:
                if t["file"] == "experts.bin":
                    if t["offset"] + t["bytes"] <= end:
                        tensors.append(t)
                elif t["bytes"] <= 2048:
                    new_dense += b"\0" * (-len(new_dense) % 64)
                    chunk = dense[t["offset"]:t["offset"] + t["bytes"]]
                    t["offset"] = len(new_dense)
                    new_dense += chunk
                    tensors.append(t)
            m["tensors"] = tensors
            manifest = json.dumps(m, separators=(",", ":")).encode()
            put("packed_store", arch + "_" + quant, manifest + SEP + bytes(new_dense) + SEP + experts[:end])
    put("packed_store", "no_experts", b'{"format":"moe-packed","version":1,"recipe":"keep","source":{"config":{}},'
        b'"tensors":[],"experts":[]}')


# ---- moe serve request bodies ---------------------------------------------------------------------------

def seeds_serve_request():
    reset("serve_request")
    bodies = [
        {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 8},
        {"prompt": [1, 15, 27], "max_tokens": 4, "temperature": 0, "seed": 7, "stop": ["\n", "end"]},
        {"prompt": ["a", "b c"], "n": 2, "echo": True, "top_p": 0.9, "top_k": 5, "logprobs": None},
        {"prompt": [[1, 2], [3, 4]], "stream": True, "stream_options": {"include_usage": True}},
        {"prompt": "x", "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"5": -100},
         "ignore_eos": True, "return_token_ids": True, "best_of": 1, "suffix": None, "user": "u"},
        {"model": "/models/tiny", "messages": [{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "Hi"}], "max_completion_tokens": 5},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]},
                      {"role": "assistant", "content": "Hey"}, {"role": "developer", "content": "d"}],
         "response_format": {"type": "text"}, "stop": "\n"},
        {"messages": [{"role": "user", "content": "call"}], "tools": [], "add_generation_prompt": False},
        {"prompt": "Hello world", "add_special_tokens": False},
        {"tokens": [1, 15, 27, 2], "skip_special_tokens": True},
        {"model": "other", "prompt": "x"},
    ]
    for i, b in enumerate(bodies):
        put("serve_request", "body%02d.json" % i, json.dumps(b, ensure_ascii=False))


# ---- coordinator messages ---------------------------------------------------------------------------

def seeds_coordinator_proto():
    reset("coordinator_proto")
    proto = os.path.join(ROOT, "proto", "coordinator.proto")
    msgs = [
        (0, "RegisterRequest", 'protocol_version: 1 worker { host: "a" mpi_rank: 0 devices { kind: "cpu" name: "x" '
                                'memory_bytes: 1000000 } ram_bytes: 100000000 memory_bandwidth: 1e10 '
                                'drive_bandwidth: 1e9 link_bandwidth: 1e9 link_latency: 1e-5 compute_bytes_per_s: 5e9 }'),
        (0, "RegisterRequest", 'protocol_version: 1 worker { host: "b" mpi_rank: -1 ram_bytes: 4000 '
                                'drive_bandwidth: 1e9 data_address: "127.0.0.1:5000" }'),
        (1, "HeartbeatRequest", 'protocol_version: 1 worker_id: "w0-1" progress { steps: 3 tokens: 2 seconds: 0.5 '
                                 'rss_bytes: 1000 }'),
        (2, "ReportMetricsRequest", 'protocol_version: 1 worker_id: "w0" steps { step: 1 tokens: 1 seconds: 0.1 '
                                     'compute_seconds: 0.05 comm_wait_seconds: 0.01 bubble_seconds: 0.01 cache_hits: 3 '
                                     'cache_misses: 1 prefetch_predicted: 2 prefetch_used: 2 '
                                     'prefetch_predicted_and_used: 1 bytes_vram: 10 bytes_ram: 20 bytes_nvme: 30 } '
                                     'steps { step: 2 tokens: 1 seconds: 0.2 }'),
        (3, "ReportResultRequest", 'protocol_version: 1 worker_id: "w0" token_ids: [1, 2, 3] text: "abc" '
                                    'prompt_tokens: 3 prefill_seconds: 0.1 decode_seconds: 0.2 stop_reason: "eos"'),
        (4, "GetPlanResponse", 'ready: true registered_workers: 2 expected_workers: 2 worker_index: 0 '
                                'assignment { worker: 0 pp_rank: 0 world_rank: 0 layers { begin: 0 end: 1 } } '
                                'plan { tp: 1 pp: 2 ep: 1 stages { begin: 0 end: 1 } stages { begin: 1 end: 2 } '
                                'assignments { worker: 0 pp_rank: 0 world_rank: 0 layers { begin: 0 end: 1 } '
                                'resident_bytes: 100 } assignments { worker: 1 pp_rank: 1 world_rank: 1 '
                                'layers { begin: 1 end: 2 } offload: true expert_ram_budget: 10 } '
                                'predicted_tokens_per_s: 10 } workers { id: "w0" host: "a" mpi_rank: 0 } '
                                'workers { id: "w1" host: "b" mpi_rank: 1 } '
                                'job { model_dir: "m" prompt_token_ids: [1, 15] max_new_tokens: 4 greedy: true }'),
        (5, "Job", 'model_dir: "tiny-model" prompt_token_ids: [1, 15, 27] max_new_tokens: 16 temperature: 0.7 '
                   'top_k: 40 top_p: 0.9 seed: 1'),
    ]
    for i, (sel, name, text) in enumerate(msgs):
        enc = subprocess.run(["protoc", "-I", ROOT, "--encode=moe.coordinator.v1." + name, proto],
                             input=text.encode(), check=True, capture_output=True).stdout
        put("coordinator_proto", "%02d_%s" % (i, name), bytes([sel]) + enc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moe", default=os.path.join(ROOT, "build", "launch", "moe"))
    a = ap.parse_args()
    seeds_safetensors()
    seeds_safetensors_index()
    seeds_npy()
    seeds_config()
    seeds_tokenizer()
    seeds_tokenizer_encode()
    seeds_chat_template()
    seeds_gguf()
    seeds_packed_store(a.moe)
    seeds_serve_request()
    seeds_coordinator_proto()
    total = 0
    for d in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, d))
        size = sum(os.path.getsize(os.path.join(OUT, d, f)) for f in files)
        total += size
        print("%-20s %3d files %8d bytes" % (d, len(files), size))
    print("%-20s %17d bytes" % ("total", total))


if __name__ == "__main__":
    main()
