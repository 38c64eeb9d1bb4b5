#!/usr/bin/env python3
"""Encode throughput (MB/s) of `moe tokenize` beside Hugging Face `tokenizers`, same run.

    python3 benchmarks/tokenizer_throughput.py [--tokenizer tests/fixtures/tokenizers/llama3_bytelevel]
        [--text FILE] [--moe build/launch/moe] [--reps 5] [--out benchmarks/results/tokenizer-throughput.json]

Two workloads over the same UTF-8 text:
  lines  every line ("\\n"-split) encoded on its own
         ours: moe tokenize --tokenizer T --no-special --lines --bench < FILE
         hf:   for line in lines: tok.encode(line, add_special_tokens=False)
  whole  the whole file as one text
         ours: moe tokenize --tokenizer T --no-special --bench < FILE
         hf:   tok.encode(text, add_special_tokens=False)
Ours is timed by the CLI itself (`--bench` prints `encode_bytes=N [tokens=T] seconds=S`: the encode
loop only, no process start, tokenizer load or stdin read). `tokenizers` runs single-threaded
(RAYON_NUM_THREADS=1, no encode_batch) in this process; its lines figure includes the Python
loop's per-call overhead (~1-2 us per line). The sides alternate rep by rep after one warm-up
each; the median of --reps is reported. MB = 10^6 bytes of UTF-8 input.

Without --text the input is tests/fixtures/tokenizers/corpus.jsonl's texts, joined by "\\n" and
repeated to --mb megabytes (written to a temporary file). Runs and reports the `tokenizers`
side even when the moe binary is missing or has no `tokenize` subcommand (it says so).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tokenizers")
BENCH_RE = re.compile(r"encode_bytes=(\d+)(?:\s+tokens=(\d+))?\s+seconds=([0-9.eE+-]+)")


def default_text(mb: float) -> str:
    with open(os.path.join(FIXTURES, "corpus.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(l)["text"] for l in f if l.strip()]
    block = "\n".join(texts) + "\n"
    reps = max(1, int(round(mb * 1e6 / len(block.encode("utf-8")))))
    return block * reps


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        load = None
    return {"hostname": socket.gethostname(), "cpu_model": cpu, "logical_cores": os.cpu_count(),
            "python": platform.python_version(), "tokenizers": tokenizers.__version__,
            "load_average_at_start": load}


def git_info() -> dict:
    def run(*a):
        try:
            return subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": run("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}


def moe_probe(binary: str, tokenizer: str, timeout: float) -> str | None:
    """None when `moe tokenize --bench` works, else the reason it cannot be run."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return f"moe binary not found at {binary}"
    try:
        p = subprocess.run([binary, "tokenize", "--tokenizer", tokenizer, "--no-special", "--bench"],
                           input=b"hello world", capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{binary} tokenize failed: {e}"
    if p.returncode != 0 or not BENCH_RE.search(p.stdout.decode("utf-8", "replace")):
        err = (p.stderr or p.stdout).decode("utf-8", "replace").strip().splitlines()
        return f"{binary} tokenize --bench does not work (exit {p.returncode}: {err[0] if err else ''})"
    return None


def run_ours(binary: str, tokenizer: str, path: str, lines: bool, timeout: float) -> dict:
    cmd = [binary, "tokenize", "--tokenizer", tokenizer, "--no-special", "--bench"] + (["--lines"] if lines else [])
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        p = subprocess.run(cmd, stdin=f, capture_output=True, timeout=timeout)
    wall = time.perf_counter() - t0
    m = BENCH_RE.search(p.stdout.decode("utf-8", "replace"))
    if p.returncode != 0 or not m:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode('utf-8', 'replace')[:300]}")
    return {"seconds": float(m.group(3)), "bytes": int(m.group(1)),
            "tokens": int(m.group(2)) if m.group(2) else None, "process_wall_seconds": wall}


