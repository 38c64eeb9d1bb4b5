#!/usr/bin/env bash
# `moe` on GGUF files, end to end: run gives transformers' greedy tokens (the golden Mixtral
# written as GGUF F32); a K-quant GGUF converted to a packed store with its block types kept
# gives the same tokens as the file itself, resident and with the experts offloaded; plan reads
# the file's own types; --quant on a GGUF and converting ggml blocks to our formats are refused
# with a message. Prints "gguf cli tests: ok".
#   gguf_cli.sh MOE FIXTURES WORKDIR
set -u
moe="$1"
fixtures="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
ids() { tr -s ' ' | sed 's/^ //; s/ $//'; }

# 1. The golden Mixtral as GGUF F32: transformers' greedy tokens.
g="$fixtures/golden/mixtral_sharded_bf16/golden.json"
prompt=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["prompt_ids"])))' "$g")
want=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["generated_ids"])))' "$g")
got=$("$moe" run --model "$fixtures/gguf_models/mixtral_sharded_bf16.F32.gguf" --tokens "$prompt" -n 11 --print-ids \
  --ignore-eos -t 1 2>"$work/run.err" | ids)
if [ "$got" = "$want" ]; then
  echo "golden tokens: mixtral_sharded_bf16.F32.gguf gives transformers' $want"
else
  fail "mixtral F32 gguf: want '$want' got '$got'"
  tail -3 "$work/run.err"
fi
grep -q "gguf" "$work/run.err" || fail "the stats do not say the weights came from a GGUF file"

# 2. K-quants: the file, its packed store (types kept), and the store with its experts offloaded.
kq="$fixtures/gguf_models/kquant_qwen3moe.gguf"
p2=3,141,59,265,35
a=$("$moe" run --model "$kq" --tokens $p2 -n 12 --print-ids --ignore-eos -t 1 2>"$work/a.err" | ids)
[ -n "$a" ] || { fail "run on the K-quant file"; tail -3 "$work/a.err"; }
if "$moe" convert --model "$kq" --quant keep --out "$work/store" >"$work/convert.out" 2>&1; then
  echo "convert: $(grep -m1 converted "$work/convert.out")"
  python3 - "$work/store/manifest.json" <<'EOF' || fail "the store does not keep the GGUF block types"
import json, sys
m = json.load(open(sys.argv[1]))
kinds = set()
def walk(x):
    if isinstance(x, dict):
        s = x.get("storage")
        if isinstance(s, str):
            kinds.add(s)
        for v in x.values():
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(m)
need = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"}
missing = need - kinds
print("store keeps:", ", ".join(sorted(kinds & need)))
sys.exit(1 if missing else 0)
EOF
  b=$("$moe" run --model "$work/store" --tokens $p2 -n 12 --print-ids --ignore-eos -t 1 2>"$work/b.err" | ids)
  [ "$a" = "$b" ] && echo "same tokens: file and packed store ($a)" || fail "store: want '$a' got '$b'"
  c=$("$moe" run --model "$work/store" --tokens $p2 -n 12 --print-ids --ignore-eos -t 1 --host-mem 3M \
    2>"$work/c.err" | ids)
  if [ "$a" = "$c" ] && grep -q "hit rate" "$work/c.err"; then
    echo "same tokens: experts offloaded from the store ($(grep -m1 -o 'hit rate [^,]*' "$work/c.err"))"
  else
    fail "offloaded: want '$a' got '$c'"
    tail -3 "$work/c.err"
  fi
else
  fail "convert --quant keep"
  cat "$work/convert.out"
fi

# 3. plan on the file: its own block types.
if "$moe" plan --model "$kq" --host-mem 64M --dram-bw 20 --nvme-bw 2 --no-measure >"$work/plan.out" 2>&1 &&
  grep -q "as the GGUF file stores it" "$work/plan.out"; then
  echo "plan: $(grep -m1 -E '^experts' "$work/plan.out")"
else
  fail "plan"
  cat "$work/plan.out"
fi

# 4. Refusals, with their reasons.
"$moe" run --model "$kq" --quant q4 --tokens 1 >"$work/q.out" 2>&1 && fail "--quant on a GGUF file was accepted"
grep -q "a GGUF file runs in its own types" "$work/q.out" || fail "--quant message: $(cat "$work/q.out")"
"$moe" convert --model "$kq" --quant experts=q4 --out "$work/never" >"$work/cq.out" 2>&1 && fail "requantizing ggml blocks was accepted"
grep -q "kept as they are" "$work/cq.out" || fail "convert message: $(cat "$work/cq.out")"
"$moe" run --model "$kq" --host-mem 3M --tokens 1 >"$work/o.out" 2>&1 && fail "offloading straight from the GGUF file was accepted"
grep -q "moe convert" "$work/o.out" || fail "offload message: $(cat "$work/o.out")"
echo "refusals: --quant, requantizing blocks, offloading from the file itself: each with its message"

if [ "$failures" -eq 0 ]; then echo "gguf cli tests: ok"; else echo "gguf cli tests: $failures FAILED"; exit 1; fi
