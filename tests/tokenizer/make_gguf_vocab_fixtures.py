#!/usr/bin/env python3
"""Vocab-only GGUF files for the tokenizer fixtures, for runtime/tokenizer/gguf_vocab.cpp.

For each fixture under tests/fixtures/tokenizers/ this writes

  <name>/vocab.gguf       the tokenizer metadata as llama.cpp's convert_hf_to_gguf.py writes it for
                          a model with that tokenizer (no tensors), with gguf.GGUFWriter;
  <name>/gguf_vocab.json  the same fields as JSON (the fields of moe::GgufVocab), so the C++ test
                          does not need the GGUF reader.

What the GGUF holds, per fixture (what convert_hf_to_gguf.py does for the real model):

  llama3_bytelevel         model "gpt2", pre "llama-bpe" (Meta-Llama-3), merges "a b", token types
                           1 normal / 3 control (special added tokens) / 4 user-defined
                           (<tool>, </tool>), bos <|begin_of_text|>, eos <|end_of_text|>,
                           add_bos_token true.
  qwen2_bytelevel_nfc      model "gpt2", pre "qwen2", merges, control <|endoftext|> <|im_start|>
                           <|im_end|>; bos = pad = <|endoftext|>, eos <|im_end|>, add_bos_token false
                           (as Qwen2 GGUFs: their bos id comes from config.json).
  sentencepiece_bpe,       model "llama", pre "default", tokens with scores and types 2 unknown
  sentencepiece_metaspace  (<unk>), 3 control (<s> </s>), 6 byte (<0x00>..<0xFF>), 1 normal; unk 0,
                           bos 1, eos 2, add_bos_token true, add_eos_token false, add_space_prefix
                           true; no merges (llama.cpp's SentencePiece path writes none).

Scores. A real Llama-2/Mixtral GGUF copies them from tokenizer.model: SentencePiece's BPE trainer
gives the i-th merged piece the score -i, and pieces that are single characters come last (lowest
scores); specials and byte pieces score 0. These fixtures were trained by `tokenizers`, so the
script makes the scores that way from the fixture's merges: a piece made by merge rank r scores
-r, the k-th single character -(n_merges + k). It checks that transformers' generate_merges on
those scores (how both transformers and our loader rebuild merges) encodes the whole corpus
exactly as the fixture's tokenizer.json does.

Differences a GGUF cannot avoid (the C++ test pins them):
  - llama3_bytelevel: <tool> (lstrip+rstrip) and </tool> (rstrip) become plain user-defined
    tokens: GGUF has no lstrip/rstrip, so lines where whitespace touches them differ.
  - sentencepiece_metaspace: a GGUF cannot tell Metaspace(prepend_scheme "first") from the legacy
    Prepend/Replace normalizer; the file is the same as sentencepiece_bpe's. Loaded as legacy (the
    default) it gives sentencepiece_bpe's ids; with SpmPrefixStyle::kFirst this fixture's.
  - Chat templates: the fixtures have none; the GGUFs get the real models' templates (Llama-3,
    ChatML, Mistral) so that carrying tokenizer.chat_template is tested.

    python3 tests/tokenizer/make_gguf_vocab_fixtures.py                 # write the files
    python3 tests/tokenizer/make_gguf_vocab_fixtures.py --cross-check   # also transformers' own GGUF
                                                                        # tokenizer vs expected.jsonl
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tokenizers"

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def load(name):
    d = ROOT / name
    tj = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
    return d, tj, cfg


def merges_of(tj):
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]


def id_table(tj):
    """tokens by id over model vocab + added tokens; added tokens' (special, content) by id."""
    vocab = dict(tj["model"]["vocab"])
    added = {t["id"]: t for t in tj["added_tokens"]}
    n = max(max(vocab.values()), max(added)) + 1
    by_id = [None] * n
    for t, i in vocab.items():
        by_id[i] = t
    for i, t in added.items():
        assert by_id[i] in (None, t["content"]), (i, by_id[i], t)
        by_id[i] = t["content"]
    for i in range(n):
        if by_id[i] is None:  # convert_hf_to_gguf fills holes with [PAD<i>], type unused
            by_id[i] = f"[PAD{i}]"
    return by_id, added


