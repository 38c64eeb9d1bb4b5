// Splits a template into text and the tokens inside {{ }} and {% %}, applying whitespace control
// as transformers configures jinja2: trim_blocks (a newline right after a block or comment tag is
// dropped), lstrip_blocks (spaces and tabs from the start of a line up to a block or comment tag
// are dropped), "-" on either side of a tag strips all whitespace on that side, "+" turns the
// trimming off. Comments are dropped, {% raw %} bodies become text, newlines are normalized to
// "\n" and one trailing newline of the template is dropped (keep_trailing_newline=False).
#pragma once

#include <string>
#include <vector>

namespace moe::jinja {

struct Pos {
  int line = 1;
  int col = 1;
};

enum class Tok { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  Tok type;
  std::string text;  // text data, name, decoded string literal, number or operator
  Pos pos;
};

// Throws moe::Error "<name>:<line>:<col>: <what>" on unterminated tags, strings and comments.
std::vector<Token> tokenize(const std::string& source, const std::string& name);

}  // namespace moe::jinja
