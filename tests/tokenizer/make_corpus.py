#!/usr/bin/env python3
"""Builds the tokenizer test corpus (tests/fixtures/tokenizers/corpus.jsonl).

Deterministic: every random choice comes from random.Random(CORPUS_SEED); file lists are
sorted; nothing depends on hash order or the clock. Part of the corpus is drawn from local
files of this machine image (Python 3.11.7 stdlib sources, /usr/share/common-licenses), so the
text is reproduced bit for bit on the same image; the committed corpus.jsonl is the reference
either way (C++ tests read the committed file, never this script).

Used by make_tokenizer_fixtures.py (which also imports MULTILINGUAL for the training text).
Run on its own to print the category counts:  python3 tests/tokenizer/make_corpus.py
"""

from __future__ import annotations

import glob
import json
import os
import random
import unicodedata

CORPUS_SEED = 20240601
PY_LIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
LICENSES = "/usr/share/common-licenses"

# --------------------------------------------------------------------------------------------
# Hand-written multilingual paragraphs (also part of the training text).
# --------------------------------------------------------------------------------------------
MULTILINGUAL = {
    "en": "The quick brown fox jumps over the lazy dog. Tokenizers split text into pieces "
          "that a model can read. We've tested it, and it's fine; they'll see. "
          "Mixture-of-experts models route every token to a few experts. "
          "The weather in early spring is cold, but the days are getting longer.",
    "de": "Der schnelle braune Fuchs springt über den faulen Hund. Größere Modelle brauchen "
          "mehr Speicher, aber nicht unbedingt mehr Rechenzeit. Die Straße war nass, und "
          "die Bäume trugen noch kein Laub. Übung macht den Meister. Wir müssen heute früh "
          "aufstehen, weil der Zug um sechs Uhr fährt.",
    "fr": "Le renard brun rapide saute par-dessus le chien paresseux. L'été dernier, nous "
          "sommes allés à la mer avec nos grands-parents. C'est une idée intéressante, "
          "n'est-ce pas ? Les élèves étudient le français à l'école depuis l'âge de six ans. "
          "Où est la bibliothèque ? Ça dépend du réseau.",
    "es": "El rápido zorro marrón salta sobre el perro perezoso. ¿Dónde está la estación de "
          "tren? ¡Qué día tan bonito! Mañana vamos a comer paella con mis niños. "
          "La educación pública es importante para el desarrollo del país. "
          "El pingüino camina sobre el hielo.",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица "
          "России. Мы изучаем машинное обучение и большие языковые модели. Вчера шёл "
          "сильный дождь, поэтому мы остались дома. Каждый токен направляется к двум "
          "экспертам из восьми.",
    "el": "Η γρήγορη καφέ αλεπού πηδάει πάνω από το τεμπέλικο σκυλί. Η Αθήνα είναι η "
          "πρωτεύουσα της Ελλάδας. Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Το μοντέλο "
          "διαβάζει κείμενο και γράφει απαντήσεις. Καλημέρα σε όλους!",
    "zh": "敏捷的棕色狐狸跳过了懒狗。今天天气很好，我们去公园散步吧。机器学习是人工智能的一个分支。"
          "混合专家模型把每个词元路由到少数几个专家。北京是中华人民共和国的首都。"
          "我喜欢喝茶，也喜欢看书。",
    "ja": "素早い茶色の狐がのろまな犬を飛び越える。今日はとても良い天気ですね。"
          "東京は日本の首都です。私は毎朝コーヒーを飲みます。"
          "トークナイザーはテキストを小さな単位に分割します。ひらがなとカタカナと漢字を使います。",
    "ko": "빠른 갈색 여우가 게으른 개를 뛰어넘는다. 오늘은 날씨가 정말 좋네요. "
          "서울은 대한민국의 수도입니다. 저는 매일 아침 커피를 마십니다. "
          "한국어는 한글로 씁니다. 감사합니다!",
    "ar": "الثعلب البني السريع يقفز فوق الكلب الكسول. اللغة العربية جميلة جداً. "
          "القاهرة هي عاصمة مصر. نحن ندرس التعلم الآلي والنماذج اللغوية الكبيرة. "
          "شكراً جزيلاً لكم.",
    "he": "השועל החום המהיר קופץ מעל הכלב העצלן. ירושלים היא עיר עתיקה. "
          "אנחנו לומדים למידת מכונה. תודה רבה לכולם! מה שלומך היום?",
    "hi": "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है। भारत एक विशाल देश है। "
          "मुझे हिंदी में किताबें पढ़ना पसंद है। आज मौसम बहुत अच्छा है। नमस्ते, आप कैसे हैं?",
    "th": "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย "
          "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ขอบคุณมากครับ วันนี้อากาศดีมาก",
    "vi": "Con cáo nâu nhanh nhẹn nhảy qua con chó lười. Hà Nội là thủ đô của Việt Nam. "
          "Tiếng Việt có nhiều dấu thanh. Chúng tôi đang học máy học và mô hình ngôn ngữ lớn. "
          "Cảm ơn bạn rất nhiều!",
    "tr": "Hızlı kahverengi tilki tembel köpeğin üzerinden atlar. İstanbul, Türkiye'nin en "
          "büyük şehridir. Çocuklar bahçede oynuyorlar. Işık ılık süt içti. "
          "Öğretmenimiz bugün ödev vermedi. Teşekkür ederim!",
    "pl": "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig. Warszawa jest stolicą Polski.",
    "uk": "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів! Київ — столиця України.",
    "pt": "Luís argüia à Júlia que «brações, fé, chá, óxido, pôr, zângão» eram palavras do português. "
          "São Paulo é a maior cidade do Brasil.",
    "emoji": "I love pizza 🍕 and sushi 🍣! Family: 👩‍👩‍👧‍👦 Pride: 🏳️‍🌈 Thumbs up 👍🏽👍🏿 "
             "Flags 🇩🇪🇫🇷🇯🇵🇺🇸 Keycap 1️⃣ #️⃣ Hearts ❤️💙💚 Rocket 🚀 Party 🎉🥳",
}