def looks_special(t):  # convert_hf_to_gguf.py does_token_look_special
    return t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (t.startswith("<|") and t.endswith("|>"))


def byte_level_vocab(name, pre, bos, eos, pad, add_bos, template):
    _, tj, _ = load(name)
    tokens, added = id_table(tj)
    types = []
    for i, t in enumerate(tokens):
        if i in added:
            types.append(CONTROL if added[i]["special"] or looks_special(t) else USER_DEFINED)
        else:
            types.append(NORMAL)
    ids = {t: i for i, t in enumerate(tokens)}
    return {
        "model": "gpt2",
        "pre": pre,
        "tokens": tokens,
        "scores": None,
        "token_type": types,
        "merges": [f"{a} {b}" for a, b in merges_of(tj)],
        "bos_token_id": ids[bos] if bos else None,
        "eos_token_id": ids[eos],
        "unknown_token_id": None,
        "padding_token_id": ids[pad] if pad else None,
        "add_bos_token": add_bos,
        "add_eos_token": None,
        "add_space_prefix": None,
        "chat_template": template,
    }


def spm_scores(tj, tokens):
    merges = merges_of(tj)
    rank = {}
    for r, (a, b) in enumerate(merges):
        rank.setdefault(a + b, r)
    scores, chars = [], 0
    for i, t in enumerate(tokens):
        if i < 3 or (t.startswith("<0x") and len(t) == 6):
            scores.append(0.0)
        elif t in rank:
            scores.append(-float(rank[t]))
        else:
            scores.append(-float(len(merges) + chars))
            chars += 1
    return scores


def spm_vocab(name):
    _, tj, cfg = load(name)
    tokens, added = id_table(tj)
    types = []
    for i, t in enumerate(tokens):
        if t == tj["model"]["unk_token"]:
            types.append(UNKNOWN)
        elif i in added:
            types.append(CONTROL)
        elif t.startswith("<0x") and len(t) == 6:
            types.append(BYTE)
        else:
            types.append(NORMAL)
    ids = {t: i for i, t in enumerate(tokens)}
    return {
        "model": "llama",
        "pre": "default",
        "tokens": tokens,
        "scores": spm_scores(tj, tokens),
        "token_type": types,
        "merges": None,
        "bos_token_id": ids[cfg["bos_token"]],
        "eos_token_id": ids[cfg["eos_token"]],
        "unknown_token_id": ids[tj["model"]["unk_token"]],
        "padding_token_id": None,
        "add_bos_token": bool(cfg.get("add_bos_token", True)),
        "add_eos_token": False,
        "add_space_prefix": True,
        "chat_template": MISTRAL_TEMPLATE,
    }


FIXTURES = {
    "llama3_bytelevel": lambda: byte_level_vocab(
        "llama3_bytelevel", "llama-bpe", "<|begin_of_text|>", "<|end_of_text|>", None, True, LLAMA3_TEMPLATE
    ),
    "qwen2_bytelevel_nfc": lambda: byte_level_vocab(
        "qwen2_bytelevel_nfc", "qwen2", "<|endoftext|>", "<|im_end|>", "<|endoftext|>", False, CHATML_TEMPLATE
    ),
    "sentencepiece_bpe": lambda: spm_vocab("sentencepiece_bpe"),
    "sentencepiece_metaspace": lambda: spm_vocab("sentencepiece_metaspace"),
}
ARCH = {"llama3_bytelevel": "llama", "qwen2_bytelevel_nfc": "qwen2", "sentencepiece_bpe": "llama",
        "sentencepiece_metaspace": "llama"}


