// Whole tokenizers (BPE merge order, both merges forms, byte fallback, unk/fuse_unk,
// ignore_merges, continuing_subword_prefix/end_of_word_suffix, added-token flags, templates)
// against the Rust `tokenizers` library. Each case's tokenizer.json was loaded in Python with
// tokenizers 0.23.3 (Tokenizer.from_str) and the rows hold, per text,
//   encode(text, add_special_tokens=False).ids, encode(text, add_special_tokens=True).ids,
//   decode(ids, skip_special_tokens=False), decode(ids_special, skip_special_tokens=True).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

struct Row {
  const char* text;
  std::vector<int32_t> ids, ids_special;
  const char* decoded;
  const char* decoded_skip;
};
struct ModelCase {
  const char* name;
  const char* json;
  std::vector<Row> rows;
};

// clang-format off
const ModelCase kModelCases[] = {
    {"merges_strings", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"a": 0, "b": 1, "c": 2, "d": 3, "ab": 4, "bc": 5, "abc": 6, "cd": 7, "bcd": 8, "abcd": 9}, "merges": ["b c", "a b", "c d", "ab c", "bc d", "a bcd"]}})J",
     {{"abcd", {9}, {9}, "abcd", "abcd"},
      {"abc", {0, 5}, {0, 5}, "a bc", "a bc"},
      {"ababc bcbc", {4, 0, 5, 5, 5}, {4, 0, 5, 5, 5}, "ab a bc bc bc", "ab a bc bc bc"},
      {"dcba", {3, 2, 1, 0}, {3, 2, 1, 0}, "d c b a", "d c b a"},
      {"aabbccdd", {0, 4, 5, 7, 3}, {0, 4, 5, 7, 3}, "a ab bc cd d", "a ab bc cd d"}}},
    {"merges_pairs", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"a": 0, "b": 1, "c": 2, "d": 3, "ab": 4, "bc": 5, "abc": 6, "cd": 7, "bcd": 8, "abcd": 9}, "merges": [["b", "c"], ["a", "b"], ["c", "d"], ["ab", "c"], ["bc", "d"], ["a", "bcd"]]}})J",
     {{"abcd", {9}, {9}, "abcd", "abcd"},
      {"abc", {0, 5}, {0, 5}, "a bc", "a bc"},
      {"ababc bcbc", {4, 0, 5, 5, 5}, {4, 0, 5, 5, 5}, "ab a bc bc bc", "ab a bc bc bc"},
      {"dcba", {3, 2, 1, 0}, {3, 2, 1, 0}, "d c b a", "d c b a"},
      {"aabbccdd", {0, 4, 5, 7, 3}, {0, 4, 5, 7, 3}, "a ab bc cd d", "a ab bc cd d"}}},
    {"byte_fallback", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}], "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}, "pre_tokenizer": null, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}, "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}, "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x00>": 3, "<0x01>": 4, "<0x02>": 5, "<0x03>": 6, "<0x04>": 7, "<0x05>": 8, "<0x06>": 9, "<0x07>": 10, "<0x08>": 11, "<0x09>": 12, "<0x0A>": 13, "<0x0B>": 14, "<0x0C>": 15, "<0x0D>": 16, "<0x0E>": 17, "<0x0F>": 18, "<0x10>": 19, "<0x11>": 20, "<0x12>": 21, "<0x13>": 22, "<0x14>": 23, "<0x15>": 24, "<0x16>": 25, "<0x17>": 26, "<0x18>": 27, "<0x19>": 28, "<0x1A>": 29, "<0x1B>": 30, "<0x1C>": 31, "<0x1D>": 32, "<0x1E>": 33, "<0x1F>": 34, "<0x20>": 35, "<0x22>": 36, "<0x23>": 37, "<0x24>": 38, "<0x25>": 39, "<0x26>": 40, "<0x27>": 41, "<0x28>": 42, "<0x29>": 43, "<0x2A>": 44, "<0x2B>": 45, "<0x2C>": 46, "<0x2D>": 47, "<0x2E>": 48, "<0x2F>": 49, "<0x30>": 50, "<0x31>": 51, "<0x32>": 52, "<0x33>": 53, "<0x34>": 54, "<0x35>": 55, "<0x36>": 56, "<0x37>": 57, "<0x38>": 58, "<0x39>": 59, "<0x3A>": 60, "<0x3B>": 61, "<0x3C>": 62, "<0x3D>": 63, "<0x3E>": 64, "<0x3F>": 65, "<0x40>": 66, "<0x41>": 67, "<0x42>": 68, "<0x43>": 69, "<0x44>": 70, "<0x45>": 71, "<0x46>": 72, "<0x47>": 73, "<0x48>": 74, "<0x49>": 75, "<0x4A>": 76, "<0x4B>": 77, "<0x4C>": 78, "<0x4D>": 79, "<0x4E>": 80, "<0x4F>": 81, "<0x50>": 82, "<0x51>": 83, "<0x52>": 84, "<0x53>": 85, "<0x54>": 86, "<0x55>": 87, "<0x56>": 88, "<0x57>": 89, "<0x58>": 90, "<0x59>": 91, "<0x5A>": 92, "<0x5B>": 93, "<0x5C>": 94, "<0x5D>": 95, "<0x5E>": 96, "<0x5F>": 97, "<0x60>": 98, "<0x61>": 99, "<0x62>": 100, "<0x63>": 101, "<0x64>": 102, "<0x65>": 103, "<0x66>": 104, "<0x67>": 105, "<0x68>": 106, "<0x69>": 107, "<0x6A>": 108, "<0x6B>": 109, "<0x6C>": 110, "<0x6D>": 111, "<0x6E>": 112, "<0x6F>": 113, "<0x70>": 114, "<0x71>": 115, "<0x72>": 116, "<0x73>": 117, "<0x74>": 118, "<0x75>": 119, "<0x76>": 120, "<0x77>": 121, "<0x78>": 122, "<0x79>": 123, "<0x7A>": 124, "<0x7B>": 125, "<0x7C>": 126, "<0x7D>": 127, "<0x7E>": 128, "<0x7F>": 129, "<0x80>": 130, "<0x81>": 131, "<0x82>": 132, "<0x83>": 133, "<0x84>": 134, "<0x85>": 135, "<0x86>": 136, "<0x87>": 137, "<0x88>": 138, "<0x89>": 139, "<0x8A>": 140, "<0x8B>": 141, "<0x8C>": 142, "<0x8D>": 143, "<0x8E>": 144, "<0x8F>": 145, "<0x90>": 146, "<0x91>": 147, "<0x92>": 148, "<0x93>": 149, "<0x94>": 150, "<0x95>": 151, "<0x96>": 152, "<0x97>": 153, "<0x98>": 154, "<0x99>": 155, "<0x9A>": 156, "<0x9B>": 157, "<0x9C>": 158, "<0x9D>": 159, "<0x9E>": 160, "<0x9F>": 161, "<0xA0>": 162, "<0xA1>": 163, "<0xA2>": 164, "<0xA3>": 165, "<0xA4>": 166, "<0xA5>": 167, "<0xA6>": 168, "<0xA7>": 169, "<0xA8>": 170, "<0xA9>": 171, "<0xAA>": 172, "<0xAB>": 173, "<0xAC>": 174, "<0xAD>": 175, "<0xAE>": 176, "<0xAF>": 177, "<0xB0>": 178, "<0xB1>": 179, "<0xB2>": 180, "<0xB3>": 181, "<0xB4>": 182, "<0xB5>": 183, "<0xB6>": 184, "<0xB7>": 185, "<0xB8>": 186, "<0xB9>": 187, "<0xBA>": 188, "<0xBB>": 189, "<0xBC>": 190, "<0xBD>": 191, "<0xBE>": 192, "<0xBF>": 193, "<0xC0>": 194, "<0xC1>": 195, "<0xC2>": 196, "<0xC3>": 197, "<0xC4>": 198, "<0xC5>": 199, "<0xC6>": 200, "<0xC7>": 201, "<0xC8>": 202, "<0xC9>": 203, "<0xCA>": 204, "<0xCB>": 205, "<0xCC>": 206, "<0xCD>": 207, "<0xCE>": 208, "<0xCF>": 209, "<0xD0>": 210, "<0xD1>": 211, "<0xD2>": 212, "<0xD3>": 213, "<0xD4>": 214, "<0xD5>": 215, "<0xD6>": 216, "<0xD7>": 217, "<0xD8>": 218, "<0xD9>": 219, "<0xDA>": 220, "<0xDB>": 221, "<0xDC>": 222, "<0xDD>": 223, "<0xDE>": 224, "<0xDF>": 225, "<0xE0>": 226, "<0xE1>": 227, "<0xE2>": 228, "<0xE3>": 229, "<0xE4>": 230, "<0xE5>": 231, "<0xE6>": 232, "<0xE7>": 233, "<0xE8>": 234, "<0xE9>": 235, "<0xEA>": 236, "<0xEB>": 237, "<0xEC>": 238, "<0xED>": 239, "<0xEE>": 240, "<0xEF>": 241, "<0xF0>": 242, "<0xF1>": 243, "<0xF2>": 244, "<0xF3>": 245, "<0xF4>": 246, "<0xF5>": 247, "<0xF6>": 248, "<0xF7>": 249, "<0xF8>": 250, "<0xF9>": 251, "<0xFA>": 252, "<0xFB>": 253, "<0xFC>": 254, "<0xFD>": 255, "<0xFE>": 256, "<0xFF>": 257, "\u2581": 258, "h": 259, "e": 260, "l": 261, "o": 262, "w": 263, "r": 264, "d": 265, "\u2581h": 266, "he": 267, "ll": 268, "\u2581he": 269, "\u2581hell": 270, "\u2581hello": 271, "\u2581w": 272, "or": 273, "\u2581wor": 274, "\u2581world": 275, "hell": 276}, "merges": ["\u2581 h", "h e", "l l", "\u2581h e", "he ll", "\u2581he ll", "\u2581hell o", "\u2581 w", "o r", "\u2581w or"]}})J",
     {{"hello world", {271, 274, 261, 265}, {1, 271, 274, 261, 265}, "hello world", "hello world"},
      {"hello \xC3""\xA9""\xE4""\xB8""\xAD""\xF0""\x9F""\x98""\x80""", {271, 258, 197, 171, 230, 186, 175, 242, 161, 154, 130}, {1, 271, 258, 197, 171, 230, 186, 175, 242, 161, 154, 130}, "hello \xC3""\xA9""\xE4""\xB8""\xAD""\xF0""\x9F""\x98""\x80""", "hello \xC3""\xA9""\xE4""\xB8""\xAD""\xF0""\x9F""\x98""\x80"""},
      {"<s>hello</s> world", {1, 271, 2, 258, 274, 261, 265}, {1, 1, 271, 2, 258, 274, 261, 265}, "<s> hello</s>  world", "hello  world"},
      {"hi!! hello", {266, 107, 0, 271}, {1, 266, 107, 0, 271}, "hi<unk> hello", "hi hello"},
      {"", {}, {1}, "", ""}}},
    {"unk_fused", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": false, "ignore_merges": false, "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}})J",
     {{"abxyzab", {3, 0, 3}, {3, 0, 3}, "ab <unk> ab", "ab <unk> ab"},
      {"xa", {0, 1}, {0, 1}, "<unk> a", "<unk> a"},
      {"ab", {3}, {3}, "ab", "ab"}}},
    {"unk_not_fused", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}})J",
     {{"abxyzab", {3, 0, 0, 0, 3}, {3, 0, 0, 0, 3}, "ab <unk> <unk> <unk> ab", "ab <unk> <unk> <unk> ab"},
      {"xa", {0, 1}, {0, 1}, "<unk> a", "<unk> a"}}},
    {"ignore_merges_on", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": true, "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5, "hello": 6, "llo": 7}, "merges": ["h e", "l l", "ll o"]}})J",
     {{"hello hellohello helo", {6, 4, 7, 4, 7, 4, 2, 3}, {6, 4, 7, 4, 7, 4, 2, 3}, "hello he llo he llo he l o", "hello he llo he llo he l o"}}},
    {"ignore_merges_off", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5, "hello": 6, "llo": 7}, "merges": ["h e", "l l", "ll o"]}})J",
     {{"hello hellohello helo", {4, 7, 4, 7, 4, 7, 4, 2, 3}, {4, 7, 4, 7, 4, 7, 4, 2, 3}, "he llo he llo he llo he l o", "he llo he llo he llo he l o"}}},
    {"subword_prefix", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "##", "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"h": 0, "##e": 1, "##l": 2, "##o": 3, "##ll": 4, "h##e": 5, "he": 6, "##llo": 7, "hello": 8}, "merges": ["##l ##l", "h ##e", "##ll ##o", "he ##llo"]}})J",
     {{"hello hel", {8, 6, 2}, {8, 6, 2}, "hello he ##l", "hello he ##l"}}},
    {"word_suffix", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"h": 0, "i": 1, "i</w>": 2, "h</w>": 3, "hi</w>": 4, "hi": 5}, "merges": ["h i</w>", "h i"]}})J",
     {{"hi hih ih", {4, 5, 3, 1, 3}, {4, 5, 3, 1, 3}, "hi</w> hi h</w> i h</w>", "hi</w> hi h</w> i h</w>"}}},
    {"added_flags", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{"id": 95, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 96, "content": "<mask>", "single_word": true, "lstrip": true, "rstrip": true, "normalized": true, "special": false}, {"id": 97, "content": "yes", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false}, {"id": 98, "content": "<x>", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": false}, {"id": 99, "content": "<y>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": false}, {"id": 100, "content": "<xy>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}], "normalizer": {"type": "Lowercase"}, "pre_tokenizer": null, "post_processor": null, "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {" ": 0, "!": 1, "\"": 2, "#": 3, "$": 4, "%": 5, "&": 6, "'": 7, "(": 8, ")": 9, "*": 10, "+": 11, ",": 12, "-": 13, ".": 14, "/": 15, "0": 16, "1": 17, "2": 18, "3": 19, "4": 20, "5": 21, "6": 22, "7": 23, "8": 24, "9": 25, ":": 26, ";": 27, "<": 28, "=": 29, ">": 30, "?": 31, "@": 32, "A": 33, "B": 34, "C": 35, "D": 36, "E": 37, "F": 38, "G": 39, "H": 40, "I": 41, "J": 42, "K": 43, "L": 44, "M": 45, "N": 46, "O": 47, "P": 48, "Q": 49, "R": 50, "S": 51, "T": 52, "U": 53, "V": 54, "W": 55, "X": 56, "Y": 57, "Z": 58, "[": 59, "\\": 60, "]": 61, "^": 62, "_": 63, "`": 64, "a": 65, "b": 66, "c": 67, "d": 68, "e": 69, "f": 70, "g": 71, "h": 72, "i": 73, "j": 74, "k": 75, "l": 76, "m": 77, "n": 78, "o": 79, "p": 80, "q": 81, "r": 82, "s": 83, "t": 84, "u": 85, "v": 86, "w": 87, "x": 88, "y": 89, "z": 90, "{": 91, "|": 92, "}": 93, "~": 94}, "merges": []}})J",
     {{"[CLS] My <mask> is YES a<mask> <mask>b <mask>", {95, 0, 77, 89, 96, 73, 83, 0, 97, 0, 65, 28, 77, 65, 83, 75, 30, 0, 28, 77, 65, 83, 75, 30, 66, 96}, {95, 0, 77, 89, 96, 73, 83, 0, 97, 0, 65, 28, 77, 65, 83, 75, 30, 0, 28, 77, 65, 83, 75, 30, 66, 96}, "[CLS]   m y <mask> i s   yes   a < m a s k >   < m a s k > b <mask>", "  m y <mask> i s   yes   a < m a s k >   < m a s k > b <mask>"},
      {"  <x>   q  <y> <xy>z<x><y>", {0, 0, 98, 81, 99, 0, 100, 90, 98, 99}, {0, 0, 98, 81, 99, 0, 100, 90, 98, 99}, "    <x> q <y>   <xy> z <x> <y>", "    <x> q <y>   <xy> z <x> <y>"},
      {"[cls] Yes", {59, 67, 76, 83, 61, 0, 97}, {59, 67, 76, 83, 61, 0, 97}, "[ c l s ]   yes", "[ c l s ]   yes"}}},
    {"bytelevel_prefix_space", R"J({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{"id": 256, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"N": 0, "v": 1, "\u011e": 2, "\u00af": 3, "\u00a4": 4, "\u012a": 5, "\u00b8": 6, "\u0104": 7, "\u0110": 8, "y": 9, ";": 10, "\u0131": 11, "\u00b3": 12, "\u00fe": 13, "<": 14, "\u012e": 15, "\u00b9": 16, "\u0119": 17, "p": 18, "/": 19, "\u00c9": 20, "\u00c6": 21, "\u00b6": 22, "j": 23, "\u00ae": 24, "\u0118": 25, "\u0130": 26, "\u00e4": 27, "\u00f3": 28, "=": 29, "\u00c0": 30, "\u0129": 31, "?": 32, "\u00b4": 33, "n": 34, "g": 35, "f": 36, "\u0124": 37, "\u011b": 38, "r": 39, "\u00fa": 40, "\u00d1": 41, "s": 42, "@": 43, ".": 44, "1": 45, "\u00ec": 46, "t": 47, "d": 48, "[": 49, "\u00bf": 50, "\u0126": 51, "Z": 52, ",": 53, "\u00cf": 54, "\u00be": 55, "\u00de": 56, "X": 57, "m": 58, "\u0136": 59, "a": 60, "b": 61, "\u00ff": 62, "U": 63, "\u00df": 64, "u": 65, "9": 66, "]": 67, "\u0127": 68, "%": 69, "\u0102": 70, "\u00e9": 71, "I": 72, "7": 73, "\u00c7": 74, "\u00a3": 75, "-": 76, "+": 77, "\u00b0": 78, "K": 79, "\u013b": 80, "\u012f": 81, "R": 82, "\u013a": 83, "\u00f0": 84, "\u00d7": 85, "L": 86, "\u0103": 87, "\u00bb": 88, "\u00bc": 89, "\u00b7": 90, "\u0133": 91, "'": 92, "\u0137": 93, "\u0116": 94, "\u0111": 95, "\u00d8": 96, "T": 97, "\u013f": 98, "\u00ed": 99, "\u00cb": 100, "\u00a1": 101, "{": 102, "\u010e": 103, ")": 104, "\u0134": 105, "\u00a9": 106, "\u013c": 107, "\u00a5": 108, "\u0115": 109, "\u0139": 110, "8": 111, "\u00ef": 112, "\u0143": 113, "\u00cd": 114, "\u0121": 115, "6": 116, "q": 117, "\u00a2": 118, "\u00eb": 119, "\u0100": 120, "O": 121, "z": 122, "k": 123, "0": 124, "V": 125, "\u00f7": 126, "\u00b2": 127, "\u0113": 128, "*": 129, "\u010a": 130, "\u00c5": 131, "A": 132, "J": 133, "\u0114": 134, "h": 135, "\u00ca": 136, "x": 137, "\u0105": 138, "\u012b": 139, "\u00aa": 140, "F": 141, "\u00ea": 142, "\u0101": 143, "W": 144, "\u00fd": 145, "C": 146, "l": 147, "\\": 148, "\u0106": 149, "\u00c2": 150, "&": 151, "\u00d2": 152, "\u010f": 153, "\u00e2": 154, "\u011a": 155, ">": 156, "\u0117": 157, "\u00ab": 158, "B": 159, "\u0112": 160, "\u0108": 161, "M": 162, "}": 163, "\u0109": 164, "\u00f8": 165, "\u00b1": 166, "\u00e6": 167, "\u00c4": 168, "\u00ce": 169, "e": 170, "\u00bd": 171, "\u0128": 172, "\u00c3": 173, "5": 174, "\u00da": 175, "\u00c1": 176, "\u00f4": 177, "\u00d0": 178, "Y": 179, "\u00f6": 180, "\u0122": 181, ":": 182, "E": 183, "\u00c8": 184, "\u0107": 185, "`": 186, "!": 187, "\u00f1": 188, "\u013d": 189, "\u00d4": 190, "\u00f9": 191, "\u00b5": 192, "\u00d9": 193, "\u010c": 194, "$": 195, "\u012d": 196, "\u0123": 197, "~": 198, "\u013e": 199, "\u011c": 200, "\u00d5": 201, "c": 202, "|": 203, "3": 204, "\u0132": 205, "\u00a6": 206, "\u010d": 207, "\u0135": 208, "\u00dd": 209, "\u00e7": 210, "\"": 211, "\u00fc": 212, "\u0138": 213, "\u010b": 214, "\u00e8": 215, "\u00e3": 216, "^": 217, "\u00a8": 218, "\u0140": 219, "\u00e0": 220, "\u00e5": 221, "\u011d": 222, "i": 223, "Q": 224, "\u00ee": 225, "\u00d3": 226, "2": 227, "G": 228, "\u00e1": 229, "\u00ba": 230, "w": 231, "\u0120": 232, "\u00f2": 233, "\u00f5": 234, "\u00cc": 235, "o": 236, "\u00a7": 237, "\u0125": 238, "P": 239, "H": 240, "\u00ac": 241, "\u0142": 242, "\u00db": 243, "\u012c": 244, "S": 245, "D": 246, "\u0141": 247, "4": 248, "#": 249, "_": 250, "\u00d6": 251, "\u011f": 252, "\u00dc": 253, "(": 254, "\u00fb": 255}, "merges": []}})J",
     {{"hi<s>there you", {232, 135, 223, 256, 232, 47, 135, 170, 39, 170, 232, 9, 236, 65}, {232, 135, 223, 256, 232, 47, 135, 170, 39, 170, 232, 9, 236, 65}, " hi<s> there you", " hi there you"},
      {"<s> x", {256, 232, 137}, {256, 232, 137}, "<s> x", " x"}}},
};
// clang-format on