def _sentences(par: str) -> list[str]:
    out, cur = [], ""
    for ch in par:
        cur += ch
        if ch in ".!?。！？।" or (ch == " " and cur.rstrip().endswith((".", "!", "?"))):
            if cur.strip():
                out.append(cur.strip())
            cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def _words(par: str) -> list[str]:
    words = []
    for w in par.replace("。", " ").replace("、", " ").replace("，", " ").split():
        w = w.strip(".,!?;:¿¡«»—")
        if w:
            words.append(w)
    # CJK / Thai have no spaces: also take 1-4 character windows
    return words


def _cjk_chunks(par: str, rng: random.Random, n: int) -> list[str]:
    text = par.replace(" ", "")
    out = []
    for _ in range(n):
        i = rng.randrange(len(text))
        out.append(text[i:i + rng.randint(1, 4)])
    return out


# --------------------------------------------------------------------------------------------
# Pieces for the synthetic categories.
# --------------------------------------------------------------------------------------------
EMOJI_BASIC = ["😀", "😂", "🥲", "😍", "🤔", "🙃", "😴", "🤖", "👻", "💩", "🔥", "✨", "🎉", "🍕",
               "🍣", "🚀", "🌍", "🌈", "⭐", "☕", "⚡", "❄️", "☀️", "✅", "❌", "⚠️", "♻️", "™️",
               "©️", "🀄", "🃏", "🧠", "🦀", "🐍", "🫠", "🫶", "🪐", "🧬"]
EMOJI_ZWJ = ["👩‍👩‍👧‍👦", "👨‍👩‍👧", "🏳️‍🌈", "🏳️‍⚧️", "👨‍💻", "👩🏽‍🚀", "🧑‍🤝‍🧑", "👁️‍🗨️",
             "🐻‍❄️", "❤️‍🔥", "🧑🏿‍🦰", "👨‍❤️‍💋‍👨", "🐕‍🦺", "😶‍🌫️", "🏴‍☠️"]
SKIN_TONES = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
TONE_BASES = ["👍", "👋", "✋", "🙏", "💪", "🤝", "👶", "🧒", "👩", "🧑‍🎓"]
FLAGS = ["🇩🇪", "🇫🇷", "🇯🇵", "🇺🇸", "🇬🇧", "🇨🇳", "🇰🇷", "🇮🇳", "🇧🇷", "🇺🇦", "🇪🇺", "🇺🇳",
         "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"]
KEYCAPS = [c + "\uFE0F\u20E3" for c in "0123456789#*"] + ["1\u20E3"]

