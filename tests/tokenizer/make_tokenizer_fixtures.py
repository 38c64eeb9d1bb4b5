#!/usr/bin/env python3
"""Generates the tokenizer oracles under tests/fixtures/tokenizers/.

    python3 tests/tokenizer/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers] [--check]

Trains four small BPE tokenizers with the Hugging Face `tokenizers` library on local text,
rewrites each tokenizer.json into the exact shape of a real model's file (Llama-3, Qwen2,
Llama-2/Mixtral, Mistral-style Metaspace), verifies every file loads back and behaves, then
writes the expected encodings/decodings of the corpus (make_corpus.py) and the streaming
detokenizer cases. Deterministic: fixed seeds, sorted file lists, no timestamps; rerunning on
the same machine image reproduces every file bit for bit (`--check` regenerates into a
temporary directory and compares with the committed files).

See tests/tokenizer/README.md.
"""

from __future__ import annotations

import argparse
import collections
import filecmp
import glob
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import tokenizers  # noqa: E402
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,  # noqa: E402
                        pre_tokenizers, processors, trainers)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_corpus  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "tokenizers")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAIN_SEED = 1234
STREAM_SEED = 777
N_SPECIAL_LINES = 500
VOCAB_BYTELEVEL = 3000
VOCAB_SP = 3000
SP_ALPHABET = 400

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                   "<|end_header_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SP_SPECIALS = ["<unk>", "<s>", "</s>"]
SP_BYTES = [f"<0x{b:02X}>" for b in range(256)]


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Training text
# --------------------------------------------------------------------------------------------
def gather_training_text() -> tuple[list[str], dict]:
    """Returns (chunks, description). Chunks are <= 4 KiB pieces of local files plus the
    hand-written multilingual paragraphs (repeated so that their scripts get merges)."""
    chunks: list[str] = []
    sources = []

    def add_file(path: str, cap: int) -> int:
        try:
            with open(path, encoding="utf-8") as f:
                data = f.read(cap)
        except (UnicodeDecodeError, OSError):
            return 0
        for i in range(0, len(data), 4096):
            chunks.append(data[i:i + 4096])
        return len(data.encode("utf-8"))

    groups = [
        ("python stdlib *.py (first 24 KiB of each)",
         sorted(glob.glob(os.path.join(make_corpus.PY_LIB, "*.py"))), 24_000),
        ("/usr/share/common-licenses/*", sorted(glob.glob("/usr/share/common-licenses/*")), 200_000),
        ("/usr/share/doc/*/copyright (first 6 KiB of each)",
         sorted(glob.glob("/usr/share/doc/*/copyright")), 6_000),
        ("/usr/share/doc/**/README*, *.md (plain, first 16 KiB of each)",
         sorted(p for p in glob.glob("/usr/share/doc/**/*", recursive=True)
                if os.path.isfile(p) and not p.endswith(".gz")
                and (os.path.basename(p).startswith("README") or p.endswith(".md"))), 16_000),
    ]
    for name, paths, cap in groups:
        n_bytes = sum(add_file(p, cap) for p in paths)
        sources.append({"source": name, "files": len(paths), "bytes": n_bytes})
    ml_bytes = 0
    for _ in range(40):
        for lang in sorted(make_corpus.MULTILINGUAL):
            par = make_corpus.MULTILINGUAL[lang]
            chunks.append(par)
            ml_bytes += len(par.encode("utf-8"))
    sources.append({"source": "hand-written multilingual paragraphs in make_corpus.py x40",
                    "files": 0, "bytes": ml_bytes})
    h = hashlib.sha256()
    for c in chunks:
        h.update(c.encode("utf-8"))
        h.update(b"\0")
    desc = {"sources": sources, "chunks": len(chunks),
            "bytes": sum(len(c.encode("utf-8")) for c in chunks), "sha256": h.hexdigest()}
    return chunks, desc


# --------------------------------------------------------------------------------------------
# Fixture builders: train, then rewrite the JSON into the real model's shape.
# --------------------------------------------------------------------------------------------
def _added(id_, content, special=True, lstrip=False, rstrip=False, normalized=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def _train_bytelevel(chunks, pattern: str, nfc: bool) -> dict:
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_BYTELEVEL, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    tok.train_from_iterator(chunks, trainer=trainer)
    return json.loads(tok.to_str())


def build_llama3(chunks) -> dict:
    j = _train_bytelevel(chunks, LLAMA3_PATTERN, nfc=False)
    vocab = j["model"]["vocab"]
    n = len(vocab)
    added = [_added(n + i, s) for i, s in enumerate(LLAMA3_SPECIALS)]
    added.append(_added(n + len(added), "<tool>", special=False, lstrip=True, rstrip=True))
    added.append(_added(n + len(added), "</tool>", special=False, lstrip=False, rstrip=True))
    bos = LLAMA3_SPECIALS[0]
    j["added_tokens"] = added
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    # as in Meta-Llama-3 tokenizer.json: ByteLevel (offsets only) then the BOS template
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {bos: {"id": bos, "ids": [n], "tokens": [bos]}}}]}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["model"].update({"dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                       "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                       "ignore_merges": True})
    return j


