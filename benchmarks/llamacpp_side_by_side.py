#!/usr/bin/env python3
"""moe-runtime beside llama.cpp on this machine, on the same Mixtral-shaped random-weight model.

Makes the model once: the mixtral-moderate checkpoint of moe_bench_generate (8 layers, hidden 1024,
8 experts top-2 x 3584, vocab 32000, bf16), written as a BF16 GGUF by checkpoint_to_gguf.py, then
quantized by llama.cpp's own llama-quantize to Q8_0, Q4_0 and Q4_K_M. Then, alternating in each
round, runs moe_bench_generate and llama-bench with the same thread count and prints decode and
prefill tokens/s and their ratio (ours / llama.cpp):
  * the same GGUF file in both engines (BF16, Q8_0, Q4_0, Q4_K_M);
  * our own formats beside llama.cpp's nearest one: the bf16 safetensors directory vs BF16, our
    packed q8 vs Q8_0 and q4 vs Q4_0 (group 32 asymmetric HQQ vs ggml's blocks of 32).
Medians over the rounds; one JSON record (benchmarks/results/cpu-llamacpp-side-by-side.json).

Workloads: ours prefills a prompt of --prompt random ids and decodes --decode greedy tokens after
it; llama-bench's pp<prompt> and tg<decode> (tg starts from an empty context). The KV cache of a
128-token context is ~1% of the bytes a decoded token reads here, so the two decode figures
measure the same thing to within that.

llama.cpp is not part of moe-runtime and never committed: build it from its public source, e.g.
    cmake -S llama.cpp -B llama.cpp/build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF
    cmake --build llama.cpp/build -j2 --target llama-bench llama-quantize
(GGML_NATIVE=OFF with -DGGML_AVX2=ON etc. if a native build faults on a VM).

Usage: benchmarks/llamacpp_side_by_side.py --llama-cpp DIR [--build build] [--threads 2] [--rounds 3]
Needs: pip install gguf numpy safetensors torch
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHECKPOINT = "/tmp/moe-bench-mixtral-moderate"  # moe_bench_generate's default for this shape


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def git_commit(d):
    try:
        return subprocess.run(["git", "-C", d, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def prepare(a, bench):
    """The checkpoint, its BF16 GGUF and llama-quantize's Q8_0 / Q4_0 / Q4_K_M; reused when present."""
    if not os.path.exists(os.path.join(CHECKPOINT, "moe-bench-model.json")):
        # moe_bench_generate writes the checkpoint (its stamp says which spec) and runs once briefly.
        sh([bench, "--reps", "1", "--warmup", "0", "--prompt-tokens", "1", "--decode-tokens", "1", "--bw-mib", "16",
            "--bw-reps", "1", "--no-record"], stdout=subprocess.DEVNULL)
    os.makedirs(a.work, exist_ok=True)
    files = {"BF16": os.path.join(a.work, "mixtral-moderate.BF16.gguf")}
    stamp = os.path.getmtime(os.path.join(CHECKPOINT, "model.safetensors"))
    if not os.path.exists(files["BF16"]) or os.path.getmtime(files["BF16"]) < stamp:
        sh([sys.executable, os.path.join(HERE, "checkpoint_to_gguf.py"), CHECKPOINT, files["BF16"]])
    quantize = os.path.join(a.llama_cpp, "build", "bin", "llama-quantize")
    for t in ("Q8_0", "Q4_0", "Q4_K_M"):
        files[t] = os.path.join(a.work, f"mixtral-moderate.{t}.gguf")
        if not os.path.exists(files[t]) or os.path.getmtime(files[t]) < os.path.getmtime(files["BF16"]):
            sh([quantize, files["BF16"], files[t], t, str(a.threads)], stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
    return files


def ours(a, bench, extra):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        sh([bench, "--threads", str(a.threads), "--prompt-tokens", str(a.prompt), "--decode-tokens", str(a.decode),
            "--reps", "1", "--warmup", "1", "--bw-reps", "2", "--out", out] + extra, stdout=subprocess.DEVNULL,
           stderr=subprocess.DEVNULL)
        r = json.load(open(out))
    finally:
        os.unlink(out)
    f = r["figures"]
    return {"decode": f["decode_tokens_per_second"]["median"], "prefill": f["prompt_tokens_per_second"]["median"],
            "decode_bound_read": r["bound"]["decode_tokens_per_second_from_read_bw"],
            "weights_bytes": r["model"]["weights_bytes"], "bytes_per_token": r["bytes_per_token"]["total"]}


def llama(a, path):
    bench = os.path.join(a.llama_cpp, "build", "bin", "llama-bench")
    p = sh([bench, "-m", path, "-t", str(a.threads), "-p", str(a.prompt), "-n", str(a.decode), "-r", "1", "-o", "json"],
           capture_output=True, text=True)
    rows = json.loads(p.stdout)
    fig = {}
    for r in rows:
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            fig["prefill"] = r["avg_ts"]
        elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            fig["decode"] = r["avg_ts"]
        fig.setdefault("build", f"{r.get('build_commit', '')} ({r.get('build_number', '')})")
        fig.setdefault("cpu_info", r.get("cpu_info", ""))
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source directory with build/bin/llama-bench")
    ap.add_argument("--llama-cpp-commit", default="", help="its commit, when the directory is not a git checkout")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="moe-runtime build directory")
    ap.add_argument("--work", default="/tmp/moe-gguf-bench", help="where the GGUF files are written")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "cpu-llamacpp-side-by-side.json"))
    a = ap.parse_args()
    bench = os.path.join(a.build, "benchmarks", "moe_bench_generate")
    files = prepare(a, bench)
    # (row name, our arguments, the llama.cpp file it is compared with)
    rows = [(f"GGUF {t}", ["--gguf", files[t]], t) for t in ("BF16", "Q8_0", "Q4_0", "Q4_K_M")]
    rows += [("ours bf16 (safetensors) | BF16", [], "BF16"), ("ours q8 (packed) | Q8_0", ["--quant", "q8"], "Q8_0"),
             ("ours q4 (packed) | Q4_0", ["--quant", "q4"], "Q4_0")]
    got = {name: {"ours": [], "llama": []} for name, _, _ in rows}
    detail = {}
    for r in range(a.rounds):
        print(f"round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
        for name, extra, t in rows:
            o = ours(a, bench, extra)
            got[name]["ours"].append(o)
            got[name]["llama"].append(llama(a, files[t]))
            detail[name] = {"ours_args": extra, "llama_file": os.path.basename(files[t])}

    def med(xs, key):
        v = [x[key] for x in xs if key in x]
        return statistics.median(v) if v else float("nan")

    print(f"\nmoe-runtime {git_commit(REPO)} vs llama.cpp {a.llama_cpp_commit or git_commit(a.llama_cpp)}, "
          f"{cpu_model()}, {a.threads} threads, median of {a.rounds} alternating rounds, "
          f"prompt {a.prompt}, decode {a.decode}")
    hdr = f"{'row':34} {'decode ours':>11} {'llama.cpp':>10} {'ratio':>6} | {'prefill ours':>12} {'llama.cpp':>10} {'ratio':>6} | {'ours % of read bound':>20}"
    print(hdr)
    print("-" * len(hdr))
    table = []
    for name, extra, t in rows:
        od, ld = med(got[name]["ours"], "decode"), med(got[name]["llama"], "decode")
        op, lp = med(got[name]["ours"], "prefill"), med(got[name]["llama"], "prefill")
        bound = med(got[name]["ours"], "decode_bound_read")
        print(f"{name:34} {od:11.1f} {ld:10.1f} {od / ld:6.2f} | {op:12.1f} {lp:10.1f} {op / lp:6.2f} | "
              f"{100 * od / bound:19.0f}%")
        table.append({"row": name, **detail[name], "decode_tps": {"ours": od, "llama_cpp": ld, "ratio": od / ld},
                      "prefill_tps": {"ours": op, "llama_cpp": lp, "ratio": op / lp},
                      "ours_decode_bound_read_tps": bound,
                      "ours_weights_bytes": got[name]["ours"][0]["weights_bytes"],
                      "rounds": got[name]})
    record = {
        "benchmark": "llamacpp_side_by_side",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": {"commit": git_commit(REPO)},
        "llama_cpp": {"commit": a.llama_cpp_commit or git_commit(a.llama_cpp),
                      "build": got[rows[0][0]]["llama"][0].get("build", ""),
                      "cpu_info": got[rows[0][0]]["llama"][0].get("cpu_info", "")},
        "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "threads": a.threads,
                    "load_average": os.getloadavg()},
        "model": "mixtral-moderate (8 layers, hidden 1024, 16/4 heads, 8 experts top-2 x 3584, vocab 32000), "
                 "random weights, seed 0",
        "workload": {"prompt_tokens": a.prompt, "decode_tokens": a.decode, "rounds": a.rounds,
                     "ours": "moe_bench_generate: prefill the prompt, then greedy decode",
                     "llama_cpp": f"llama-bench -p {a.prompt} -n {a.decode} -r 1 (tg from an empty context)"},
        "rows": table,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"record {a.out}")


if __name__ == "__main__":
    main()