COMBINING = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030A", "\u030C", "\u0327",
             "\u0328", "\u0323", "\u0331", "\u0336", "\u20DD", "\u0489", "\u05B0", "\u0651",
             "\u093C", "\u0E31", "\u3099"]
NFC_WORDS = ["café", "résumé", "naïve", "Ångström", "Straße", "Müller", "señor", "façade",
             "crème brûlée", "Tiếng Việt", "Hà Nội", "phở", "Dvořák", "Łódź", "İstanbul",
             "한국어", "가나다라", "ガギグゲゴ", "パピプペポ", "Ελληνικά", "ἀρχή", "Ölçü",
             "Zürich", "São Paulo", "cœur", "Ærø", "ñandú", "über", "ﬁne", "Å", "Ω", "Ǆ"]

UNICODE_SPACES = ["\u00A0", "\u1680", "\u2000", "\u2002", "\u2003", "\u2007", "\u2009",
                  "\u200A", "\u202F", "\u205F", "\u3000", "\u0085", "\u2028", "\u2029",
                  "\u000B", "\u000C"]

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>",
            "<unk>", "<tool>", "</tool>"]
PARTIAL_SPECIALS = ["<|im_", "<|begin_of_text|", "<|begin_of_text", "|>", "<|", "<|eot_id",
                    "<|end_header_id", "im_end|>", "<s", "</s", "s>", "<unk", "<tool",
                    "tool>", "<|endoftext", "<|IM_END|>", "<S>", "< s >", "<<s>>",
                    "<|im_end|", "<0x41>", "<0xE4>", "▁", "Ġ", "Ċ"]

CONTRACTION_SENTS = ["I'm here", "I'M HERE", "we've done it", "we'Ve done it", "WE'VE",
                     "they're", "THEY'RE", "They'Re", "it's", "IT'S", "It'S", "you'll",
                     "YOU'LL", "you'LL", "he'd", "HE'D", "don't", "DON'T", "Don'T", "can't",
                     "she's", "SHE'S", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d",
                     "''", "'''", "'", "rock 'n' roll", "o'clock", "O'Neill", "l'été",
                     "Türkiye'nin", "I\u2019m", "don\u2019t", "'sup", "'tis", "y'all",
                     "ma'am", "the '90s", "'M'", "x'LL", "ab'DC", "it 's", "it' s"]

