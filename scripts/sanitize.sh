#!/usr/bin/env bash
# The sanitizer run (not yet part of the README's test command: its first full run is still to
# be made).
#
#   asan  every non-GPU test (ctest -LE 'gpu|lint': the gtest areas, the CLI tests, the server's
#         curl and openai-client tests, mpirun and network-namespace runs) on a build where every
#         C++ target has AddressSanitizer + UndefinedBehaviorSanitizer (build-asan: gcc, -O1,
#         assertions on, CUDA and benchmarks off). Leaks are errors; the few third-party ones
#         (Open MPI, gRPC) are named in scripts/sanitizers/lsan.supp.
#   tsan  ThreadSanitizer (build-tsan) on what runs threads: the CPU thread pool (ThreadPool.*),
#         offloading (the reader threads, prefetcher, cache), the batch engine, and `moe serve`
#         answering concurrent HTTP clients (serve.curl, serve.openai_client).
#
#   scripts/sanitize.sh              both
#   scripts/sanitize.sh asan         one of them
#
# Environment: SAN_JOBS (build parallelism, default nproc), SAN_BUILD_PREFIX (default build:
# build-asan, build-tsan). Any sanitizer report fails the run (halt_on_error / abort_on_error).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${SAN_BUILD_PREFIX:-$root/build}
jobs=${SAN_JOBS:-$(nproc)}
supp=$root/scripts/sanitizers
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(asan tsan)

configure() {  # configure DIR SANITIZERS
  local dir=$1 san=$2
  if [ ! -f "$dir/build.ninja" ]; then
    mkdir -p "$dir"
    # -O1 -g1 without -DNDEBUG: assertions on, readable stacks, a bearable compile time.
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1" \
      -DMOE_SANITIZE="$san" -DMOE_WERROR=ON -DMOE_ENABLE_CUDA=OFF -DMOE_BUILD_BENCHMARKS=OFF \
      >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
  fi
}

summary=()
failed=0
run_asan() {
  local dir=$prefix-asan t0
  t0=$(date +%s)
  configure "$dir" address,undefined
  cmake --build "$dir" -j "$jobs"
  local built
  built=$(date +%s)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1
  export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE 'gpu|lint' --timeout 900; then
    summary+=("sanitize asan+ubsan: ok (built in $((built - t0)) s, tests $(($(date +%s) - built)) s)")
  else
    summary+=("sanitize asan+ubsan: FAILED (logs: $dir/Testing/Temporary/LastTest.log)")
    failed=1
  fi
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
}

run_tsan() {
  local dir=$prefix-tsan t0
  t0=$(date +%s)
  configure "$dir" thread
  cmake --build "$dir" -j "$jobs" --target moe moe_kernels_tests moe_offload_tests moe_batch_tests
  local built
  built=$(date +%s)
  # The pool, not OpenMP: libgomp is not instrumented, so TSan cannot see its barriers.
  export MOE_CPU_THREADS=pool
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  local ok=1 t
  (cd "$dir/tests" && ./moe_kernels_tests --gtest_filter='ThreadPool.*:-*Scheduler*') || ok=0
  for t in offload batch; do
    (cd "$dir/tests" && "./moe_${t}_tests") || ok=0
  done
  ctest --test-dir "$dir" --output-on-failure -R '^serve\.(curl|openai_client)$' --timeout 900 || ok=0
  if [ $ok = 1 ]; then
    summary+=("sanitize tsan: ok (built in $((built - t0)) s, tests $(($(date +%s) - built)) s)")
  else
    summary+=("sanitize tsan: FAILED")
    failed=1
  fi
  unset TSAN_OPTIONS MOE_CPU_THREADS
}

for m in "${modes[@]}"; do
  case "$m" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "sanitize: unknown mode '$m' (asan, tsan)" >&2; exit 2 ;;
  esac
done
printf '%s\n' "${summary[@]}"
exit $failed