TEST(TokenizerModel, AgreesWithTokenizers) {
  for (const auto& c : kModelCases) {
    SCOPED_TRACE(c.name);
    const auto tok = moe::Tokenizer::from_json(c.json, "", c.name);
    for (const auto& r : c.rows) {
      EXPECT_EQ(tok.encode(r.text, false), r.ids) << "'" << r.text << "'";
      EXPECT_EQ(tok.encode(r.text, true), r.ids_special) << "'" << r.text << "'";
      EXPECT_EQ(tok.decode(r.ids, false), r.decoded) << "'" << r.text << "'";
      EXPECT_EQ(tok.decode(r.ids_special, true), r.decoded_skip) << "'" << r.text << "'";
    }
  }
}

TEST(TokenizerModel, BothMergesFormsAgree) {
  const auto& a = kModelCases[0];
  const auto& b = kModelCases[1];
  ASSERT_STREQ(a.name, "merges_strings");
  ASSERT_STREQ(b.name, "merges_pairs");
  const auto ta = moe::Tokenizer::from_json(a.json, "", "a");
  const auto tb = moe::Tokenizer::from_json(b.json, "", "b");
  for (const auto& r : a.rows) EXPECT_EQ(ta.encode(r.text, false), tb.encode(r.text, false)) << r.text;
}

TEST(TokenizerModel, VocabQueries) {
  const auto& c = kModelCases[2];  // byte_fallback: <unk>, <s>, </s> are special added tokens
  ASSERT_STREQ(c.name, "byte_fallback");
  const auto tok = moe::Tokenizer::from_json(c.json, "", c.name);
  EXPECT_EQ(tok.token_to_id("<s>"), 1);
  EXPECT_EQ(tok.token_to_id("<0x0A>"), 13);
  EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(2), "</s>");
  EXPECT_EQ(tok.id_to_token(100000), "");
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(13));
  EXPECT_EQ(tok.vocab_size(), 277);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{1, 100000}, false), moe::Error);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}, false), moe::Error);
}

}  // namespace