CODE_SNIPPETS = {
    "c": ['#include <stdio.h>\nint main(void) {\n    printf("Hello, %s!\\n", "world");\n    return 0;\n}',
          "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
          "for (size_t i = 0; i < n; ++i) { y[i] += a * x[i]; }",
          "#define MAX(a, b) ((a) > (b) ? (a) : (b))"],
    "cpp": ["template <typename T>\nstd::vector<T> topk(const std::vector<T>& v, size_t k);",
            "auto it = std::find_if(xs.begin(), xs.end(), [&](const auto& x) { return x->id == id; });",
            "namespace moe::cpu {\nvoid gemv(const float* __restrict a, float* y) noexcept;\n}  // namespace moe::cpu",
            "std::unique_ptr<Backend> b = std::make_unique<CpuBackend>(/*threads=*/8);"],
    "rust": ["fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
             "impl<'a> Iterator for Tokens<'a> { type Item = &'a str; }",
             "match self { Self::Some(x) => x?, _ => return Err(anyhow!(\"bad\")) }",
             "#[derive(Debug, Clone, PartialEq)]\npub struct Merge { pub rank: u32 }"],
    "go": ["func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\tw.WriteHeader(200)\n}",
           "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}",
           "ch := make(chan int, 16)\ngo func() { ch <- 42 }()"],
    "js": ["const add = (a, b) => a + b;\nconsole.log(`sum=${add(1, 2)}`);",
           "export default async function handler(req, res) { res.status(200).json({ ok: true }); }",
           "document.querySelectorAll('div.item > a[href^=\"https\"]').forEach(el => el.remove());"],
    "sql": ["SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;",
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y') ON CONFLICT DO NOTHING;"],
    "shell": ["#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do wc -l \"$f\"; done",
              "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build -j$(nproc)",
              "grep -rn 'TODO' src/ | awk -F: '{print $1}' | sort | uniq -c | sort -rn | head"],
    "html": ["<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test</title></head>\n<body><p class=\"x\">Hi &amp; bye</p></body>\n</html>",
             "<a href=\"https://example.com/?q=1&amp;r=2\">link</a>"],
    "latex": ["\\begin{equation}\n  E = mc^2 \\quad \\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}"],
    "yaml": ["name: ci\non:\n  push:\n    branches: [main]\njobs:\n  build:\n    runs-on: ubuntu-latest"],
}

ODD_CODEPOINTS = ["\U00020000", "\U0002A6D6", "\U0002B740", "\U00030000", "𠜎", "𠮷", "𪚥", "龘",
                  "𝔸𝔹ℂ", "∀x∈ℝ: x²≥0", "∑_{i=1}^{n} i = n(n+1)/2", "∮∇×𝐁·d𝐒", "⊕⊗⊥⊢⊨", "ℵ₀ < 2^ℵ₀",
                  "\uE000", "\uF8FF", "\U000F0000", "\U0010FFFD", "\U0010FFFF", "\uFFFE", "\uFFFF",
                  "\uFDD0", "\uFEFF", "\u200B", "\u200C", "\u200D", "\u200E", "\u200F", "\u202E",
                  "\u2066", "\u00AD", "\u0080", "\u0085", "\u009F", "\u034F", "\u115F", "\u3164",
                  "\uFFFD", "\uFFFC", "\U0001D11E", "\U0001F9FF", "\U000E0001", "\U000E0020",
                  "\u0000", "\u001B[31mred\u001B[0m", "ꙮ", "𓀀𓂀", "🜁🜂", "\u2E3B", "﷽", "ǅ", "ﬃ",
                  "Ⅻ", "①②③", "㍻", "㈱", "ｱｲｳ", "ＡＢＣ１２３", "𐍈", "𒀀", "ᚠᚢᚦ"]

RANDOM_BLOCKS = [(0x0020, 0x007E), (0x00A0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF),
                 (0x0590, 0x05FF), (0x0600, 0x06FF), (0x0900, 0x097F), (0x0E00, 0x0E7F),
                 (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x22FF), (0x2500, 0x257F),
                 (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF),
                 (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x10000, 0x1007F), (0x20000, 0x2A6DF),
                 (0xF0000, 0xFFFFD), (0x0300, 0x036F)]

WORDS_EN = ["model", "token", "expert", "router", "layer", "weight", "matrix", "vector", "cache",
            "prefill", "decode", "batch", "kernel", "tensor", "shard", "index", "value", "key",
            "query", "attention", "the", "a", "of", "and", "to", "in", "is", "for", "on", "with"]
TLDS = ["com", "org", "net", "io", "de", "co.uk", "ai", "dev", "рф", "中国", "jp"]


def _rand_word(rng: random.Random) -> str:
    return rng.choice(WORDS_EN)


def _rand_url(rng: random.Random) -> str:
    host = rng.choice(["example", "huggingface", "github", "docs.python", "en.wikipedia",
                       "my-site", "bücher", "пример", "localhost"])
    if host == "localhost":
        base = f"http://localhost:{rng.randint(1, 65535)}"
    else:
        base = f"{rng.choice(['http', 'https', 'ftp'])}://{'www.' if rng.random() < 0.3 else ''}{host}.{rng.choice(TLDS)}"
    path = "/".join(rng.choice(WORDS_EN + ["v1", "api", "blob", "main", "wiki", "Ünïcode", "%E4%B8%AD"])
                    for _ in range(rng.randint(0, 4)))
    url = base + ("/" + path if path else "")
    if rng.random() < 0.4:
        url += "?" + "&".join(f"{_rand_word(rng)}={rng.randint(0, 9999)}" for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.2:
        url += "#" + _rand_word(rng)
    return url


def _rand_email(rng: random.Random) -> str:
    user = rng.choice(["john.doe", "a", "first+tag", "X_Y-Z", "müller", "user123", "o'neil"])
    return f"{user}@{rng.choice(['example', 'mail', 'uni-bonn', 'test'])}.{rng.choice(TLDS)}"


def _rand_number(rng: random.Random) -> str:
    k = rng.randrange(12)
    if k == 0:
        return str(rng.randint(0, 9))
    if k == 1:
        return str(rng.randint(0, 10 ** rng.randint(1, 40)))
    if k == 2:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if k == 3:
        return f"{rng.randint(1, 10**9):,}"
    if k == 4:
        return f"{rng.random():.3e}"
    if k == 5:
        return f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if k == 6:
        return f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"
    if k == 7:
        return "0x" + "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.randint(1, 16)))
    if k == 8:
        return f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    if k == 9:
        return _rand_word(rng) + str(rng.randint(0, 99999)) + _rand_word(rng)
    if k == 10:
        return rng.choice(["٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "１２３４５", "½ ¾ ⅓", "²³¹", "ⅠⅡⅢ", "๑๒๓"])
    return "9" * rng.randint(1, 64)


def _rand_unicode(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        lo, hi = rng.choice(RANDOM_BLOCKS)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def _rand_json(rng: random.Random, depth: int = 0):
    k = rng.randrange(7 if depth < 3 else 4)
    if k == 0:
        return rng.randint(-10 ** 6, 10 ** 6)
    if k == 1:
        return rng.choice([True, False, None, 3.14, -0.5, 1e-7])
    if k in (2, 3):
        return rng.choice(WORDS_EN + ["héllo", "日本語", "🙂", "a\"b", "tab\there", "line\nbreak", ""])
    if k == 4:
        return [_rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(WORDS_EN + ["id", "név", "名前"]): _rand_json(rng, depth + 1)
            for _ in range(rng.randint(1, 4))}


def _read_lines_from(paths: list[str], cap_per_file: int) -> list[str]:
    lines = []
    for p in paths:
        try:
            with open(p, encoding="utf-8") as f:
                data = f.read(cap_per_file)
        except (UnicodeDecodeError, OSError):
            continue
        lines.extend(data.split("\n"))
    return lines


def build_corpus() -> list[tuple[str, str]]:
    """Returns [(category, text)] in final (shuffled) order."""
    rng = random.Random(CORPUS_SEED)
    items: list[tuple[str, str]] = []

    def add(cat: str, text: str) -> None:
        items.append((cat, text))

    # 1. empty string and every ASCII code point on its own
    add("empty", "")
    for c in range(128):
        add("ascii_char", chr(c))

    # 2. multilingual sentences, mixtures, single words
    langs = sorted(MULTILINGUAL)
    all_sents = {l: _sentences(MULTILINGUAL[l]) for l in langs}
    all_words = {l: _words(MULTILINGUAL[l]) for l in langs}
    for l in langs:
        for s in all_sents[l]:
            add("multilingual_sentence", s)
            add("multilingual_sentence", " " + s)
    for _ in range(1100):
        parts = []
        for _ in range(rng.randint(1, 3)):
            l = rng.choice(langs)
            parts.append(rng.choice(all_sents[l]))
        add("multilingual_mix", rng.choice([" ", "", "\n", " \n"]).join(parts))
    for _ in range(700):
        l = rng.choice(langs)
        if l in ("zh", "ja", "th") and rng.random() < 0.6:
            add("multilingual_word", _cjk_chunks(MULTILINGUAL[l], rng, 1)[0])
        else:
            w = rng.choice(all_words[l])
            add("multilingual_word", rng.choice([w, " " + w, w.upper(), w.lower(), w.capitalize()]))

    # 3. English prose and code lines from local files
    lic = sorted(glob.glob(os.path.join(LICENSES, "*")))
    lic_lines = [l for l in _read_lines_from(lic, 200_000) if l.strip()]
    for _ in range(1200):
        add("prose_license", rng.choice(lic_lines))
    py_files = sorted(glob.glob(os.path.join(PY_LIB, "*.py")))
    py_lines = [l for l in _read_lines_from(py_files, 50_000) if l.strip()]
    for _ in range(1000):
        add("code_python_line", rng.choice(py_lines))
    for _ in range(250):
        i = rng.randrange(len(py_lines) - 12)
        add("code_python_block", "\n".join(py_lines[i:i + rng.randint(2, 10)]))
    for lang in sorted(CODE_SNIPPETS):
        for s in CODE_SNIPPETS[lang]:
            add("code_other", s)
            add("code_other", s.replace("\n", "\r\n"))
            add("code_other", s.replace("    ", "\t"))
    for _ in range(300):
        lang = rng.choice(sorted(CODE_SNIPPETS))
        s = rng.choice(CODE_SNIPPETS[lang])
        for w in ("x", "v", "a", "n", "i"):
            if rng.random() < 0.3:
                s = s.replace(f" {w} ", f" {_rand_word(rng)}_{rng.randint(0, 99)} ")
        add("code_other", s)

    # 4. URLs, emails, JSON, Markdown
    for _ in range(300):
        add("url", _rand_url(rng))
    for _ in range(100):
        add("email", _rand_email(rng))
    for _ in range(150):
        add("url", f"See {_rand_url(rng)} or write to <{_rand_email(rng)}>.")
    for _ in range(300):
        obj = _rand_json(rng)
        mode = rng.randrange(3)
        if mode == 0:
            add("json", json.dumps(obj, ensure_ascii=False))
        elif mode == 1:
            add("json", json.dumps(obj, ensure_ascii=True, separators=(",", ":")))
        else:
            add("json", json.dumps(obj, ensure_ascii=False, indent=rng.choice([2, 4, "\t"])))
    md_templates = ["# {w}\n\nSome **bold** and _italic_ text with `code`.",
                    "## {w} {n}\n- item one\n- item two\n  - nested {w}\n1. first\n2. second",
                    "| {w} | value |\n|---|---:|\n| a | {n} |\n| b | {n} |",
                    "```python\nprint({n})\n```",
                    "> quoted {w}\n> second line\n\n---\n",
                    "[{w}]({u}) ![img]({u}) <{u}>",
                    "* [ ] todo {w}\n* [x] done {n}",
                    "Term\n: definition of {w}\n\n~~strike~~ ==mark== H~2~O x^2^",
                    "<details><summary>{w}</summary>\n\n{n}\n</details>"]
    for _ in range(250):
        t = rng.choice(md_templates)
        add("markdown", t.format(w=_rand_word(rng), n=_rand_number(rng), u=_rand_url(rng)))

    # 5. numbers
    for _ in range(600):
        n = _rand_number(rng)
        add("number", rng.choice([n, f"{n} {_rand_word(rng)}", f"x{n}y", f"({n})", f"{n}%",
                                  f"Total: {n} items", f"{n}{n}", f"{n}.{n}"]))

    # 6. whitespace
    ws_atoms = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\t\t", "\r\r\n", "\n\r"]
    for _ in range(500):
        k = rng.randrange(7)
        w = _rand_word(rng)
        if k == 0:
            add("whitespace", " " * rng.randint(1, 80))
        elif k == 1:
            add("whitespace", " " * rng.randint(1, 20) + w + " " * rng.randint(1, 20))
        elif k == 2:
            add("whitespace", "".join(rng.choice(ws_atoms) for _ in range(rng.randint(1, 12))))
        elif k == 3:
            add("whitespace", rng.choice(ws_atoms).join(_rand_word(rng) for _ in range(rng.randint(2, 6))))
        elif k == 4:
            add("whitespace", w + rng.choice(UNICODE_SPACES) + _rand_word(rng) + rng.choice(UNICODE_SPACES))
        elif k == 5:
            add("whitespace", "\t" * rng.randint(1, 8) + w + "\r\n" * rng.randint(1, 4) + "  " + w)
        else:
            add("whitespace", w + " " * rng.randint(2, 40) + "\n" + " " * rng.randint(0, 10) + "!" + "\r")

    # 7. emoji
    for _ in range(550):
        k = rng.randrange(6)
        if k == 0:
            e = rng.choice(EMOJI_ZWJ)
        elif k == 1:
            e = rng.choice(TONE_BASES) + rng.choice(SKIN_TONES)
        elif k == 2:
            e = rng.choice(FLAGS)
        elif k == 3:
            e = rng.choice(KEYCAPS)
        elif k == 4:
            e = "".join(rng.choice(EMOJI_BASIC + EMOJI_ZWJ + FLAGS) for _ in range(rng.randint(2, 8)))
        else:
            e = rng.choice(EMOJI_BASIC)
        add("emoji", rng.choice([e, f"{_rand_word(rng)} {e}", f"{e}{_rand_word(rng)}", f" {e} ",
                                 f"{rng.choice(all_sents[rng.choice(langs)])}{e}"]))
    add("emoji", "👩‍👩‍👧‍👦")
    add("emoji", "🏳️‍🌈")

    # 8. combining marks and decomposed forms (NFC matters for Qwen)
    for w in NFC_WORDS:
        add("combining", unicodedata.normalize("NFD", w))
        add("combining", unicodedata.normalize("NFC", w))
        add("combining", unicodedata.normalize("NFKD", w))
    add("combining", "e\u0301")
    add("combining", "cafe\u0301")
    for _ in range(350):
        k = rng.randrange(4)
        if k == 0:
            base = rng.choice("aeiouAEIOUnczsyAB")
            add("combining", base + "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 4))))
        elif k == 1:
            add("combining", unicodedata.normalize("NFD", rng.choice(all_sents[rng.choice(["vi", "fr", "de", "ko", "ja", "el", "tr", "pl", "pt"])])))
        elif k == 2:
            add("combining", "Z" + "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(5, 30))) + "algo")
        else:
            add("combining", rng.choice(COMBINING) + _rand_word(rng))

    # 9. special tokens inside text
    for s in SPECIALS + PARTIAL_SPECIALS:
        add("special", s)
    fixed = ["hello<|im_end|>world", "<s>x</s>", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
             "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
             "a <tool> b", "a<tool>b", "a   <tool>   b", "x </tool> y", "x</tool>  y", "<tool><tool>",
             " <tool>", "<tool> ", "<|im_end|><|im_end|>", "<<|im_end|>>", "<|<|im_end|>|>",
             "<s><s></s></s>", " <s> ", "text <|endoftext|> more", "<|endoftext|>", "<|im_", "<|begin_of_text|"]
    for s in fixed:
        add("special", s)
    for _ in range(370):
        sp = rng.choice(SPECIALS + PARTIAL_SPECIALS)
        sep_l = rng.choice(["", " ", "  ", "\n", "\t"])
        sep_r = rng.choice(["", " ", "  ", "\n", "\t"])
        a = rng.choice([_rand_word(rng), rng.choice(all_words[rng.choice(langs)]), "", _rand_number(rng)])
        b = rng.choice([_rand_word(rng), rng.choice(all_words[rng.choice(langs)]), "", "🙂"])
        add("special", f"{a}{sep_l}{sp}{sep_r}{b}")

    # 10. strings the vocabularies cannot cover
    for s in ODD_CODEPOINTS:
        add("uncovered", s)
    for _ in range(340):
        s = "".join(rng.choice(ODD_CODEPOINTS) for _ in range(rng.randint(1, 4)))
        add("uncovered", rng.choice([s, f"{_rand_word(rng)}{s}", f"{s} {_rand_word(rng)}"]))

    # 11. contractions
    for s in CONTRACTION_SENTS:
        add("contraction", s)
    for _ in range(250):
        s = rng.choice(CONTRACTION_SENTS)
        add("contraction", rng.choice([s, s.upper(), s.lower(), s.swapcase(), f"{_rand_word(rng)} {s}"]))

    # 12. random unicode (no surrogates)
    for _ in range(600):
        add("random_unicode", _rand_unicode(rng, rng.randint(1, 24)))

    # 13. multi-line documents and long lines
    for _ in range(250):
        parts = []
        for _ in range(rng.randint(2, 6)):
            k = rng.randrange(4)
            if k == 0:
                parts.append(rng.choice(lic_lines))
            elif k == 1:
                parts.append(rng.choice(py_lines))
            elif k == 2:
                parts.append(rng.choice(all_sents[rng.choice(langs)]))
            else:
                parts.append("")
        add("multiline", rng.choice(["\n", "\r\n", "\n\n", "\r"]).join(parts))
    for _ in range(20):
        parts = [rng.choice(all_sents[rng.choice(langs)]) if rng.random() < 0.5 else rng.choice(lic_lines)
                 for _ in range(rng.randint(20, 60))]
        add("long", " ".join(parts))

    head = items[:1]          # keep "" first
    rest = items[1:]
    rng.shuffle(rest)
    return head + rest


def write_corpus(path: str) -> list[tuple[str, str]]:
    items = build_corpus()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _, text in items:
            f.write(json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":")) + "\n")
    return items


if __name__ == "__main__":
    import collections
    items = build_corpus()
    counts = collections.Counter(c for c, _ in items)
    for c, n in sorted(counts.items()):
        print(f"{c:24s} {n}")
    print("total", len(items), "bytes", sum(len(t.encode()) for _, t in items))
