#!/usr/bin/env bash
# The README's second command (and CI's): installs what is needed, builds, runs every test that
# does not need a GPU, then the fuzz smoke. Tests labelled `gpu` are left out here; they skip by
# themselves anyway when no device is present.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOE_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE gpu
# The fuzz smoke (docs/fuzzing.md): each libFuzzer target for FUZZ_SECONDS (20) under ASan and
# UBSan, after replaying the kept reproducers; its own clang build (build-fuzz). MOE_SKIP_FUZZ=1
# leaves it out.
if [[ ${MOE_SKIP_FUZZ:-} != 1 ]]; then
  bash "$root/scripts/fuzz.sh"
fi