def build_qwen2(chunks) -> dict:
    j = _train_bytelevel(chunks, QWEN2_PATTERN, nfc=True)
    n = len(j["model"]["vocab"])
    j["added_tokens"] = [_added(n + i, s) for i, s in enumerate(QWEN2_SPECIALS)]
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["model"].update({"dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                       "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                       "ignore_merges": False})
    return j


def _train_sp(chunks) -> dict:
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Train on whitespace-split, "▁"-prefixed words: merges never cross a word boundary, so
    # they apply unchanged to the whole "▁"-joined string at inference (no pre-tokenizer).
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    # The trainer's own limit_alphabet breaks count ties in hash order (not reproducible), so
    # choose the alphabet here: the SP_ALPHABET most frequent characters, ties by code point;
    # with limit_alphabet == len(initial_alphabet) exactly these are kept. Everything else
    # falls back to <0xNN> byte tokens.
    counts = collections.Counter()
    for c in chunks:
        counts.update(c.replace(" ", "▁"))
    alphabet = [ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], ord(kv[0])))][:SP_ALPHABET]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SP, min_frequency=2, show_progress=False,
                                  special_tokens=SP_SPECIALS + SP_BYTES, initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet))
    tok.train_from_iterator(chunks, trainer=trainer)
    return json.loads(tok.to_str())


