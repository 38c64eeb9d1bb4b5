#!/usr/bin/env bash
# The fuzz smoke run (docs/fuzzing.md): configures a clang + ASan/UBSan + libFuzzer build
# (FUZZ_BUILD_DIR, default build-fuzz: CUDA, tests and benchmarks off), builds the fuzz targets
# (fuzz/) and only the libraries they link, replays the kept reproducers
# (tests/fixtures/fuzz_regressions/<target>-*), then runs each target on a copy of its seed corpus
# (fuzz/corpus/<target>/) for a bounded time. Fails on any crash, sanitizer report, leak, timeout
# or out-of-memory; the input that did it is left under $FUZZ_BUILD_DIR/fuzz-artifacts/<target>/.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS each
#   scripts/fuzz.sh gguf tokenizer       only those
#   FUZZ_SECONDS=600 scripts/fuzz.sh     a longer run (docs/fuzzing.md)
#
# Environment: FUZZ_SECONDS (per target, default 20), FUZZ_RUNS (executions per target, default
# unbounded: the time bounds the run), FUZZ_JOBS (build parallelism, default 2), FUZZ_BUILD_DIR,
# FUZZ_KEEP_CORPUS=1 (merge what a run found back into fuzz/corpus/<target>/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
runs=${FUZZ_RUNS:--1}
jobs=${FUZZ_JOBS:-2}
cxx=${FUZZ_CXX:-clang++}

targets=(safetensors safetensors_index npy packed_store config gguf tokenizer tokenizer_encode chat_template
         serve_request coordinator_proto)
if [ $# -gt 0 ]; then targets=("$@"); fi

dict_for() {
  case "$1" in
    chat_template) echo "$root/fuzz/dict/jinja.dict" ;;
    gguf) echo "$root/fuzz/dict/gguf.dict" ;;
    coordinator_proto | npy) echo "" ;;
    *) echo "$root/fuzz/dict/json.dict" ;;
  esac
}

start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  # -O1 with assertions on (no -DNDEBUG): what libFuzzer recommends, and quicker to compile.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DMOE_FUZZ=ON -DMOE_WERROR=ON -DMOE_ENABLE_CUDA=OFF \
    -DMOE_BUILD_TESTS=OFF -DMOE_BUILD_BENCHMARKS=OFF >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 1; }
fi
ninja -C "$build" -j "$jobs" $(printf 'fuzz_%s ' "${targets[@]}")
built=$(date +%s)
echo "fuzz: built in $((built - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$build/fuzz-run
artifacts=$build/fuzz-artifacts
rm -rf "$work"
mkdir -p "$work" "$artifacts"
summary=()
failed=0
for t in "${targets[@]}"; do
  exe=$build/fuzz/fuzz_$t
  log=$work/$t.log
  mkdir -p "$work/$t" "$artifacts/$t"
  cp -r "$root/fuzz/corpus/$t/." "$work/$t/"
  dict=$(dict_for "$t")
  args=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$t/")
  [ -n "$dict" ] && args+=(-dict="$dict")
  # The kept reproducers first: each must now run clean.
  shopt -s nullglob
  repro=("$root"/tests/fixtures/fuzz_regressions/"$t"-*)
  shopt -u nullglob
  if [ ${#repro[@]} -gt 0 ] && ! "$exe" "${args[@]}" "${repro[@]}" >"$work/$t.repro.log" 2>&1; then
    summary+=("fuzz $t: FAILED on a kept reproducer (log $work/$t.repro.log)")
    failed=1
    continue
  fi
  t0=$(date +%s)
  if "$exe" "${args[@]}" -runs="$runs" -max_total_time="$seconds" "$work/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    n=$(find "$work/$t" -type f | wc -l)
    summary+=("fuzz $t: ok, ${execs:-?} runs in $(($(date +%s) - t0)) s, coverage ${cov:-?}, corpus $n, ${#repro[@]} reproducers")
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
      "$exe" -merge=1 "$root/fuzz/corpus/$t" "$work/$t" >"$work/$t.merge.log" 2>&1
    fi
  else
    crash=$(ls -t "$artifacts/$t" 2>/dev/null | head -1)
    summary+=("fuzz $t: FAILED (${crash:+input $artifacts/$t/$crash, }log $log)")
    tail -n 40 "$log"
    failed=1
  fi
done
printf '%s\n' "${summary[@]}"
echo "fuzz: ${#targets[@]} targets, $(($(date +%s) - start)) s in all"
exit $failed
