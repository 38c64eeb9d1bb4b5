#!/usr/bin/env bash
# `moe run` under mpirun gives the tokens of one process: TP 2, PP 2, EP 2, TP 2 x PP 2, TP 2 x EP 2
# on a tiny model as stored, quantized (all=q4g32) and with offloaded experts; plus the ways a
# distributed launch must fail: a rank that cannot load, ranks that disagree on the model, an
# error after the start (the whole job stops, never hangs), too few processes, and no mpirun.
#   mpirun_run.sh MOE WORKDIR
set -u
moe="$1"
work="$2"
mkdir -p "$work"
mpi=(timeout -k 5 120 mpirun --allow-run-as-root --oversubscribe)
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}

"$moe" make-tiny --arch qwen2_moe --out "$work/tiny" --seed 3 >/dev/null || exit 1
rm -rf "$work/tiny-q4"
"$moe" convert --model "$work/tiny" --quant all=q4g32 --out "$work/tiny-q4" >/dev/null 2>&1 || exit 1
gen=(run --tokens 1,15,27,300,42,7,99 -n 12 --print-ids --ignore-eos -t 1)

# same_tokens MODEL NP FLAGS...: mpirun -np NP with FLAGS prints the single-process tokens.
same_tokens() {
  local model="$1" np="$2"
  shift 2
  local want got
  want=$("$moe" "${gen[@]}" --model "$model" 2>/dev/null)
  got=$("${mpi[@]}" -np "$np" "$moe" "${gen[@]}" --model "$model" "$@" 2>"$work/err.txt")
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "same tokens: $(basename "$model") -np $np $*: $got"
  else
    fail "$(basename "$model") -np $np $*: want '$want', got '$got'"
    tail -5 "$work/err.txt"
  fi
}

# q4 on the f32 path of the kernels: the integer path rounds activations to int8, and a partial sum
# that differs in its last bit can move one to the next int8 step (docs/parallel.md, "Numerics").
export MOE_QLINEAR_FLOAT=1
for m in "$work/tiny" "$work/tiny-q4"; do
  same_tokens "$m" 2 --tp 2
  same_tokens "$m" 2 --pp 2
  same_tokens "$m" 2 --ep 2
  same_tokens "$m" 4 --tp 2 --pp 2
  same_tokens "$m" 4 --tp 2 --ep 2
  same_tokens "$m" 2 --pp 2 --layers 0:1,1:4
done
same_tokens "$work/tiny-q4" 2 --pp 2 --host-mem 64M
same_tokens "$work/tiny-q4" 2 --ep 2 --host-mem 64M
# Each rank reports its own expert cache and prefetcher.
grep -q "rank 1 on .*experts: hit rate .*prefetch recall .*precision" "$work/err.txt" && echo "per-rank prefetch: ok" ||
  fail "no per-rank prefetch recall line"

# Text in and out: the same text as one process.
want=$("$moe" run --model "$work/tiny" --prompt "Once upon a time" -n 10 --ignore-eos -t 1 2>/dev/null)
got=$("${mpi[@]}" -np 2 "$moe" run --model "$work/tiny" --prompt "Once upon a time" -n 10 --ignore-eos -t 1 --tp 2 \
  2>"$work/err.txt")
[ -n "$want" ] && [ "$got" = "$want" ] && echo "same text: --tp 2" || fail "text: want '$want', got '$got'"
grep -q "rank 1 on .*tp 1/2" "$work/err.txt" && echo "per-rank stats: ok" || fail "no per-rank stats line"

# expect_failure WHAT REGEX COMMAND...: exits non-zero within the timeout, saying REGEX.
expect_failure() {
  local what="$1" regex="$2"
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && echo "$out" | grep -Eq "$regex"; then
    echo "fails as it should: $what (exit $rc): $(echo "$out" | grep -E "$regex" | head -1)"
  else
    fail "$what: exit $rc, output: $(echo "$out" | tail -5)"
  fi
}
# A rank that cannot load its part: every rank stops, rank 0 says which and why.
expect_failure "a rank without the model" "rank 1 on .*config.json" \
  "${mpi[@]}" -np 1 "$moe" "${gen[@]}" --model "$work/tiny" --tp 2 : -np 1 "$moe" "${gen[@]}" --model "$work" --tp 2
# Ranks given different models.
expect_failure "ranks that disagree" "rank 1 on .* has .*q4g32" \
  "${mpi[@]}" -np 1 "$moe" "${gen[@]}" --model "$work/tiny" --tp 2 : -np 1 "$moe" "${gen[@]}" --model "$work/tiny-q4" --tp 2
# An error once generation started: the job is stopped (MPI_Abort), not left waiting.
expect_failure "an error after the start" "outside the vocabulary" \
  "${mpi[@]}" -np 2 "$moe" run --model "$work/tiny" --tokens 1,999999 --tp 2 -t 1
expect_failure "too few processes" "tp 4 x pp 1 x ep 1 needs 4 processes but 2 are running" \
  "${mpi[@]}" -np 2 "$moe" "${gen[@]}" --model "$work/tiny" --tp 4
expect_failure "no mpirun" "needs 2 processes: launch with mpirun -np 2" "$moe" "${gen[@]}" --model "$work/tiny" --tp 2
expect_failure "tp with offloading" "with expert offloading: offloaded experts are read whole" \
  "${mpi[@]}" -np 2 "$moe" "${gen[@]}" --model "$work/tiny-q4" --tp 2 --host-mem 64M

if [ "$failures" -eq 0 ]; then echo "mpirun run tests: ok"; else echo "mpirun run tests: $failures FAILED"; exit 1; fi
