#!/usr/bin/env python3
"""Parity of `moe tokenize` with Hugging Face `tokenizers` on a text file.

    python3 tests/tokenizer/parity.py --tokenizer PATH/tokenizer.json --text FILE [--moe build/launch/moe]

FILE is plain UTF-8 text (one item per line, split on "\\n" only: a "\\r" before it stays in the
line, as std::getline keeps it) or, when it ends in .jsonl, one JSON object per line whose
"text" is the item (items may then contain newlines). For every item, and for the whole file
as one text, the ids of `tokenizers` (Tokenizer.encode) are compared with the ids printed by

    moe tokenize --tokenizer PATH [--lines] [--no-special]          (text on stdin)

and the decoded text of those ids with

    moe tokenize --tokenizer PATH --decode [--lines] [--skip-special]   (ids on stdin)

Items without "\\n" go through one `--lines` call; items containing "\\n" (and decodes whose
text contains "\\n") are sent one call each. Special tokens are added on both sides unless
--no-special (the CLI's default is to add them, as Tokenizer.encode's is).

Exit status: 0 all agree, 1 some mismatch, 2 the moe binary is missing (the Python side is
still run and summarised), 3 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read_items(path: str) -> tuple[list[str], str]:
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")  # strict: a file that is not UTF-8 is a usage error
    if path.endswith(".jsonl"):
        items = [json.loads(l)["text"] for l in text.split("\n") if l.strip()]
    else:
        items = text.split("\n")
        if items and items[-1] == "":
            items.pop()  # the file's final newline ends the last line, it does not start one
    return items, text


def tokenizer_json(path: str) -> str:
    return os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path


class Moe:
    def __init__(self, binary: str, tokenizer: str, extra: list[str], timeout: float):
        self.binary, self.tokenizer, self.extra, self.timeout = binary, tokenizer, extra, timeout
        self.calls = 0

    def _run(self, args: list[str], stdin: bytes) -> bytes:
        self.calls += 1
        cmd = [self.binary, "tokenize", "--tokenizer", self.tokenizer] + args + self.extra
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=self.timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: "
                               f"{p.stderr.decode('utf-8', 'replace').strip()[:500]}")
        return p.stdout

    @staticmethod
    def _parse_ids(line: str) -> list[int]:
        return [int(w) for w in line.split()]

    def encode_lines(self, texts: list[str], special: bool) -> list[list[int]]:
        if not texts:
            return []
        flags = ["--lines"] + ([] if special else ["--no-special"])
        out = self._run(flags, ("\n".join(texts) + "\n").encode("utf-8")).decode("utf-8")
        lines = out.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != len(texts):
            raise RuntimeError(f"--lines: {len(texts)} lines in, {len(lines)} lines of ids out")
        return [self._parse_ids(l) for l in lines]

    def encode_one(self, text: str, special: bool) -> list[int]:
        flags = [] if special else ["--no-special"]
        out = self._run(flags, text.encode("utf-8")).decode("utf-8")
        return self._parse_ids(out)

    def decode_lines(self, id_lists: list[list[int]], skip: bool) -> list[str]:
        if not id_lists:
            return []
        flags = ["--decode", "--lines"] + (["--skip-special"] if skip else [])
        payload = "".join(" ".join(map(str, ids)) + "\n" for ids in id_lists).encode()
        out = self._run(flags, payload).decode("utf-8", "replace")
        lines = out.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != len(id_lists):
            raise RuntimeError(f"--decode --lines: {len(id_lists)} lines in, {len(lines)} out")
        return lines

    def decode_one(self, ids: list[int], skip: bool) -> str:
        flags = ["--decode"] + (["--skip-special"] if skip else [])
        return self._run(flags, " ".join(map(str, ids)).encode()).decode("utf-8", "replace")


def first_diff(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe_ids(tok: Tokenizer, ids: list[int], at: int, width: int = 4) -> str:
    lo, hi = max(0, at - width), min(len(ids), at + width + 1)
    parts = [f"{i}:{tok.id_to_token(i)!r}" if 0 <= i < tok.get_vocab_size() else f"{i}:?"
             for i in ids[lo:hi]]
    return ("... " if lo else "") + " ".join(parts) + (" ..." if hi < len(ids) else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json or the directory holding it")
    ap.add_argument("--text", required=True, help="plain text file (one item per line) or .jsonl with 'text'")
    ap.add_argument("--moe", default=os.path.join(REPO, "build", "launch", "moe"), help="moe binary")
    ap.add_argument("--no-special", action="store_true",
                    help="encode without special tokens on both sides (add_special_tokens=False / --no-special)")
    ap.add_argument("--skip-special", action="store_true",
                    help="decode with skip_special_tokens=True / --skip-special")
    ap.add_argument("--no-decode", action="store_true", help="compare encodings only")
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-file comparison")
    ap.add_argument("--limit", type=int, default=0, help="only the first N items")
    ap.add_argument("--show", type=int, default=10, help="mismatches to print per kind")
    ap.add_argument("--moe-arg", action="append", default=[], help="extra argument for every moe call")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per moe call")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()

    tok_path = tokenizer_json(args.tokenizer)
    if not os.path.isfile(tok_path):
        print(f"parity: no tokenizer at {tok_path}", file=sys.stderr)
        return 3
    tok = Tokenizer.from_file(tok_path)
    items, whole = read_items(args.text)
    if args.limit:
        items = items[:args.limit]
    special = not args.no_special

    t0 = time.perf_counter()
    ref_ids = [e.ids for e in tok.encode_batch(items, add_special_tokens=special)] if items else []
    ref_text = tok.decode_batch(ref_ids, skip_special_tokens=args.skip_special) if items else []
    ref_whole = tok.encode(whole, add_special_tokens=special).ids
    t_ref = time.perf_counter() - t0
    n_bytes = sum(len(t.encode("utf-8")) for t in items)
    n_rt = sum(1 for t, d in zip(items, ref_text) if t == d)
    print(f"tokenizer: {tok_path}")
    print(f"text:      {args.text}: {len(items)} items, {n_bytes} bytes; whole file {len(whole.encode())} bytes")
    print(f"tokenizers: {sum(map(len, ref_ids))} ids over the items, {len(ref_whole)} for the whole file, "
          f"{n_rt}/{len(items)} items decode back to their text exactly ({t_ref:.2f} s)")

    summary = {"tokenizer": tok_path, "text": args.text, "items": len(items), "special": special,
               "skip_special": args.skip_special, "reference_ids": sum(map(len, ref_ids)),
               "reference_roundtrip_exact": n_rt}
    if not (os.path.isfile(args.moe) and os.access(args.moe, os.X_OK)):
        print(f"moe binary not found at {args.moe}: compared nothing (Python side only above)")
        summary["moe"] = None
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
        return 2

    moe = Moe(args.moe, args.tokenizer, args.moe_arg, args.timeout)
    try:  # preflight: does this build have the subcommand and load the tokenizer at all?
        moe.encode_one("a", special)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"moe tokenize does not work with this binary/tokenizer: {e}")
        summary["moe"] = args.moe
        summary["errors"] = [str(e)]
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2, ensure_ascii=False)
        return 2
    t0 = time.perf_counter()
    ours: list[list[int] | None] = [None] * len(items)
    errors = []
    batch_idx = [i for i, t in enumerate(items) if "\n" not in t]
    try:
        for i, ids in zip(batch_idx, moe.encode_lines([items[i] for i in batch_idx], special)):
            ours[i] = ids
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        errors.append(f"batch encode: {e}")
    for i, t in enumerate(items):
        if ours[i] is None:
            try:
                ours[i] = moe.encode_one(t, special)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                errors.append(f"item {i}: {e}")
                ours[i] = []
    enc_bad = [i for i in range(len(items)) if ours[i] != ref_ids[i]]

    dec_bad = []
    if not args.no_decode:
        ours_text: list[str | None] = [None] * len(items)
        batch_idx = [i for i, d in enumerate(ref_text) if "\n" not in d and "\r" not in d]
        try:
            for i, d in zip(batch_idx, moe.decode_lines([ref_ids[i] for i in batch_idx], args.skip_special)):
                ours_text[i] = d
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            errors.append(f"batch decode: {e}")
        for i in range(len(items)):
            if ours_text[i] is None:
                try:
                    ours_text[i] = moe.decode_one(ref_ids[i], args.skip_special)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    errors.append(f"decode item {i}: {e}")
                    ours_text[i] = ""
        dec_bad = [i for i in range(len(items)) if ours_text[i] != ref_text[i]]

    whole_ok = None
    if not args.no_whole:
        try:
            ours_whole = moe.encode_one(whole, special)
            whole_ok = ours_whole == ref_whole
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            errors.append(f"whole file: {e}")
            whole_ok = False
    t_moe = time.perf_counter() - t0

    print(f"moe:        {args.moe} ({moe.calls} calls, {t_moe:.2f} s)")
    print(f"encode:     {len(items) - len(enc_bad)}/{len(items)} items agree")
    if not args.no_decode:
        print(f"decode:     {len(items) - len(dec_bad)}/{len(items)} items agree")
    if whole_ok is not None:
        print(f"whole file: {'agrees' if whole_ok else 'DIFFERS'} ({len(ref_whole)} ids)")
        if not whole_ok and 'ours_whole' in locals():
            k = first_diff(ours_whole, ref_whole)
            print(f"  first difference at id {k}: ours {describe_ids(tok, ours_whole, k)}")
            print(f"                            hf   {describe_ids(tok, ref_whole, k)}")
    for e in errors[:args.show]:
        print(f"error: {e}")
    if enc_bad:
        print(f"\nfirst {min(args.show, len(enc_bad))} encode mismatches:")
        for i in enc_bad[:args.show]:
            k = first_diff(ours[i], ref_ids[i])
            print(f"  item {i}: {items[i][:120]!r}")
            print(f"    ours ({len(ours[i])} ids) at {k}: {describe_ids(tok, ours[i], k)}")
            print(f"    hf   ({len(ref_ids[i])} ids) at {k}: {describe_ids(tok, ref_ids[i], k)}")
        if special and all(ours[i][1:] == ref_ids[i] or ours[i] == ref_ids[i][1:] for i in enc_bad[:20]):
            print("  (the differences are one leading id: a BOS added on one side only?)")
    if dec_bad:
        print(f"\nfirst {min(args.show, len(dec_bad))} decode mismatches:")
        for i in dec_bad[:args.show]:
            print(f"  item {i}: ids {ref_ids[i][:24]}{' ...' if len(ref_ids[i]) > 24 else ''}")
            print(f"    ours {ours_text[i][:120]!r}")
            print(f"    hf   {ref_text[i][:120]!r}")

    ok = not enc_bad and not dec_bad and whole_ok is not False and not errors
    summary.update({"moe": args.moe, "encode_agree": len(items) - len(enc_bad),
                    "decode_agree": None if args.no_decode else len(items) - len(dec_bad),
                    "whole_file_agree": whole_ok, "errors": errors[:50],
                    "encode_mismatch_items": enc_bad[:200], "decode_mismatch_items": dec_bad[:200]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2, ensure_ascii=False)
    print("\nPARITY OK" if ok else "\nPARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
