#!/usr/bin/env bash
# Configures and builds moe-runtime into build/ (MOE_BUILD_DIR overrides). Extra arguments go
# to CMake's configure step. Under CI (CI=true) warnings are errors and CUDA code is compiled
# for one architecture only, to keep the 2-core build short.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MOE_BUILD_DIR:-$root/build}

args=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
if [[ ${CI:-} == true ]]; then
  args+=(-DMOE_WERROR=ON -DCMAKE_CUDA_ARCHITECTURES=90)
fi
cmake -S "$root" -B "$build" "${args[@]}" "$@"
cmake --build "$build" -j "$(nproc)"