def _sp_common(j: dict) -> dict:
    vocab = j["model"]["vocab"]
    for i, s in enumerate(SP_SPECIALS + SP_BYTES):
        assert vocab[s] == i, (s, vocab.get(s))
    j["added_tokens"] = [_added(i, s) for i, s in enumerate(SP_SPECIALS)]
    j["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    j["model"].update({"dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                       "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                       "ignore_merges": False})
    return j


SP_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def build_sp_bpe(sp_json: dict) -> dict:
    j = _sp_common(json.loads(json.dumps(sp_json)))
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    j["pre_tokenizer"] = None
    j["decoder"] = json.loads(json.dumps(SP_DECODER))
    return j


def build_sp_metaspace(sp_json: dict) -> dict:
    j = _sp_common(json.loads(json.dumps(sp_json)))
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    # Real Metaspace-era files (transformers LlamaConverter, legacy=False: Mistral-7B-v0.3,
    # Mixtral-8x22B) keep the Replace/ByteFallback/Fuse/Strip decoder; a Metaspace decoder would
    # not fuse <0xNN> byte tokens and decodes them as the literal text "<0xE4>".
    j["decoder"] = json.loads(json.dumps(SP_DECODER))
    return j


def merges_to_strings(j: dict) -> dict:
    j = json.loads(json.dumps(j))
    out = []
    for a, b in j["model"]["merges"]:
        assert " " not in a and " " not in b, (a, b)
        out.append(f"{a} {b}")
    j["model"]["merges"] = out
    return j


def ordered(j: dict) -> dict:
    """Key order of a tokenizers-written file (version, truncation, padding, added_tokens, ...)."""
    keys = ["version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
            "post_processor", "decoder", "model"]
    out = {k: j.get(k) for k in keys}
    mkeys = ["type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
             "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"]
    out["model"] = {k: j["model"][k] for k in mkeys}
    return out


FIXTURES = [
    # name, family, merges form, tokenizer_config
    ("llama3_bytelevel", "byte-level BPE (Llama-3)", "pairs",
     {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "add_bos_token": True,
      "model_max_length": 131072}),
    ("qwen2_bytelevel_nfc", "byte-level BPE + NFC (Qwen2)", "strings",
     {"bos_token": None, "eos_token": "<|im_end|>", "add_bos_token": False, "model_max_length": 32768}),
    ("sentencepiece_bpe", "SentencePiece BPE, Prepend/Replace normalizer (Llama-2/Mixtral)", "strings",
     {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "model_max_length": 32768}),
    ("sentencepiece_metaspace", "SentencePiece BPE, Metaspace pre-tokenizer (Mistral-style)", "pairs",
     {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "model_max_length": 32768}),
]


# --------------------------------------------------------------------------------------------
# Streaming detokenizer oracle
# --------------------------------------------------------------------------------------------
def stream_pieces(tok: Tokenizer, ids: list[int]) -> list[str]:
    """Prefix/read-offset incremental decoding (text-generation-inference). One entry per
    generated token (\"\" when nothing may be emitted yet)."""
    pieces = []
    prefix = read = 0
    for i in range(1, len(ids) + 1):
        cur = ids[:i]
        old = tok.decode(cur[prefix:read], skip_special_tokens=False)
        new = tok.decode(cur[prefix:], skip_special_tokens=False)
        if len(new) > len(old) and not new.endswith("\ufffd"):
            pieces.append(new[len(old):])
            prefix, read = read, len(cur)
        else:
            pieces.append("")
    return pieces


def splits_multibyte(tok: Tokenizer, ids: list[int], family: str) -> bool:
    """True when some token carries an incomplete UTF-8 sequence (a character split across
    tokens)."""
    for i in ids:
        t = tok.id_to_token(i)
        if family == "sp":
            if t.startswith("<0x") and int(t[3:5], 16) >= 0x80:
                return True
        else:
            d = tok.decode([i])
            if "\ufffd" in d:
                return True
    return False


def make_streaming(toks: dict, texts: list[str]) -> tuple[list[dict], dict]:
    rng = random.Random(STREAM_SEED)
    per_fixture = 75
    cases, stats = [], {}
    cand_idx = [i for i, t in enumerate(texts) if t and "\ufffd" not in t and len(t) <= 120]
    for name, (tok, family) in toks.items():
        pool = []
        for i in cand_idx:
            ids = tok.encode(texts[i], add_special_tokens=False).ids
            if 2 <= len(ids) <= 64 and splits_multibyte(tok, ids, family):
                pool.append(i)
        rng.shuffle(pool)
        taken = rejected = 0
        for i in pool:
            if taken == per_fixture:
                break
            ids = tok.encode(texts[i], add_special_tokens=False).ids
            pieces = stream_pieces(tok, ids)
            if "".join(pieces) != tok.decode(ids, skip_special_tokens=False):
                rejected += 1
                continue
            cases.append({"fixture": name, "ids": ids, "pieces": pieces})
            taken += 1
        stats[name] = {"candidates": len(pool), "taken": taken, "rejected_join_mismatch": rejected}
    return cases, stats


# --------------------------------------------------------------------------------------------
def generate(out: str) -> dict:
    os.makedirs(out, exist_ok=True)
    chunks, train_desc = gather_training_text()
    print(f"training text: {train_desc['bytes']} bytes in {train_desc['chunks']} chunks", flush=True)

    items = make_corpus.write_corpus(os.path.join(out, "corpus.jsonl"))
    texts = [t for _, t in items]
    cats = [c for c, _ in items]
    cat_names = sorted(set(cats))
    with open(os.path.join(out, "corpus_categories.json"), "w", encoding="utf-8") as f:
        f.write(dumps({"names": cat_names, "line_category": [cat_names.index(c) for c in cats]}) + "\n")

    sp_json = _train_sp(chunks)
    built = {
        "llama3_bytelevel": build_llama3(chunks),
        "qwen2_bytelevel_nfc": build_qwen2(chunks),
        "sentencepiece_bpe": build_sp_bpe(sp_json),
        "sentencepiece_metaspace": build_sp_metaspace(sp_json),
    }
    manifest = {"generator": "tests/tokenizer/make_tokenizer_fixtures.py",
                "tokenizers_version": tokenizers.__version__,
                "corpus": {"file": "corpus.jsonl", "lines": len(texts), "seed": make_corpus.CORPUS_SEED,
                           "categories": {c: cats.count(c) for c in cat_names}},
                "training_text": train_desc, "fixtures": {}}
    toks = {}
    for name, family, form, cfg in FIXTURES:
        j = ordered(built[name])
        if form == "strings":
            pair_tok = Tokenizer.from_str(json.dumps(j))
            j = merges_to_strings(j)
        text = json.dumps(j, ensure_ascii=False, indent=2) + "\n"
        tok = Tokenizer.from_str(text)
        if form == "strings":
            # the "a b" form must load to the very same tokenizer
            for t in texts:
                assert tok.encode(t, add_special_tokens=False).ids == \
                    pair_tok.encode(t, add_special_tokens=False).ids, t
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n")
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        sanity_check(name, tok)
        n_tokens = 0
        with open(os.path.join(d, "expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for t in texts:
                ids = tok.encode(t, add_special_tokens=False).ids
                n_tokens += len(ids)
                f.write(dumps({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}) + "\n")
        with open(os.path.join(d, "expected_special.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for t in texts[:N_SPECIAL_LINES]:
                ids = tok.encode(t, add_special_tokens=True).ids
                f.write(dumps({"ids": ids, "decoded_skip": tok.decode(ids, skip_special_tokens=True)}) + "\n")
        n_roundtrip = sum(1 for t in texts if tok.decode(tok.encode(t, add_special_tokens=False).ids,
                                                         skip_special_tokens=False) == t)
        manifest["fixtures"][name] = {
            "family": family, "merges_form": form,
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "model_vocab": len(j["model"]["vocab"]), "merges": len(j["model"]["merges"]),
            "added_tokens": [a["content"] for a in j["added_tokens"]],
            "corpus_tokens": n_tokens, "lines_decoding_back_exactly": n_roundtrip,
            "tokenizer_config": cfg}
        toks[name] = (tok, "sp" if name.startswith("sentencepiece") else "bl")
        print(f"{name}: vocab {manifest['fixtures'][name]['vocab_size']}, {n_tokens} corpus tokens, "
              f"{n_roundtrip}/{len(texts)} lines decode back exactly", flush=True)

    cases, sstats = make_streaming(toks, texts)
    with open(os.path.join(out, "streaming.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for c in cases:
            f.write(dumps(c) + "\n")
    manifest["streaming"] = {"file": "streaming.jsonl", "cases": len(cases), "per_fixture": sstats,
                             "seed": STREAM_SEED}
    files = {}
    for p in sorted(glob.glob(os.path.join(out, "**", "*"), recursive=True)):
        if os.path.isfile(p) and not p.endswith("manifest.json"):
            with open(p, "rb") as f:
                files[os.path.relpath(p, out)] = {"bytes": os.path.getsize(p),
                                                  "sha256": hashlib.sha256(f.read()).hexdigest()}
    manifest["files"] = files
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest


def sanity_check(name: str, tok: Tokenizer) -> None:
    """The rewritten files must load and produce sensible tokens."""
    enc = tok.encode("Hello world, the model is here.", add_special_tokens=False)
    assert len(enc.ids) <= 14, (name, enc.tokens)
    assert tok.decode(enc.ids) == "Hello world, the model is here.", (name, tok.decode(enc.ids))
    if name.startswith("sentencepiece"):
        assert enc.tokens[0].startswith("▁"), (name, enc.tokens)
        assert tok.encode("x", add_special_tokens=True).ids[0] == 1
        ids = tok.encode("\U0010FFFF", add_special_tokens=False).ids
        toks_ = [tok.id_to_token(i) for i in ids]
        assert toks_[-4:] == ["<0xF4>", "<0x8F>", "<0xBF>", "<0xBF>"], (name, toks_)
    else:
        assert tok.get_vocab_size(with_added_tokens=False) >= 256
        vocab = tok.get_vocab(with_added_tokens=False)
        for ch in pre_tokenizers.ByteLevel.alphabet():
            assert ch in vocab, (name, ch)
        assert "Ġthe" in enc.tokens, (name, enc.tokens)
    if name == "qwen2_bytelevel_nfc":
        assert tok.encode("cafe\u0301").ids == tok.encode("caf\u00e9").ids
        assert len(tok.encode("12345").ids) == 5
    if name == "llama3_bytelevel":
        assert tok.encode("x", add_special_tokens=True).tokens[0] == "<|begin_of_text|>"
        assert [w for w, _ in tok.pre_tokenizer.pre_tokenize_str("12345")] == ["123", "45"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary directory and compare with --out")
    args = ap.parse_args()
    if not args.check:
        m = generate(args.out)
        total = sum(v["bytes"] for v in m["files"].values())
        print(f"wrote {len(m['files']) + 1} files, {total / 1e6:.2f} MB (+ manifest) under {args.out}")
        return 0
    tmp = tempfile.mkdtemp(prefix="tokfix-")
    try:
        generate(tmp)
        cmp = filecmp.dircmp(args.out, tmp)
        bad = []

        def walk(c, pre=""):
            # vocab.gguf / gguf_vocab.json: written by make_gguf_vocab_fixtures.py from these files
            bad.extend(pre + x for x in c.diff_files + c.left_only + c.right_only
                       if x not in ("vocab.gguf", "gguf_vocab.json"))
            for sub, sc in c.subdirs.items():
                walk(sc, pre + sub + "/")
        walk(cmp)
        # dircmp compares shallowly by stat; compare contents for real
        for p in sorted(glob.glob(os.path.join(tmp, "**", "*"), recursive=True)):
            if os.path.isfile(p):
                q = os.path.join(args.out, os.path.relpath(p, tmp))
                if os.path.isfile(q) and not filecmp.cmp(p, q, shallow=False):
                    bad.append(os.path.relpath(p, tmp))
        bad = sorted(set(bad))
        print("identical" if not bad else "DIFFERENT: " + ", ".join(bad))
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