def run_hf(tok: Tokenizer, text: str, lines: list[str], by_lines: bool) -> dict:
    if by_lines:
        enc = tok.encode
        t0 = time.perf_counter()
        n = 0
        for line in lines:
            n += len(enc(line, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        n = len(tok.encode(text, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
    return {"seconds": dt, "tokens": n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=os.path.join(FIXTURES, "llama3_bytelevel", "tokenizer.json"),
                    help="tokenizer.json or its directory (default: the llama3_bytelevel fixture)")
    ap.add_argument("--text", help="UTF-8 text file (default: the test corpus repeated to --mb MB)")
    ap.add_argument("--mb", type=float, default=4.0, help="size of the default text in MB")
    ap.add_argument("--moe", default=os.path.join(REPO, "build", "launch", "moe"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--modes", default="lines,whole", help="comma list of lines,whole")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per moe call")
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "tokenizer-throughput.json"),
                    help="JSON record ('' for none)")
    args = ap.parse_args()

    tok_json = os.path.join(args.tokenizer, "tokenizer.json") if os.path.isdir(args.tokenizer) else args.tokenizer
    tok = Tokenizer.from_file(tok_json)
    tmp = None
    if args.text:
        path = args.text
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    else:
        text = default_text(args.mb)
        raw = text.encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix="moe-tok-bench-", suffix=".txt")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        path = tmp
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    n_bytes = len(raw)
    line_bytes = sum(len(l.encode("utf-8")) for l in lines)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("lines", "whole"):
            ap.error(f"unknown mode {m}")

    why_not = moe_probe(args.moe, args.tokenizer, args.timeout)
    mach = machine()
    print(f"tokenizer: {tok_json}")
    print(f"text:      {args.text or f'test corpus repeated ({tmp})'}: {n_bytes / 1e6:.2f} MB, {len(lines)} lines")
    print(f"machine:   {mach['cpu_model']} ({mach['logical_cores']} logical cores); tokenizers {tokenizers.__version__} single-threaded")
    print(f"ours:      {'moe tokenize --bench (' + args.moe + ')' if why_not is None else 'NOT RUN: ' + why_not}")

    results = {side: {m: [] for m in modes} for side in ("moe", "tokenizers")}
    try:
        # warm-up (page cache, tokenizers' BPE cache is per-process and kept: same for every rep)
        for m in modes:
            if why_not is None:
                run_ours(args.moe, args.tokenizer, path, m == "lines", args.timeout)
            run_hf(tok, text, lines, m == "lines")
        for rep in range(args.reps):
            for m in modes:
                if why_not is None:
                    results["moe"][m].append(run_ours(args.moe, args.tokenizer, path, m == "lines", args.timeout))
                results["tokenizers"][m].append(run_hf(tok, text, lines, m == "lines"))
            print(f"  rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    finally:
        if tmp:
            os.unlink(tmp)

    summary = {}
    print()
    print(f"{'workload':8s} {'side':12s} {'median s':>10s} {'MB/s':>9s} {'tokens':>10s} {'min s':>9s} {'max s':>9s}")
    for m in modes:
        nb = line_bytes if m == "lines" else n_bytes
        for side in ("moe", "tokenizers"):
            runs = results[side][m]
            if not runs:
                print(f"{m:8s} {side:12s} {'(not run)':>10s}")
                summary.setdefault(m, {})[side] = None
                continue
            secs = [r["seconds"] for r in runs]
            med = statistics.median(secs)
            toks = runs[0]["tokens"]
            summary.setdefault(m, {})[side] = {
                "median_seconds": med, "mb_per_s": nb / 1e6 / med if med > 0 else None,
                "tokens": toks, "all_seconds": secs, "bytes": nb}
            if side == "moe":
                summary[m][side]["bytes_reported_by_cli"] = runs[0]["bytes"]
                summary[m][side]["process_wall_seconds"] = [r["process_wall_seconds"] for r in runs]
            print(f"{m:8s} {side:12s} {med:10.4f} {nb / 1e6 / med:9.2f} {toks if toks is not None else '-':>10} "
                  f"{min(secs):9.4f} {max(secs):9.4f}")
        o, h = summary[m].get("moe"), summary[m].get("tokenizers")
        if o and h:
            summary[m]["speedup_moe_over_tokenizers"] = h["median_seconds"] / o["median_seconds"]
            summary[m]["same_token_count"] = (o["tokens"] == h["tokens"]) if o["tokens"] is not None else None
            note = "" if summary[m]["same_token_count"] in (True, None) else "  TOKEN COUNTS DIFFER"
            print(f"{m:8s} {'ratio':12s} moe is {summary[m]['speedup_moe_over_tokenizers']:.2f}x tokenizers{note}")
    if why_not is not None:
        print(f"\nmoe side not run: {why_not}")

    if args.out:
        mach["load_average_at_end"] = machine()["load_average_at_start"]
        record = {
            "benchmark": "tokenizer_throughput", "schema_version": 1, "git": git_info(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": mach,
            "tokenizer": os.path.relpath(tok_json, REPO) if tok_json.startswith(REPO) else tok_json,
            "text": {"source": args.text or f"tests/fixtures/tokenizers/corpus.jsonl texts joined by \\n, repeated to {args.mb} MB",
                     "bytes": n_bytes, "lines": len(lines), "line_bytes": line_bytes,
                     "sha256": hashlib.sha256(raw).hexdigest()},
            "reps": args.reps, "statistic": "median", "mb": "10^6 bytes of UTF-8 input",
            "moe": {"binary": args.moe, "ran": why_not is None, "why_not": why_not,
                    "timing": "encode loop only, reported by `moe tokenize --bench`"},
            "tokenizers_side": {"threads": 1, "api": "Tokenizer.encode per line / on the whole text, "
                                "add_special_tokens=False; lines figure includes the Python loop"},
            "results": summary,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