def write_gguf(path, arch, v):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(path.parent.name)
    w.add_tokenizer_model(v["model"])
    w.add_tokenizer_pre(v["pre"])
    w.add_token_list(v["tokens"])
    if v["scores"] is not None:
        w.add_token_scores(v["scores"])
    w.add_token_types(v["token_type"])
    if v["merges"] is not None:
        w.add_token_merges(v["merges"])
    for key, add in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                     ("unknown_token_id", w.add_unk_token_id), ("padding_token_id", w.add_pad_token_id),
                     ("add_bos_token", w.add_add_bos_token), ("add_eos_token", w.add_add_eos_token),
                     ("add_space_prefix", w.add_add_space_prefix)):
        if v[key] is not None:
            add(v[key])
    if v["chat_template"]:
        w.add_chat_template(v["chat_template"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_back(path):
    """The GgufVocab fields of a GGUF, with gguf.GGUFReader (independent of the writer)."""
    r = gguf.GGUFReader(str(path))

    def field(key):
        f = r.fields.get(key)
        if f is None:
            return None
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [f.parts[i].tolist()[0] for i in f.data]
        if f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        return f.parts[f.data[0]].tolist()[0]

    k = "tokenizer.ggml."
    return {
        "model": field(k + "model"), "pre": field(k + "pre"), "tokens": field(k + "tokens"),
        "scores": field(k + "scores"), "token_type": field(k + "token_type"), "merges": field(k + "merges"),
        "bos_token_id": field(k + "bos_token_id"), "eos_token_id": field(k + "eos_token_id"),
        "unknown_token_id": field(k + "unknown_token_id"), "padding_token_id": field(k + "padding_token_id"),
        "add_bos_token": field(k + "add_bos_token"), "add_eos_token": field(k + "add_eos_token"),
        "add_space_prefix": field(k + "add_space_prefix"), "chat_template": field("tokenizer.chat_template"),
    }


def corpus():
    text = (ROOT / "corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(l)["text"] for l in text.split("\n") if l]


def expected(name):
    text = (ROOT / name / "expected.jsonl").read_text(encoding="utf-8")
    return [json.loads(l)["ids"] for l in text.split("\n") if l]


def check_scores(name, v, texts):
    """generate_merges on the synthesized scores reproduces the fixture's encodings exactly."""
    from tokenizers import Tokenizer
    from transformers.tokenization_utils_base import generate_merges

    _, tj, _ = load(name)
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    gm = generate_merges(vocab, dict(zip(v["tokens"], v["scores"])))
    tj = dict(tj, model=dict(tj["model"], merges=[list(m) for m in gm]))
    tok = Tokenizer.from_str(json.dumps(tj))
    bad = sum(tok.encode(t, add_special_tokens=False).ids != e for t, e in zip(texts, expected(name)))
    print(f"  merges rebuilt from scores: {len(gm)} (tokenizer.json has {len(merges_of(load(name)[1]))}); "
          f"corpus lines differing from expected.jsonl: {bad}")
    return bad == 0


def cross_check(name, path, texts):
    """transformers' own GGUF tokenizer loader against expected.jsonl (informational)."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / "vocab.gguf")
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file="vocab.gguf")
    want = expected(name)
    bad = [i for i, (t, e) in enumerate(zip(texts, want)) if tok.encode(t, add_special_tokens=False) != e]
    first = f"; first: line {bad[0] + 1} {texts[bad[0]][:60]!r}" if bad else ""
    print(f"  transformers GGUF tokenizer: {len(texts) - len(bad)}/{len(texts)} lines equal expected.jsonl{first}")
    return len(texts) - len(bad)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cross-check", action="store_true", help="also run transformers' GGUF tokenizer loader")
    args = ap.parse_args()
    texts = corpus()
    ok = True
    summary = {}
    for name, make in FIXTURES.items():
        v = make()
        d = ROOT / name
        path = d / "vocab.gguf"
        write_gguf(path, ARCH[name], v)
        back = read_back(path)
        for key, val in v.items():
            got = back[key]
            if key == "scores" and val is not None:
                got = [float(np.float32(x)) for x in got]
                val = [float(np.float32(x)) for x in val]
            if got != val and not (val is None and got is None):
                print(f"{name}: read back {key} differs", file=sys.stderr)
                ok = False
        (d / "gguf_vocab.json").write_text(json.dumps(v, ensure_ascii=False, separators=(",", ":")) + "\n",
                                           encoding="utf-8")
        size = path.stat().st_size
        print(f"{name}: vocab.gguf {size} bytes, gguf_vocab.json {(d / 'gguf_vocab.json').stat().st_size} bytes, "
              f"{len(v['tokens'])} tokens, model {v['model']}, pre {v['pre']}")
        if size > 3 * 1024 * 1024:
            print(f"  WARNING: {path} is over 3 MB")
        if v["model"] == "llama":
            ok &= check_scores(name, v, texts)
        if args.cross_check:
            summary[name] = cross_check(name, path, texts)
    if args.cross_check:
        print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
